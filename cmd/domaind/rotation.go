package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
)

// rotationFlags are the DKIM rotation settings of serve.
type rotationFlags struct {
	mode, zone, server, tsig, every, retire string
}

func (f *rotationFlags) register(fs *flag.FlagSet) {
	def := rotation.DefaultConfig()
	fs.StringVar(&f.mode, "dkim-mode", string(def.Mode), "txt (the customer publishes each key's TXT) or cname (the customer publishes CNAMEs from both selectors to --dkim-zone once; domaind publishes the keys there by RFC 2136 and rotates them with no customer action)")
	fs.StringVar(&f.zone, "dkim-zone", "", "cname mode: the operator's zone that holds the keys, e.g. dkim.platform.example")
	fs.StringVar(&f.server, "dns-update-server", "", "cname mode: HOST:PORT of the --dkim-zone primary that takes RFC 2136 updates")
	fs.StringVar(&f.tsig, "dns-update-tsig", "", "cname mode: ALG:NAME:BASE64SECRET of the TSIG key that signs the updates (the form knsupdate -y takes)")
	fs.StringVar(&f.every, "dkim-rotate-every", rotation.FormatDuration(def.RotateEvery), "start a key rotation this long after a key began signing (0: only on request); d means days")
	fs.StringVar(&f.retire, "dkim-retire-after", rotation.FormatDuration(def.RetireAfter), "keep the old key published this long after signing switched to the new one; d means days")
}

// config parses the rotation settings, each error naming its flag; whether
// they go together is rotation.Config.Validate's to say, which app.New asks.
func (f *rotationFlags) config() (rotation.Config, error) {
	cfg := rotation.DefaultConfig()
	cfg.Mode, cfg.Zone, cfg.Server = domain.DKIMMode(f.mode), strings.ToLower(strings.TrimSuffix(f.zone, ".")), f.server
	var err error
	if cfg.RotateEvery, err = rotation.ParseDuration(f.every); err != nil {
		return cfg, fmt.Errorf("--dkim-rotate-every: %w", err)
	}
	if cfg.RetireAfter, err = rotation.ParseDuration(f.retire); err != nil {
		return cfg, fmt.Errorf("--dkim-retire-after: %w", err)
	}
	if f.tsig != "" {
		if cfg.TSIG, err = rotation.ParseTSIG(f.tsig); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

const dkimRotateUsage = `usage: domaind dkim rotate DOMAIN [--db ...] [--master-key-file FILE] [--dkim-selector S] [--dkim-bits N]
`

// dkimRotate starts a rotation of a domain's DKIM key now, for operators (a
// suspected compromise, or a key to upgrade with --dkim-bits): it makes the
// next key; the serve process's worker takes the steps that follow.
func dkimRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags, db, mk := keyFlags("dkim rotate", stderr)
	rc := records.DefaultConfig()
	flags.StringVar(&rc.DKIMSelector, "dkim-selector", rc.DKIMSelector, "DKIM selector, as serve's")
	flags.IntVar(&rc.DKIMBits, "dkim-bits", rc.DKIMBits, "RSA key size of the next key")
	// The domain may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if name == "" && flags.NArg() == 1 {
		name = flags.Arg(0)
	} else if flags.NArg() > 0 || name == "" {
		fmt.Fprint(stderr, dkimRotateUsage)
		return exitCode(2)
	}
	if err := rc.Validate(); err != nil {
		return err
	}
	norm, err := domain.NormalizeNameWith(name, domain.NameOptions{AllowPrivate: true})
	if err != nil {
		return fmt.Errorf("%q is not a domain name", name)
	}
	key, err := mk.loadExisting(stderr)
	if err != nil {
		return err
	}
	adm, err := app.OpenAdmin(ctx, app.AdminConfig{DB: *db, MasterKey: key, Records: rc})
	if err != nil {
		return err
	}
	defer adm.Close()
	started, err := adm.Domains().RotateDKIMNamed(ctx, norm)
	// What was started is said even when a later domain stopped the run.
	for _, r := range started {
		if r.Err != nil {
			fmt.Fprintf(stderr, "dkim rotate: %s (%s, project %d): %s\n", norm, r.ID, r.ProjectID, cliError(r.Err, nil))
			continue
		}
		fmt.Fprintf(stdout, "dkim rotate: %s (%s, project %d): next key at selector %s (%s mode); serve publishes and switches it\n",
			norm, r.ID, r.ProjectID, r.Rotation.NextSelector, r.Rotation.Mode)
	}
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		return fmt.Errorf("no domain %s in the database", norm)
	case errors.Is(err, records.ErrSealed):
		return fmt.Errorf("the master key does not open this database's keys; pass the master key serve uses (%w)", err)
	case err != nil:
		return err
	}
	return nil
}
