package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/signing"
)

const dkimUsage = `usage: domaind dkim export --dir DIR [--format opendkim|json] [--owner USER[:GROUP]] [--db ...] [--master-key-file FILE]
       domaind dkim rotate DOMAIN [--db ...] [--master-key-file FILE] [--dkim-bits N]
`

// dkimCmd is the group of commands about the DKIM keys domaind keeps.
func dkimCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "domaind dkim", dkimUsage, map[string]command{
		"export": dkimExport,
		"rotate": dkimRotate,
	}, args, stdout, stderr)
}

// keyFlags returns the flag set of a command that opens the DKIM keys of a
// database (dkim export, dkim rotate), with the flags they all take: --db
// and the master key's.
func keyFlags(name string, stderr io.Writer) (fs *flag.FlagSet, db *string, mk *masterKeyFlags) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db = dbFlag(fs)
	mk = &masterKeyFlags{}
	mk.register(fs)
	return fs, db, mk
}

// dkimExport writes the private key of every domain whose DKIM record verified,
// with the tables a signer reads, into a folder (see signing.Export).
func dkimExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags, db, mk := keyFlags("dkim export", stderr)
	dir := flags.String("dir", "", "folder to write the keys and tables into, created with mode 0700 if missing (required)")
	format := flags.String("format", string(signing.FormatOpenDKIM), "opendkim (KeyTable and SigningTable) or json (signing-keys.json)")
	ownerFlag := flags.String("owner", "", "USER[:GROUP] to give the folder and every file to, for a signer running as its own user (needs root); default: the user running the export")
	reloadCmd := flags.String("reload-command", "", "shell command that makes the signer re-read its tables (such as 'systemctl reload opendkim'), run after the new tables are written and before keys they no longer name are removed")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("dkim export takes no arguments, got %q", flags.Args())
	}
	if *dir == "" {
		return errors.New("--dir is required: the folder your signer reads keys from, such as /etc/opendkim/domaind")
	}
	f, err := signing.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	owner, err := parseOwner(*ownerFlag)
	if err != nil {
		return err
	}
	key, err := mk.loadExisting(stderr)
	if err != nil {
		return err
	}
	// Other commands create a database on first use; an export from a new,
	// empty database would remove every key the signer uses, so a --db that
	// names no file is a mistake to report.
	if path, ok := strings.CutPrefix(*db, "sqlite:"); ok && path != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--db: no database at %s; pass the --db that serve uses", path)
		}
	}
	adm, err := app.OpenAdmin(ctx, app.AdminConfig{DB: *db, MasterKey: key, Records: records.DefaultConfig()})
	if err != nil {
		return err
	}
	defer adm.Close()

	// Every key is opened before anything is written, so a key that does not
	// open stops the export with the folder as it was.
	keys, err := adm.Keys().All(ctx)
	if errors.Is(err, records.ErrSealed) {
		return fmt.Errorf("the master key does not open the DKIM keys in the database; pass the master key serve uses (%w)", err)
	}
	if err != nil {
		return err
	}
	var reload func(context.Context) error
	if *reloadCmd != "" {
		reload = func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", *reloadCmd)
			cmd.Stdout, cmd.Stderr = stderr, stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("--reload-command %q: %w", *reloadCmd, err)
			}
			return nil
		}
	}
	res, err := signing.Export(ctx, *dir, keys, f, owner, reload)
	if err != nil {
		return fmt.Errorf("dkim export into %s: %w", *dir, err)
	}
	fmt.Fprintf(stdout, "dkim export: %d keys in %s for %s (%d written, %d unchanged), %d removed\n",
		res.Keys, res.KeysDir, res.Format, res.Written, res.Keys-res.Written, res.Removed)
	return nil
}

// parseOwner reads --owner: a user name or id, and optionally a group after a
// colon; without one, the user's primary group.
func parseOwner(s string) (signing.Owner, error) {
	if s == "" {
		return signing.NoOwner, nil
	}
	name, group, hasGroup := strings.Cut(s, ":")
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return signing.Owner{}, fmt.Errorf("--owner: no user %q", name)
		}
	}
	gid := u.Gid
	if hasGroup {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g, err = user.LookupGroupId(group); err != nil {
				return signing.Owner{}, fmt.Errorf("--owner: no group %q", group)
			}
		}
		gid = g.Gid
	}
	uid, err1 := strconv.Atoi(u.Uid)
	g, err2 := strconv.Atoi(gid)
	if err1 != nil || err2 != nil {
		return signing.Owner{}, fmt.Errorf("--owner: user %q has no numeric id", name)
	}
	return signing.Owner{UID: uid, GID: g}, nil
}
