// Package domains adds and removes a project's sending domains. It is what the API
// and the dashboard share: the rules for a new domain (its name, region, records,
// sealed key and first schedule) live here once, not in each front end.
package domains

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/verify"
)

// InputError says which input broke which rule, in a sentence a customer can act on.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// Service adds and removes domains.
type Service struct {
	Store    store.Store
	Verifier *verify.Verifier
	Records  records.Config
	Sealer   *records.Sealer
	// Regions are the region keys a domain may use; the first is the default.
	Regions []string
	// Keygen bounds the keys generated at once across the process; it is
	// shared by every Service of a process. Nil means a gate of GOMAXPROCS
	// slots for this Service alone.
	Keygen *KeyGate
	// AllowPrivateNames accepts domains outside the public DNS (corp.internal,
	// example.test), as --dns-allow-private does; off, Add refuses them, since
	// checking them would read the records of domaind's own network.
	AllowPrivateNames bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger

	gateOnce    sync.Once
	defaultGate *KeyGate
	// generate makes a new domain's records; nil means Records.Generate. Tests
	// replace it to watch how many run at once.
	generate func(name, region string, now time.Time) (records.Generated, error)
}

func (s *Service) gate() *KeyGate {
	if s.Keygen != nil {
		return s.Keygen
	}
	s.gateOnce.Do(func() { s.defaultGate = NewKeyGate(0, 0) })
	return s.defaultGate
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Add adds the domain rawName (as the customer typed it) in region ("" for the
// default) to the project. It returns an *InputError for a bad name or region,
// store.ErrDomainExists when the project has the domain already, and a
// *BusyError when no key-generation slot came free in time. An add cancelled
// while it waits for a slot generates no key and stores nothing.
func (s *Service) Add(ctx context.Context, projectID int64, rawName, region string) (*domain.Domain, error) {
	name, err := domain.NormalizeNameWith(rawName, domain.NameOptions{AllowPrivate: s.AllowPrivateNames})
	if err != nil {
		msg := "domain is not a valid domain name."
		var ne *domain.NameError
		if errors.As(err, &ne) {
			msg = ne.Message
		}
		return nil, &InputError{Field: "domain", Message: msg}
	}
	region = strings.TrimSpace(region)
	if region == "" {
		region = s.Regions[0]
	}
	if !slices.Contains(s.Regions, region) {
		return nil, &InputError{Field: "regionKey", Message: fmt.Sprintf(
			"regionKey %q is not available; use one of %s.", truncate(region, 64), strings.Join(s.Regions, ", "))}
	}

	// The key is generated under the machine-wide gate: it is the one costly
	// step of an add, and the only one worth queueing for.
	release, err := s.gate().Acquire(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	id, err := domain.NewID(now)
	if err != nil {
		release()
		return nil, err
	}
	generate := s.generate
	if generate == nil {
		generate = s.Records.Generate
	}
	gen, err := generate(name, region, now)
	release()
	if err != nil {
		return nil, err
	}
	sealed, err := s.Sealer.Seal(gen.DKIMPrivateKey, id)
	clear(gen.DKIMPrivateKey)
	if err != nil {
		return nil, err
	}
	d := &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: region,
		Status: domain.StatusPendingConfiguration, Records: gen.Records,
		CreatedAt: now, LastCheckedAt: now,
	}
	s.Verifier.StartWindow(d, now)
	if err := s.Store.CreateDomain(ctx, d, sealed); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.Info("domain added", "domain", name, "id", id, "project", projectID, "region", region)
	}
	return d, nil
}

// Delete removes the project's domain, its records and its keys.
func (s *Service) Delete(ctx context.Context, projectID int64, id string) error {
	if err := s.Store.DeleteDomain(ctx, projectID, id); err != nil {
		return err
	}
	if s.Log != nil {
		s.Log.Info("domain deleted", "id", id, "project", projectID)
	}
	return nil
}

// ErrNotVerified is returned by EnableInbound for a domain that is not VERIFIED:
// receiving is for domains whose ownership is proven.
var ErrNotVerified = errors.New("domains: receiving can be enabled only on a VERIFIED domain")

// EnableInbound switches receiving on for the project's verified domain: it adds
// the inbound MX record to publish, and checks follow until it is seen. Enabling
// it again changes nothing.
func (s *Service) EnableInbound(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := s.Store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if d.Record(domain.KeyInboundMX) != nil {
		return d, nil
	}
	if d.Status != domain.StatusVerified {
		return nil, ErrNotVerified
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	d.EnableInbound(s.Records.InboundMX(d.Name, d.Region, now), s.Verifier.Recheck(), now)
	if err := s.Store.SaveInbound(ctx, d); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.Info("inbound enabled", "domain", d.Name, "id", d.ID, "project", projectID)
	}
	return d, nil
}

// DisableInbound switches receiving off for the project's domain.
func (s *Service) DisableInbound(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := s.Store.Domain(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if d.Record(domain.KeyInboundMX) == nil {
		return d, nil
	}
	d.DisableInbound()
	if err := s.Store.SaveInbound(ctx, d); err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.Info("inbound disabled", "domain", d.Name, "id", d.ID, "project", projectID)
	}
	return d, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
