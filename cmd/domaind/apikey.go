package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/store"
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
		name := strings.TrimSpace(*project)
		if name == "" || len(name) > 100 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' }) {
			return errors.New("--project must be a name of 1 to 100 printable characters")
		}
		st, err := openStore(ctx, *db)
		if err != nil {
			return err
		}
		defer st.Close()
		key, _, err := (&apikey.Service{Store: st}).Create(ctx, name, time.Now().UTC())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Created an API key for project %q. It is shown only this once; store it now.\n", name)
		fmt.Fprintln(stdout, key)
		return nil

	case "list":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		st, err := openStore(ctx, *db)
		if err != nil {
			return err
		}
		defer st.Close()
		keys, err := st.APIKeys(ctx)
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
		if fs.NArg() != 1 || len(fs.Arg(0)) < len(apikey.Scheme)+4 {
			return errors.New("usage: domaind apikey revoke KEY_PREFIX (at least the first 7 characters, e.g. AS_abcd)")
		}
		st, err := openStore(ctx, *db)
		if err != nil {
			return err
		}
		defer st.Close()
		k, err := (&apikey.Service{Store: st}).Revoke(ctx, fs.Arg(0), time.Now().UTC())
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no API key starts with %q", fs.Arg(0))
		case errors.Is(err, store.ErrAmbiguous):
			return fmt.Errorf("more than one API key starts with %q; give more characters", fs.Arg(0))
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "Revoked %s (project %s).\n", k.Prefix, k.ProjectName)
		return nil
	}
	return fmt.Errorf("unknown apikey command %q: use create, list or revoke", args[0])
}
