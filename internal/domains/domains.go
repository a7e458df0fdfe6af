// Package domains is the service the API and the dashboard call for a project's
// sending domains: add, get, list, verify, delete, receiving on and off, events.
// The rules for a new domain (its name, region, records, sealed key and first
// schedule) live here once, not in each front end, and so do the errors: every
// failure a customer can act on is a *fault.Error, which each front end answers
// from one table.
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
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/verify"
)

// Page selects part of a list; Position is a place in a project's list of
// domains (see store.Page). They are the store's, named here so that front ends
// need not import the store.
type (
	Page     = store.Page
	Position = store.Position
	// Event is something that happened to a domain (see store.Event).
	Event = store.Event
)

// notFound is the answer for a domain the project does not have.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFoundf("domain", "No domain with this id exists in this project.", err)
	}
	return err
}

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
	// Rotator rotates DKIM keys; nil leaves domains without rotation.
	Rotator *rotation.Rotator
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
// default) to the project. It returns a fault.Invalid for a bad name or region,
// fault.Conflict when the project has the domain already, and fault.Busy
// when no key-generation slot came free in time. An add cancelled
// while it waits for a slot generates no key and stores nothing.
func (s *Service) Add(ctx context.Context, projectID int64, rawName, region string) (*domain.Domain, error) {
	name, err := domain.NormalizeNameWith(rawName, domain.NameOptions{AllowPrivate: s.AllowPrivateNames})
	if err != nil {
		msg := "domain is not a valid domain name."
		var ne *domain.NameError
		if errors.As(err, &ne) {
			msg = ne.Message
		}
		return nil, fault.Invalidf("domain", msg)
	}
	region = strings.TrimSpace(region)
	if region == "" {
		region = s.Regions[0]
	}
	if !slices.Contains(s.Regions, region) {
		return nil, fault.Invalidf("regionKey", fmt.Sprintf(
			"regionKey %q is not available; use one of %s.", domain.Truncate(region, 64), strings.Join(s.Regions, ", ")))
	}

	// The key is generated under the machine-wide gate: it is the one costly
	// step of an add, and the only one worth queueing for.
	release, err := s.gate().Acquire(ctx)
	var busy *BusyError
	if errors.As(err, &busy) {
		return nil, &fault.Error{Code: fault.Busy, RetryAfter: busy.RetryAfter, Err: err,
			Message: "The server is busy generating keys for other domains; try again in a few seconds."}
	}
	if err != nil {
		return nil, err
	}
	now := domain.NowMillis(s.now())
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
	stored, err := records.StoredKey(gen.DKIMPrivateKey)
	clear(gen.DKIMPrivateKey)
	if err != nil {
		return nil, err
	}
	sealed, err := s.Sealer.Seal(stored, id)
	clear(stored)
	if err != nil {
		return nil, err
	}
	d := &domain.Domain{
		ID: id, ProjectID: projectID, Name: name, Region: region,
		Status: domain.StatusPendingConfiguration, Records: gen.Records,
		CreatedAt: now, LastCheckedAt: now,
	}
	s.Verifier.StartWindow(d, now)
	create := func() error { return s.Store.CreateDomain(ctx, d, sealed) }
	if s.Rotator != nil {
		create = func() error { return s.Store.CreateDomainRotating(ctx, d, sealed, s.Rotator.NewRotation(d, gen)) }
	}
	if err := create(); errors.Is(err, store.ErrDomainExists) {
		return nil, &fault.Error{Code: fault.Conflict, Subject: "domain", Err: err,
			Message: fmt.Sprintf("The domain %s already exists in this project.", name)}
	} else if err != nil {
		return nil, err
	}
	if s.Log != nil {
		s.Log.Info("domain added", "domain", name, "id", id, "project", projectID, "region", region)
	}
	return d, nil
}

// Delete removes the project's domain, its records and its keys.
func (s *Service) Delete(ctx context.Context, projectID int64, id string) error {
	var rot store.Rotation
	if s.Rotator != nil {
		rot, _ = s.Store.Rotation(ctx, id) // none: nothing published for it
	}
	if err := s.Store.DeleteDomain(ctx, projectID, id); err != nil {
		return notFound(err)
	}
	if rot.ProjectID == projectID && rot.Mode == domain.DKIMModeCNAME {
		// The keys domaind published for it in the operator's zone go too;
		// one left behind (the update failed) names a key no one holds.
		if err := s.Rotator.Unpublish(ctx, rot); err != nil && s.Log != nil {
			s.Log.Warn("dkim keys of a deleted domain left in the operator's zone", "domain", rot.Domain, "err", err)
		}
	}
	if s.Log != nil {
		s.Log.Info("domain deleted", "id", id, "project", projectID)
	}
	return nil
}

// errNotVerified is returned by EnableInbound for a domain that is not VERIFIED:
// receiving is for domains whose ownership is proven.
var errNotVerified = fault.Invalidf("verificationStatus",
	"Receiving can be enabled only on a VERIFIED domain; publish its ownership and DKIM records and verify it first.")

// NotVerified reports whether err is EnableInbound's refusal of a domain that is
// not verified yet.
func NotVerified(err error) bool { return errors.Is(err, errNotVerified) }

// EnableInbound switches receiving on for the project's verified domain: it adds
// the inbound MX record to publish, and checks follow until it is seen. Enabling
// it again changes nothing.
func (s *Service) EnableInbound(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	return s.switchInbound(ctx, projectID, id, "inbound enabled", func(d *domain.Domain) (bool, error) {
		if d.Receiving() {
			return false, nil
		}
		if !d.MayEnableInbound() {
			return false, errNotVerified
		}
		now := domain.NowMillis(s.now())
		d.EnableInbound(s.Records.InboundMX(d.Name, d.Region, now), s.Verifier.Recheck(), now)
		return true, nil
	})
}

// DisableInbound switches receiving off for the project's domain.
func (s *Service) DisableInbound(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	return s.switchInbound(ctx, projectID, id, "inbound disabled", func(d *domain.Domain) (bool, error) {
		if !d.Receiving() {
			return false, nil
		}
		d.DisableInbound()
		return true, nil
	})
}

// maxInboundTries bounds how often switchInbound reads the domain again
// because a check saved it between the read and the switch's save.
const maxInboundTries = 3

// switchInbound reads the project's domain, lets change switch its receiving
// (change reports whether it changed anything), saves it over the version it
// read and logs msg. A check that saves the domain between the read and the
// save would otherwise lose its result, or overwrite the switch's schedule:
// the save is refused (store.ErrChanged) and the switch made again on the
// domain as it is now.
func (s *Service) switchInbound(ctx context.Context, projectID int64, id, msg string, change func(*domain.Domain) (bool, error)) (*domain.Domain, error) {
	for tries := 1; ; tries++ {
		d, err := s.Get(ctx, projectID, id)
		if err != nil {
			return nil, err
		}
		changed, err := change(d)
		if err != nil {
			return nil, err
		}
		if !changed {
			return d, nil
		}
		err = s.Store.SaveInbound(ctx, d)
		if errors.Is(err, store.ErrChanged) {
			if tries < maxInboundTries {
				continue
			}
			// Written again and again meanwhile: nothing is wrong but
			// timing, so the client is asked to try again, as when busy.
			return nil, &fault.Error{Code: fault.Busy, RetryAfter: time.Second, Err: err,
				Message: "The domain is being checked right now; try again in a second."}
		}
		if err != nil {
			return nil, notFound(err)
		}
		if s.Log != nil {
			s.Log.Info(msg, "domain", d.Name, "id", d.ID, "project", projectID)
		}
		return d, nil
	}
}

// Get returns the project's domain.
func (s *Service) Get(ctx context.Context, projectID int64, id string) (*domain.Domain, error) {
	d, err := s.Store.Domain(ctx, projectID, id)
	return d, notFound(err)
}

// List returns a page of the project's domains, oldest first, and how many it
// has in all.
func (s *Service) List(ctx context.Context, projectID int64, p Page) ([]*domain.Domain, int, error) {
	return s.Store.Domains(ctx, projectID, p)
}

// Checking reports whether a check of d is running on any replica: in this
// process, or under another's lease as of when d was read. Every front end
// shows "in progress" by it.
func (s *Service) Checking(d *domain.Domain) bool { return s.Verifier.Checking(d) }

// Verify checks the project's domain now (see verify.Verifier.Verify). A verify
// within the minimum interval of the last finished check is fault.TooSoon.
func (s *Service) Verify(ctx context.Context, projectID int64, id string) (verify.Outcome, error) {
	out, err := s.Verifier.Verify(ctx, projectID, id)
	var tooSoon *verify.TooSoonError
	if errors.As(err, &tooSoon) {
		return out, &fault.Error{Code: fault.TooSoon, RetryAfter: tooSoon.RetryAfter, Err: err,
			Message: "This domain was checked moments ago; wait before verifying it again."}
	}
	return out, notFound(err)
}

// Events lists the project's domain's events, newest first, and their total.
// Events of an unknown domain would be an empty list; fault.NotFound says more.
func (s *Service) Events(ctx context.Context, projectID int64, id string, p Page) ([]Event, int, error) {
	if _, err := s.Get(ctx, projectID, id); err != nil {
		return nil, 0, err
	}
	return s.Store.Events(ctx, projectID, id, p)
}
