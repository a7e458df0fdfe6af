package app

import (
	"context"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/store"
)

// AdminConfig is what the operator's one-shot commands give OpenAdmin.
type AdminConfig struct {
	// DB names the database, as Config.DB does.
	DB string
	// MasterKey opens and seals the DKIM keys; without it (domaind apikey)
	// Keys and Domains are nil.
	MasterKey []byte
	// Records are the templates of the keys a rotation makes (the selector,
	// the bits), as serve's.
	Records records.Config
}

// Admin is a domaind's database with the services over it that the operator's
// one-shot commands call (domaind apikey, dkim export, dkim rotate), wired as
// New wires them for serve but without the DNS checker, the servers and the
// workers: a command needs neither resolvers nor a port, and does what serve's
// services would do.
type Admin struct {
	store   store.Store
	auth    *apikey.Service
	keys    *signing.Keys
	domains *domains.Service
}

// OpenAdmin opens and migrates cfg.DB and builds the services over it.
func OpenAdmin(ctx context.Context, cfg AdminConfig) (*Admin, error) {
	var sealer *records.Sealer
	if cfg.MasterKey != nil {
		var err error
		if sealer, err = records.NewSealer(cfg.MasterKey); err != nil {
			return nil, err
		}
		if err := cfg.Records.Validate(); err != nil {
			return nil, err
		}
	}
	st, err := OpenStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	a := &Admin{store: st, auth: &apikey.Service{Store: st}}
	if sealer != nil {
		a.keys = signing.New(st, sealer)
		// A rotation the operator starts makes the next key; the steps that
		// follow are serve's rotation worker's, with serve's settings.
		rot := &rotation.Rotator{Store: st, Sealer: sealer, Records: cfg.Records, Config: rotation.DefaultConfig()}
		a.domains = &domains.Service{Store: st, Records: cfg.Records, Sealer: sealer, Rotator: rot}
	}
	return a, nil
}

// Auth makes, lists and revokes API keys.
func (a *Admin) Auth() *apikey.Service { return a.auth }

// Keys opens the DKIM keys of the domains whose record verified, for export;
// nil without a master key.
func (a *Admin) Keys() *signing.Keys { return a.keys }

// Domains starts DKIM rotations; nil without a master key.
func (a *Admin) Domains() *domains.Service { return a.domains }

// Close closes the database.
func (a *Admin) Close() error { return a.store.Close() }
