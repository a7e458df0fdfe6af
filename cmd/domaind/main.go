// Command domaind verifies the DNS records of email-sending domains. See the README
// for the commands; this file and its neighbours only wire packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `domaind verifies the DNS records of email-sending domains.

Usage:
  domaind serve [flags]                      run the HTTP API and the verifier
  domaind apikey create --project NAME       create a project if new and print a new API key
  domaind apikey list                        list API keys (prefixes only)
  domaind apikey revoke KEY_PREFIX           revoke the key starting with KEY_PREFIX
  domaind check [flags] DOMAIN               check a domain's published DNS records, no server needed
  domaind dkim export --dir DIR [flags]      write verified domains' DKIM keys and signer tables (OpenDKIM, JSON)

Every flag also reads DOMAIND_<FLAG> from the environment (upper case, dashes as
underscores); a flag on the command line wins. Run "domaind COMMAND -h" for flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		os.Exit(int(ec))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "domaind:", err)
		os.Exit(1)
	}
}

// exitCode is returned by a command that has already said what went wrong and
// only needs the process to exit with a particular status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "apikey":
		return apikeyCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdout, stderr)
	case "dkim":
		return dkimCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "domaind: unknown command %q\n\n%s", args[0], usage)
	return exitCode(2)
}

// parseFlags parses args into fs and then fills every flag not given on the
// command line from its DOMAIND_<FLAG> environment variable.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := "DOMAIND_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
		}
	})
	return errors.Join(errs...)
}
