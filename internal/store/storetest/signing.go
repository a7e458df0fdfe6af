package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// testSigningKeys checks which domains a signer is handed: those whose DKIM record
// verified at its last definite check, across projects, filtered by name.
func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	p1, p2 := project(t, s, "acme"), project(t, s, "globex")
	dkim := func(d *domain.Domain) *domain.Record { return d.Record(domain.KeyDKIM) }
	mk := func(p store.Project, name string, edit func(r *domain.Record)) *domain.Domain {
		d := sampleDomain(p.ID, newID(t), name, t0)
		r := dkim(d)
		r.Name = "sel1._domainkey." + name
		r.Verified, r.Status, r.Failures = true, domain.CheckVerified, 0
		edit(r)
		createDomain(t, s, d)
		return d
	}
	signing := mk(p1, "signing.example", func(r *domain.Record) {})
	// A temporary failure at the last look changes nothing known: still signing.
	timeout := mk(p1, "timeout.example", func(r *domain.Record) { r.Status = domain.CheckTemporaryFailure })
	// A record being lost (one definite failure, flag still on) stops signing.
	mk(p1, "losing.example", func(r *domain.Record) { r.Status, r.Failures = domain.CheckMismatch, 1 })
	mk(p1, "never.example", func(r *domain.Record) { r.Verified, r.Status = false, domain.CheckMissing })
	// The same name verified in two projects: both are listed, the most recently
	// checked first, and the caller decides.
	older := mk(p1, "shared.example", func(r *domain.Record) { r.CheckedAt = at(time.Minute) })
	newer := mk(p2, "shared.example", func(r *domain.Record) { r.CheckedAt = at(2 * time.Minute) })

	all, err := s.SigningKeys(ctx, nil)
	if err != nil {
		t.Fatalf("SigningKeys(nil): %v", err)
	}
	var got []string
	for _, k := range all {
		got = append(got, k.Domain+"/"+k.DomainID)
	}
	want := []string{
		"shared.example/" + newer.ID, "shared.example/" + older.ID,
		"signing.example/" + signing.ID, "timeout.example/" + timeout.ID,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("SigningKeys(nil) = %v, want %v", got, want)
	}
	k := all[2]
	if k.Selector != "sel1" || k.ProjectID != p1.ID || !slices.Equal(k.Sealed, sealedKey("signing.example")) {
		t.Errorf("SigningKeys: signing.example = %+v, want selector sel1, project %d and its sealed key", k, p1.ID)
	}
	if !k.CheckedAt.Equal(msUTC(dkim(signing).CheckedAt)) {
		t.Errorf("SigningKeys: CheckedAt = %v, want %v", k.CheckedAt, msUTC(dkim(signing).CheckedAt))
	}

	some, err := s.SigningKeys(ctx, []string{"sub.signing.example", "signing.example", "losing.example", "example"})
	if err != nil {
		t.Fatalf("SigningKeys(names): %v", err)
	}
	if len(some) != 1 || some[0].DomainID != signing.ID {
		t.Errorf("SigningKeys(names) = %+v, want only signing.example", some)
	}
	if none, err := s.SigningKeys(ctx, []string{}); err != nil || len(none) != 0 {
		t.Errorf("SigningKeys(empty) = %v, %v; want nothing", none, err)
	}
}
