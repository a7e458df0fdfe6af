package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/app"
)

func apikeyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: domaind apikey create --project NAME | list | revoke KEY_PREFIX\n")
		return exitCode(2)
	}
	fs := flag.NewFlagSet("apikey "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := dbFlag(fs)
	switch args[0] {
	case "create":
		project := fs.String("project", "", "project name (created if new)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		// Bad input is refused before a database is opened, which would
		// create one.
		if err := apikey.CheckProjectName(*project); err != nil {
			return cliError(err, flagNames{"project": "--project"})
		}
		adm, err := app.OpenAdmin(ctx, app.AdminConfig{DB: *db})
		if err != nil {
			return err
		}
		defer adm.Close()
		key, k, err := adm.Auth().Create(ctx, *project, time.Now().UTC())
		if err != nil {
			return cliError(err, flagNames{"project": "--project"})
		}
		fmt.Fprintf(stderr, "Created an API key for project %q. It is shown only this once; store it now.\n", k.ProjectName)
		fmt.Fprintln(stdout, key)
		return nil

	case "list":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		adm, err := app.OpenAdmin(ctx, app.AdminConfig{DB: *db})
		if err != nil {
			return err
		}
		defer adm.Close()
		keys, err := adm.Auth().List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tPROJECT\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if !k.RevokedAt.IsZero() {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Prefix, k.ProjectName, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()

	case "revoke":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: domaind apikey revoke KEY_PREFIX (at least the first %d characters, e.g. %sabcd)", apikey.MinRevokePrefix, apikey.Scheme)
		}
		if err := apikey.CheckRevokePrefix(fs.Arg(0)); err != nil {
			return cliError(err, flagNames{"prefix": "KEY_PREFIX"})
		}
		adm, err := app.OpenAdmin(ctx, app.AdminConfig{DB: *db})
		if err != nil {
			return err
		}
		defer adm.Close()
		k, err := adm.Auth().Revoke(ctx, fs.Arg(0), time.Now().UTC())
		if err != nil {
			return cliError(err, flagNames{"prefix": "KEY_PREFIX"})
		}
		fmt.Fprintf(stdout, "Revoked %s (project %s).\n", k.Prefix, k.ProjectName)
		return nil
	}
	return fmt.Errorf("unknown apikey command %q: use create, list or revoke", args[0])
}
