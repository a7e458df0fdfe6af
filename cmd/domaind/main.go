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

	"github.com/domaind/domaind/internal/fault"
)

const usage = `domaind verifies the DNS records of email-sending domains.

Usage:
  domaind serve [flags]                      run the HTTP API and the verifier
  domaind apikey create --project NAME       create a project if new and print a new API key
  domaind apikey list                        list API keys (prefixes only)
  domaind apikey revoke KEY_PREFIX           revoke the key starting with KEY_PREFIX
  domaind check [flags] DOMAIN               check a domain's published DNS records, no server needed
  domaind dkim export --dir DIR [flags]      write verified domains' DKIM keys and signer tables (OpenDKIM, JSON)
  domaind dkim rotate DOMAIN [flags]         start a rotation of a domain's DKIM key now

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
	return dispatch(ctx, "domaind", usage, map[string]command{
		"serve": func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return serve(ctx, args, stderr)
		},
		"apikey": apikeyCmd,
		"check":  checkCmd,
		"dkim":   dkimCmd,
	}, args, stdout, stderr)
}

// command runs one subcommand with the arguments after its name.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// dispatch runs the command of cmds that args[0] names, for domaind and for
// its groups of commands (prog is the name they are called by): with no
// command, or an unknown one, usage goes to stderr and the exit status is 2;
// asked for help, usage goes to stdout.
func dispatch(ctx context.Context, prog, usage string, cmds map[string]command, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	if cmd, ok := cmds[args[0]]; ok {
		return cmd(ctx, args[1:], stdout, stderr)
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", prog, args[0], usage)
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

// flagNames maps the fields a service names in its faults to the flags or
// arguments of a command that set them.
type flagNames map[string]string

// cliError is how a command says what a service refused, the command line's
// one table of faults as the API and the dashboard each have theirs: the
// service's sentence, after the flag or argument at fault for an invalid
// input. An error that is no fault (a database that does not open) is said as
// it is.
func cliError(err error, names flagNames) error {
	f := fault.As(err)
	if f == nil || f.Code == fault.Internal {
		return err
	}
	if f.Code == fault.Invalid && len(f.Details) > 0 {
		if name, ok := names[f.Details[0].Field]; ok {
			return &cliFault{msg: name + ": " + f.Message, err: err}
		}
	}
	return &cliFault{msg: f.Message, err: err}
}

// cliFault is a fault as cliError says it, still wrapping it.
type cliFault struct {
	msg string
	err error
}

func (e *cliFault) Error() string { return e.msg }
func (e *cliFault) Unwrap() error { return e.err }
