// Package storetest holds the conformance tests every store.Store implementation must
// pass. It is an ordinary (non-test) package so that each implementation's own tests
// can run the same suite: SQLite with a temporary file, PostgreSQL with a scratch
// database.
package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/testenv"
)

// Run runs the conformance suite as subtests of t. open must return a fresh, empty,
// migrated store each time it is called; Run closes every store it opens when the
// subtest that opened it ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"EnsureProject", testEnsureProject},
		{"APIKeyRoundTrip", testAPIKeyRoundTrip},
		{"APIKeysOrder", testAPIKeysOrder},
		{"RevokeAPIKey", testRevokeAPIKey},
		{"RevokeAPIKeyAmbiguous", testRevokeAPIKeyAmbiguous},
		{"RevokeAPIKeyNoWildcards", testRevokeAPIKeyNoWildcards},
		{"RevokeAPIKeyCaseSensitive", testRevokeAPIKeyCaseSensitive},
		{"DomainRoundTrip", testDomainRoundTrip},
		{"DomainRoundTripEmptyState", testDomainRoundTripEmptyState},
		{"DuplicateDomain", testDuplicateDomain},
		{"CreateDomainAtomic", testCreateDomainAtomic},
		{"CrossProject", testCrossProject},
		{"DomainsOrderAndPages", testDomainsOrderAndPages},
		{"DeleteDomain", testDeleteDomain},
		{"SaveCheck", testSaveCheck},
		{"SaveCheckDeleted", testSaveCheckDeleted},
		{"SaveChecksTogether", testSaveChecksTogether},
		{"ConcurrentCreateDomain", testConcurrentCreateDomain},
		{"ClaimChecks", testClaimChecks},
		{"ClaimChecksShare", testClaimChecksShare},
		{"EventsAndOutbox", testEventsAndOutbox},
		{"ManyEvents", testManyEvents},
		{"EventPages", testEventPages},
		{"EventCap", testEventCap},
		{"DeliveryCap", testDeliveryCap},
		{"EventPayloads", testEventPayloads},
		{"ClaimFair", testClaimFair},
		{"ClaimParked", testClaimParked},
		{"WebhookLimit", testWebhookLimit},
		{"ClaimConcurrently", testClaimConcurrently},
		{"DomainsAfter", testDomainsAfter},
		{"ConsistentReads", testConsistentReads},
		{"CheckLease", testCheckLease},
		{"FinishCheck", testFinishCheck},
		{"FinishCheckChanged", testFinishCheckChanged},
		{"SaveChecksTogetherWebhooks", testSaveChecksTogetherWebhooks},
		{"AcquireChecks", testAcquireChecks},
		{"DomainsByID", testDomainsByID},
		{"SigningKeys", testSigningKeys},
		{"RotationsTXT", testRotationsTXT},
		{"RotationsCNAME", testRotationsCNAME},
		{"CreateDomainRotating", testCreateDomainRotating},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 has nanoseconds below the millisecond and a zone other than UTC, so a store
// must both truncate to milliseconds and give back the same instant.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 123_456_789, time.FixedZone("CEST", 2*3600))

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// msUTC is the form in which a store gives times back: UTC, whole milliseconds.
func msUTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

// Project returns the project of s with that name, made if need be, failing the
// test on an error: the setup of a store's own tests, as of the ones here.
func Project(t *testing.T, s store.Store, name string) store.Project {
	t.Helper()
	return project(t, s, name)
}

// Domain stores a domain of that name, with records of several kinds, in the
// project and returns it as the test wrote it: the setup of a store's own
// tests of its reads.
func Domain(t *testing.T, s store.Store, projectID int64, name string) *domain.Domain {
	t.Helper()
	d := sampleDomain(projectID, newID(t), name, t0)
	createDomain(t, s, d)
	return d
}

// Wins counts the racers whose call succeeded, errs holding each racer's error,
// and fails the test for any error other than refusal, which is what a racer
// that lost must get; what names the call in messages.
func Wins(t *testing.T, errs []error, refusal error, what string) int {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, refusal):
			t.Errorf("%s, racer %d: %v, want nil or %v", what, i, err, refusal)
		}
	}
	return wins
}

// project is [Project], under the name the tests of this package call it by.
func project(t *testing.T, s store.Store, name string) store.Project {
	t.Helper()
	p, err := s.EnsureProject(t.Context(), name, t0)
	if err != nil {
		t.Fatalf("EnsureProject(%q): %v", name, err)
	}
	return p
}

func testEnsureProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, err := s.EnsureProject(ctx, "acme", t0)
	if err != nil {
		t.Fatalf("EnsureProject(acme): %v", err)
	}
	if a.ID == 0 || a.Name != "acme" || !a.CreatedAt.Equal(msUTC(t0)) {
		t.Errorf("EnsureProject(acme) = %+v, want a non-zero id, name acme, created %v", a, msUTC(t0))
	}
	again, err := s.EnsureProject(ctx, "acme", at(time.Hour))
	if err != nil {
		t.Fatalf("EnsureProject(acme) again: %v", err)
	}
	if again.ID != a.ID || !again.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("EnsureProject(acme) again = %+v, want the first project %+v", again, a)
	}
	b, err := s.EnsureProject(ctx, "beta", t0)
	if err != nil {
		t.Fatalf("EnsureProject(beta): %v", err)
	}
	if b.ID == a.ID {
		t.Errorf("projects acme and beta share id %d", a.ID)
	}
}

// key returns a made-up API key that starts with prefix, and its stored form.
func key(p store.Project, prefix string, created time.Time) (string, store.APIKey) {
	whole := prefix + "-rest-of-the-key-" + fmt.Sprint(created.UnixNano())
	return whole, store.APIKey{
		ProjectID: p.ID,
		Prefix:    prefix,
		Hash:      sha256.Sum256([]byte(whole)),
		CreatedAt: created,
	}
}

func createKey(t *testing.T, s store.Store, k store.APIKey) store.APIKey {
	t.Helper()
	got, err := s.CreateAPIKey(t.Context(), k)
	if err != nil {
		t.Fatalf("CreateAPIKey(%s): %v", k.Prefix, err)
	}
	if got.ID == 0 {
		t.Fatalf("CreateAPIKey(%s) returned id 0", k.Prefix)
	}
	return got
}

func keyByHash(t *testing.T, s store.Store, hash [32]byte) store.APIKey {
	t.Helper()
	k, err := s.APIKeyByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	return k
}

func testAPIKeyRoundTrip(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	beta := project(t, s, "beta")
	_, ka := key(acme, "AS_aaaaaaaa", at(time.Second))
	_, kb := key(beta, "AS_bbbbbbbb", at(2*time.Second))
	ka.ID = createKey(t, s, ka).ID
	kb.ID = createKey(t, s, kb).ID

	for _, want := range []struct {
		k    store.APIKey
		name string
	}{{ka, "acme"}, {kb, "beta"}} {
		got := keyByHash(t, s, want.k.Hash)
		if got.ID != want.k.ID || got.ProjectID != want.k.ProjectID || got.ProjectName != want.name ||
			got.Prefix != want.k.Prefix || got.Hash != want.k.Hash {
			t.Errorf("APIKeyByHash(%s) = %+v, want id %d, project %d %q, prefix %s and the same hash",
				want.k.Prefix, got, want.k.ID, want.k.ProjectID, want.name, want.k.Prefix)
		}
		if !got.CreatedAt.Equal(msUTC(want.k.CreatedAt)) || !got.RevokedAt.IsZero() {
			t.Errorf("APIKeyByHash(%s): created %v revoked %v, want created %v, not revoked",
				want.k.Prefix, got.CreatedAt, got.RevokedAt, msUTC(want.k.CreatedAt))
		}
	}

	if _, err := s.APIKeyByHash(t.Context(), sha256.Sum256([]byte("AS_unknown"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("APIKeyByHash(unknown) error = %v, want ErrNotFound", err)
	}
}

func testAPIKeysOrder(t *testing.T, s store.Store) {
	keys, err := s.APIKeys(t.Context())
	if err != nil || len(keys) != 0 {
		t.Fatalf("APIKeys() on an empty store = %v, %v; want none", keys, err)
	}
	acme := project(t, s, "acme")
	beta := project(t, s, "beta")
	var want []string
	for i, p := range []store.Project{beta, acme, beta} {
		prefix := fmt.Sprintf("AS_order%03d", i)
		_, k := key(p, prefix, at(time.Duration(i)*time.Minute))
		createKey(t, s, k)
		want = append(want, prefix+"/"+p.Name)
	}
	keys, err = s.APIKeys(t.Context())
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Prefix+"/"+k.ProjectName)
	}
	if !slices.Equal(got, want) {
		t.Errorf("APIKeys() = %v, want oldest first %v", got, want)
	}
}

func testRevokeAPIKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	for _, tc := range []struct {
		name   string
		prefix string
		arg    func(whole string) string
	}{
		{"stored prefix", "AS_Full0001", func(string) string { return "AS_Full0001" }},
		{"shorter start", "AS_Short001", func(string) string { return "AS_Sho" }},
		{"whole key", "AS_Whole001", func(whole string) string { return whole }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, k := key(acme, tc.prefix, t0)
			k.ID = createKey(t, s, k).ID
			revoked := at(time.Hour)
			got, err := s.RevokeAPIKey(ctx, tc.arg(whole), revoked)
			if err != nil {
				t.Fatalf("RevokeAPIKey(%q): %v", tc.arg(whole), err)
			}
			if got.ID != k.ID || got.Prefix != k.Prefix || got.ProjectName != "acme" || !got.RevokedAt.Equal(msUTC(revoked)) {
				t.Errorf("RevokeAPIKey(%q) = %+v, want key %d (%s) of acme revoked at %v",
					tc.arg(whole), got, k.ID, k.Prefix, msUTC(revoked))
			}
			if stored := keyByHash(t, s, k.Hash); !stored.RevokedAt.Equal(msUTC(revoked)) {
				t.Errorf("after revoking, stored RevokedAt = %v, want %v", stored.RevokedAt, msUTC(revoked))
			}

			// Revoking again succeeds and keeps the first time.
			got, err = s.RevokeAPIKey(ctx, tc.arg(whole), at(2*time.Hour))
			if err != nil {
				t.Fatalf("RevokeAPIKey(%q) again: %v", tc.arg(whole), err)
			}
			if !got.RevokedAt.Equal(msUTC(revoked)) {
				t.Errorf("RevokeAPIKey again: RevokedAt = %v, want the first %v", got.RevokedAt, msUTC(revoked))
			}
			if stored := keyByHash(t, s, k.Hash); !stored.RevokedAt.Equal(msUTC(revoked)) {
				t.Errorf("after revoking twice, stored RevokedAt = %v, want the first %v", stored.RevokedAt, msUTC(revoked))
			}
		})
	}

	// The keys revoked above were revoked one by one: none of them took another with it.
	keys, err := s.APIKeys(ctx)
	if err != nil {
		t.Fatalf("APIKeys: %v", err)
	}
	if len(keys) != 3 {
		t.Fatalf("APIKeys() has %d keys, want 3", len(keys))
	}

	_, bystander := key(acme, "AS_Bystand1", t0)
	createKey(t, s, bystander)
	if _, err := s.RevokeAPIKey(ctx, "AS_Unknown", at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeAPIKey(unknown) error = %v, want ErrNotFound", err)
	}
	if k := keyByHash(t, s, bystander.Hash); !k.RevokedAt.IsZero() {
		t.Errorf("an unrelated key was revoked at %v", k.RevokedAt)
	}
}

func testRevokeAPIKeyAmbiguous(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	beta := project(t, s, "beta")
	_, k1 := key(acme, "AS_ab000001", t0)
	_, k2 := key(beta, "AS_ab000002", t0)
	createKey(t, s, k1)
	createKey(t, s, k2)
	if _, err := s.RevokeAPIKey(t.Context(), "AS_ab", at(time.Hour)); !errors.Is(err, store.ErrAmbiguous) {
		t.Errorf("RevokeAPIKey(AS_ab) with two matching keys: error = %v, want ErrAmbiguous", err)
	}
	for _, k := range []store.APIKey{k1, k2} {
		if got := keyByHash(t, s, k.Hash); !got.RevokedAt.IsZero() {
			t.Errorf("ambiguous revoke revoked %s anyway", k.Prefix)
		}
	}
	// A longer prefix tells them apart.
	if got, err := s.RevokeAPIKey(t.Context(), "AS_ab000002", at(time.Hour)); err != nil || got.Hash != k2.Hash {
		t.Errorf("RevokeAPIKey(AS_ab000002) = %s, %v; want AS_ab000002 revoked", got.Prefix, err)
	}
}

// testRevokeAPIKeyNoWildcards checks that % and _, which keys and prefixes may
// contain, are matched as themselves and never as LIKE wildcards, in the prefix the
// operator types and in the stored prefix alike.
func testRevokeAPIKeyNoWildcards(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	_, k := key(acme, "AS_x1234567", t0)
	createKey(t, s, k)
	for _, arg := range []string{
		"%",                       // would match every prefix
		"AS%",                     // would match every AS key
		"A_",                      // _ would match the S
		"AS_x_234567",             // _ would match the 1
		"ASXx1234567",             // the stored _ would match the X of a longer key
		"ASXx1234567-rest-of-key", // the same, typing the whole key
	} {
		if got, err := s.RevokeAPIKey(t.Context(), arg, at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeAPIKey(%q) = %s, %v; want ErrNotFound", arg, got.Prefix, err)
		}
	}
	if got := keyByHash(t, s, k.Hash); !got.RevokedAt.IsZero() {
		t.Fatalf("a wildcard revoked %s", k.Prefix)
	}
	// The _ of a real prefix still matches itself.
	if got, err := s.RevokeAPIKey(t.Context(), "AS_x", at(time.Hour)); err != nil || got.Hash != k.Hash {
		t.Errorf("RevokeAPIKey(AS_x) = %s, %v; want %s revoked", got.Prefix, err, k.Prefix)
	}
}

// testRevokeAPIKeyCaseSensitive checks that prefixes compare byte for byte: keys are
// base64, in which a and A are different digits.
func testRevokeAPIKeyCaseSensitive(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	_, lower := key(acme, "AS_abcdefgh", t0)
	_, upper := key(acme, "AS_ABCDEFGH", t0)
	createKey(t, s, lower)
	createKey(t, s, upper)
	got, err := s.RevokeAPIKey(t.Context(), "AS_abcd", at(time.Hour))
	if err != nil || got.Hash != lower.Hash {
		t.Fatalf("RevokeAPIKey(AS_abcd) = %s, %v; want AS_abcdefgh revoked", got.Prefix, err)
	}
	if k := keyByHash(t, s, upper.Hash); !k.RevokedAt.IsZero() {
		t.Errorf("revoking AS_abcd revoked AS_ABCDEFGH too")
	}
	if _, err := s.RevokeAPIKey(t.Context(), "AS_aBcD", at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeAPIKey(AS_aBcD) error = %v, want ErrNotFound", err)
	}
}

// sampleDomain returns a domain of the project whose every field, and every record's
// state, has a distinct value, so that a store mixing up two columns is caught. A
// record's purpose is the one its key gives, which is all a store gives back.
func sampleDomain(projectID int64, id, name string, created time.Time) *domain.Domain {
	c := func(d time.Duration) time.Time { return created.Add(d) }
	// published is a TXT record that the last check found as it should be.
	published := func(key domain.RecordKey, owner, value string, updated time.Time) domain.Record {
		return domain.Record{
			Key: key, Name: owner, Type: "TXT", Value: value, Purpose: key.Purpose(),
			Verified: true, Status: domain.CheckVerified, Found: []string{value},
			CheckedAt: c(5 * time.Minute), CreatedAt: created, UpdatedAt: updated,
		}
	}
	return &domain.Domain{
		ID:                id,
		ProjectID:         projectID,
		Name:              name,
		Region:            "eu-central-1",
		Status:            domain.StatusPending,
		OwnershipVerified: true,
		DKIMEnabled:       false,
		MailFromEnabled:   true,
		DMARCEnabled:      false,
		CreatedAt:         created,
		LastCheckedAt:     c(5 * time.Minute),
		VerifiedAt:        c(3 * time.Minute),
		InboundEnabledAt:  c(time.Minute),
		InboundVerifiedAt: c(2 * time.Minute),
		// Display order, which is not the alphabetical order of the keys.
		Records: []domain.Record{
			published(domain.KeyOwnership, "_autosend-verify."+name, "autosend-verify-0123456789abcdef0123456789abcdef", c(3*time.Minute)),
			{
				Key: domain.KeyDKIM, Name: "autosend._domainkey." + name, Type: "TXT",
				Value: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", Purpose: domain.KeyDKIM.Purpose(),
				Status: domain.CheckMismatch,
				Found:  []string{`v=DKIM1; k=rsa; p="old"`, "second \"quoted\" string, ünïcode"},
				Problems: []domain.Problem{
					{Code: "DKIM_KEY_MISMATCH", Message: "The published key is not the one we generated."},
					{Code: "MULTIPLE_RECORDS", Message: "Remove all but one record."},
				},
				Propagation: []domain.Sighting{
					{Server: "127.0.0.2:53", Role: domain.RoleAuthoritative, Zone: name, Status: domain.CheckMismatch, Values: []string{`v=DKIM1; k=rsa; p="old"`}},
					{Server: "127.0.0.1:53", Role: domain.RoleResolver, Status: domain.CheckTemporaryFailure, Error: "timed out"},
				},
				Failures: 2, CheckedAt: c(4 * time.Minute), CreatedAt: created, UpdatedAt: c(4 * time.Minute),
			},
			{
				Key: domain.KeyMailFromMX, Name: "mail." + name, Type: "MX", Priority: 10,
				Value: "feedback-smtp.eu-central-1.amazonses.com", Purpose: domain.KeyMailFromMX.Purpose(),
				Verified: true, Status: domain.CheckTemporaryFailure, Failures: 0,
				Problems:  []domain.Problem{{Code: "DNS_TIMEOUT", Message: "No answer in time."}},
				CheckedAt: c(5 * time.Minute), CreatedAt: created, UpdatedAt: c(2 * time.Minute),
			},
			published(domain.KeyMailFromSPF, "mail."+name, "v=spf1 include:amazonses.com ~all", c(2*time.Minute)),
			{
				Key: domain.KeyDMARC, Name: "_dmarc." + name, Type: "TXT",
				Value: "v=DMARC1; p=none;", Purpose: domain.KeyDMARC.Purpose(),
				Status: domain.CheckMissing, Failures: 7,
				Problems:  []domain.Problem{{Code: "NOT_FOUND", Message: "Publish the record."}},
				CheckedAt: c(5 * time.Minute), CreatedAt: created, UpdatedAt: created,
			},
			{
				Key: domain.KeyInboundMX, Name: name, Type: "MX", Priority: 65535,
				Value: "inbound-smtp.eu-central-1.amazonaws.com", Purpose: domain.KeyInboundMX.Purpose(),
				Status: domain.CheckUnchecked, CreatedAt: c(time.Minute), UpdatedAt: c(time.Minute),
			},
		},
	}
}

// sampleDomains returns n sample domains of the project, created at t0, the
// i-th named name(i).
func sampleDomains(t *testing.T, projectID int64, n int, name func(i int) string) []*domain.Domain {
	t.Helper()
	ds := make([]*domain.Domain, n)
	for i := range ds {
		ds[i] = sampleDomain(projectID, newID(t), name(i), t0)
	}
	return ds
}

// newID returns a fresh domain id.
func newID(t *testing.T) string {
	t.Helper()
	id, err := domain.NewID(t0)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sealedKey is a made-up sealed DKIM key: binary, with zero bytes and bytes that are
// not UTF-8, tagged with the domain's name so that keys of two domains differ.
func sealedKey(name string) []byte {
	return append([]byte{1, 0, 0xff, 0xfe, 0x80, 0}, name...)
}

func createDomain(t *testing.T, s store.Store, d *domain.Domain) {
	t.Helper()
	if err := s.CreateDomain(t.Context(), clone(d), sealedKey(d.Name)); err != nil {
		t.Fatalf("CreateDomain(%s %s): %v", d.ID, d.Name, err)
	}
}

// clone returns a deep copy of d, so that a store cannot change the test's values.
func clone(d *domain.Domain) *domain.Domain {
	c := *d
	c.Records = slices.Clone(d.Records)
	for i := range c.Records {
		c.Records[i].Found = slices.Clone(c.Records[i].Found)
		c.Records[i].Problems = slices.Clone(c.Records[i].Problems)
		c.Records[i].Propagation = slices.Clone(c.Records[i].Propagation)
		for j := range c.Records[i].Propagation {
			c.Records[i].Propagation[j].Values = slices.Clone(c.Records[i].Propagation[j].Values)
		}
	}
	return &c
}

// normal returns d as a store gives it back: times in UTC at whole milliseconds, and
// empty lists of found values and problems as nil.
func normal(d *domain.Domain) *domain.Domain {
	c := clone(d)
	for _, p := range []*time.Time{&c.CreatedAt, &c.LastCheckedAt, &c.VerifiedAt, &c.InboundEnabledAt, &c.InboundVerifiedAt} {
		*p = msUTC(*p)
	}
	for i := range c.Records {
		r := &c.Records[i]
		r.CheckedAt, r.CreatedAt, r.UpdatedAt = msUTC(r.CheckedAt), msUTC(r.CreatedAt), msUTC(r.UpdatedAt)
		if len(r.Found) == 0 {
			r.Found = nil
		}
		if len(r.Problems) == 0 {
			r.Problems = nil
		}
		if len(r.Propagation) == 0 {
			r.Propagation = nil
		}
		for j := range r.Propagation {
			if len(r.Propagation[j].Values) == 0 {
				r.Propagation[j].Values = nil
			}
		}
	}
	return c
}

// checkDomain reports every difference between got and want, as a store should give
// want back. Times are compared as instants, and a store may return an empty list
// where it was given none.
func checkDomain(t *testing.T, got, want *domain.Domain) {
	t.Helper()
	g, w := normal(got), normal(want)
	// normal truncates got's times as well; compare those separately so that a store
	// returning more precision than milliseconds is still caught.
	if !sameInstants(got, g) {
		t.Errorf("domain %s: times are not at millisecond precision: %+v", want.ID, got)
	}
	gr, wr := g.Records, w.Records
	g.Records, w.Records = nil, nil
	// The version is the store's to count (testFinishCheckChanged checks it).
	g.Version, w.Version = 0, 0
	if !reflect.DeepEqual(g, w) {
		t.Errorf("domain %s:\n got %+v\nwant %+v", want.ID, g, w)
	}
	if len(gr) != len(wr) {
		t.Errorf("domain %s has %d records %v, want %d %v", want.ID, len(gr), keys(gr), len(wr), keys(wr))
		return
	}
	for i := range wr {
		if !reflect.DeepEqual(gr[i], wr[i]) {
			t.Errorf("domain %s record %d:\n got %+v\nwant %+v", want.ID, i, gr[i], wr[i])
		}
	}
}

func sameInstants(a, b *domain.Domain) bool {
	eq := func(x, y time.Time) bool { return x.Equal(y) }
	ok := eq(a.CreatedAt, b.CreatedAt) && eq(a.LastCheckedAt, b.LastCheckedAt) && eq(a.VerifiedAt, b.VerifiedAt) &&
		eq(a.InboundEnabledAt, b.InboundEnabledAt) && eq(a.InboundVerifiedAt, b.InboundVerifiedAt)
	for i := range a.Records {
		ra, rb := a.Records[i], b.Records[i]
		ok = ok && eq(ra.CheckedAt, rb.CheckedAt) && eq(ra.CreatedAt, rb.CreatedAt) && eq(ra.UpdatedAt, rb.UpdatedAt)
	}
	return ok
}

func keys(rs []domain.Record) []domain.RecordKey {
	var ks []domain.RecordKey
	for _, r := range rs {
		ks = append(ks, r.Key)
	}
	return ks
}

func getDomain(t *testing.T, s store.Store, projectID int64, id string) *domain.Domain {
	t.Helper()
	d, err := s.Domain(t.Context(), projectID, id)
	if err != nil {
		t.Fatalf("Domain(%d, %s): %v", projectID, id, err)
	}
	return d
}

// checkGone fails the test unless neither the domain nor its sealed DKIM key
// is found; what names the domain in messages.
func checkGone(t *testing.T, s store.Store, projectID int64, id, what string) {
	t.Helper()
	if _, err := s.Domain(t.Context(), projectID, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain(%s) error = %v, want ErrNotFound", what, err)
	}
	if _, err := s.SealedDKIMKey(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SealedDKIMKey(%s) error = %v, want ErrNotFound", what, err)
	}
}

func checkSealedKey(t *testing.T, s store.Store, id string, want []byte) {
	t.Helper()
	got, err := s.SealedDKIMKey(t.Context(), id)
	if err != nil {
		t.Fatalf("SealedDKIMKey(%s): %v", id, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("SealedDKIMKey(%s) = %x, want %x", id, got, want)
	}
}

func testDomainRoundTrip(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	d := sampleDomain(acme.ID, newID(t), "example.com", t0)
	createDomain(t, s, d)
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)
	checkSealedKey(t, s, d.ID, sealedKey(d.Name))

	if _, err := s.Domain(t.Context(), acme.ID, newID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain(unknown id) error = %v, want ErrNotFound", err)
	}
	if _, err := s.SealedDKIMKey(t.Context(), newID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SealedDKIMKey(unknown id) error = %v, want ErrNotFound", err)
	}
}

// testDomainRoundTripEmptyState stores a domain as it is when first created: nothing
// checked, no optional times, no records seen.
func testDomainRoundTripEmptyState(t *testing.T, s store.Store) {
	acme := project(t, s, "acme")
	d := &domain.Domain{
		ID: newID(t), ProjectID: acme.ID, Name: "fresh.example", Region: "us-east-1",
		Status: domain.StatusPendingConfiguration, CreatedAt: t0, LastCheckedAt: t0,
		Records: []domain.Record{
			{Key: domain.KeyOwnership, Name: "_autosend-verify.fresh.example", Type: "TXT", Value: "v",
				Purpose: domain.KeyOwnership.Purpose(), Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0},
			{Key: domain.KeyDKIM, Name: "autosend._domainkey.fresh.example", Type: "TXT", Value: "k",
				Purpose: domain.KeyDKIM.Purpose(), Status: domain.CheckUnchecked, CreatedAt: t0, UpdatedAt: t0,
				Found: []string{}, Problems: []domain.Problem{}},
		},
	}
	createDomain(t, s, d)
	got := getDomain(t, s, acme.ID, d.ID)
	checkDomain(t, got, d)
	if len(got.Records) == 0 {
		t.Fatal("Domain returned no records")
	}
	if !got.VerifiedAt.IsZero() || !got.InboundEnabledAt.IsZero() || !got.Records[0].CheckedAt.IsZero() {
		t.Errorf("unset times came back set: %+v", got)
	}
}

// twoProjects stores the domain example.com in the project acme, and returns
// it with the project beta, which has no domain.
func twoProjects(t *testing.T, s store.Store) (acme, beta store.Project, d *domain.Domain) {
	t.Helper()
	acme, beta = project(t, s, "acme"), project(t, s, "beta")
	d = sampleDomain(acme.ID, newID(t), "example.com", t0)
	createDomain(t, s, d)
	return acme, beta, d
}

func testDuplicateDomain(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme, beta, first := twoProjects(t, s)

	dup := sampleDomain(acme.ID, newID(t), "example.com", at(time.Hour))
	dup.Region = "us-east-2"
	for i := range dup.Records {
		dup.Records[i].Value += "-dup"
	}
	if err := s.CreateDomain(ctx, clone(dup), []byte("dup key")); !errors.Is(err, store.ErrDomainExists) {
		t.Fatalf("CreateDomain(duplicate name) error = %v, want ErrDomainExists", err)
	}
	checkGone(t, s, acme.ID, dup.ID, "failed duplicate")
	checkDomain(t, getDomain(t, s, acme.ID, first.ID), first)
	checkSealedKey(t, s, first.ID, sealedKey(first.Name))
	if ds, total, err := s.Domains(ctx, acme.ID, store.Page{}); err != nil || total != 1 || len(ds) != 1 {
		t.Errorf("Domains(acme) = %d domains, total %d, %v; want 1", len(ds), total, err)
	}

	// The same name in another project is another domain. Reusing the failed
	// domain's id also shows that none of its records were left behind.
	dup.ProjectID = beta.ID
	if err := s.CreateDomain(ctx, clone(dup), []byte("beta key")); err != nil {
		t.Fatalf("CreateDomain(same name, other project): %v", err)
	}
	checkDomain(t, getDomain(t, s, beta.ID, dup.ID), dup)
	checkSealedKey(t, s, dup.ID, []byte("beta key"))
	checkDomain(t, getDomain(t, s, acme.ID, first.ID), first)
}

// testCreateDomainAtomic checks that a domain whose records cannot all be stored (two
// share a key) is not stored at all, not even its domain row or its key.
func testCreateDomainAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	d := sampleDomain(acme.ID, newID(t), "example.com", t0)
	bad := clone(d)
	bad.Records = append(bad.Records, bad.Records[0])
	if err := s.CreateDomain(ctx, bad, sealedKey(d.Name)); err == nil {
		t.Fatal("CreateDomain with two records of one key succeeded, want an error")
	}
	checkGone(t, s, acme.ID, d.ID, "failed insert")
	if ds, total, err := s.Domains(ctx, acme.ID, store.Page{}); err != nil || total != 0 || len(ds) != 0 {
		t.Errorf("Domains after a failed insert = %d domains, total %d, %v; want none", len(ds), total, err)
	}
	createDomain(t, s, d)
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)
}

func testCrossProject(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme, beta, d := twoProjects(t, s)

	if got, err := s.Domain(ctx, beta.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain(other project) = %v, %v; want ErrNotFound", got, err)
	}
	if ds, total, err := s.Domains(ctx, beta.ID, store.Page{}); err != nil || total != 0 || len(ds) != 0 {
		t.Errorf("Domains(other project) = %d domains, total %d, %v; want none", len(ds), total, err)
	}
	if err := s.DeleteDomain(ctx, beta.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDomain(other project) error = %v, want ErrNotFound", err)
	}
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)
	checkSealedKey(t, s, d.ID, sealedKey(d.Name))
}

func testDomainsOrderAndPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	beta := project(t, s, "beta")
	empty := project(t, s, "empty")

	// Inserted out of order, with ids whose order is not the creation order. Two
	// share a creation time, and two more differ only below the millisecond, which
	// is not stored: both pairs fall back to id order.
	ins := []*domain.Domain{
		sampleDomain(acme.ID, "000000000000000000000001", "d.example", at(3*time.Minute)),
		sampleDomain(acme.ID, "000000000000000000000006", "b.example", at(time.Minute)),
		sampleDomain(acme.ID, "000000000000000000000005", "a.example", at(time.Minute)),
		sampleDomain(acme.ID, "000000000000000000000003", "e.example", at(4*time.Minute+100*time.Microsecond)),
		sampleDomain(acme.ID, "000000000000000000000002", "c.example", at(2*time.Minute)),
		sampleDomain(acme.ID, "000000000000000000000004", "f.example", at(4*time.Minute+50*time.Microsecond)),
		sampleDomain(beta.ID, "000000000000000000000000", "a.example", t0),
	}
	// t0 is .123456789 s, so +50µs and +100µs stay within the same millisecond.
	for _, d := range ins {
		createDomain(t, s, d)
	}
	byName := map[string]*domain.Domain{}
	for _, d := range ins[:6] {
		byName[d.Name] = d
	}
	order := []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example"}

	for _, tc := range []struct {
		page store.Page
		want []string
	}{
		{store.Page{}, order},
		{store.Page{Limit: 2}, order[:2]},
		{store.Page{Limit: 2, Offset: 1}, order[1:3]},
		{store.Page{Limit: 4, Offset: 4}, order[4:]},
		{store.Page{Offset: 3}, order[3:]},
		{store.Page{Limit: 10, Offset: 6}, nil},
		{store.Page{Offset: 100}, nil},
	} {
		ds, total, err := s.Domains(ctx, acme.ID, tc.page)
		if err != nil {
			t.Fatalf("Domains(%+v): %v", tc.page, err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.Name)
		}
		if total != 6 || !slices.Equal(got, tc.want) {
			t.Errorf("Domains(%+v) = %v, total %d; want %v, total 6", tc.page, got, total, tc.want)
			continue
		}
		for _, d := range ds {
			checkDomain(t, d, byName[d.Name])
		}
	}

	if ds, total, err := s.Domains(ctx, beta.ID, store.Page{}); err != nil || total != 1 || len(ds) != 1 {
		t.Errorf("Domains(beta) = %d domains, total %d, %v; want 1", len(ds), total, err)
	} else {
		checkDomain(t, ds[0], ins[6])
	}
	if ds, total, err := s.Domains(ctx, empty.ID, store.Page{Limit: 5}); err != nil || total != 0 || len(ds) != 0 {
		t.Errorf("Domains(empty project) = %d domains, total %d, %v; want none", len(ds), total, err)
	}
}

// twoDomains stores the domains example.com and other.example in the project
// acme. other has the same record keys as d, so a write that forgets which
// domain it is writing shows up in it.
func twoDomains(t *testing.T, s store.Store) (acme store.Project, d, other *domain.Domain) {
	t.Helper()
	acme = project(t, s, "acme")
	d = sampleDomain(acme.ID, newID(t), "example.com", t0)
	other = sampleDomain(acme.ID, newID(t), "other.example", t0)
	createDomain(t, s, d)
	createDomain(t, s, other)
	return acme, d, other
}

func testDeleteDomain(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme, d, other := twoDomains(t, s)

	if err := s.DeleteDomain(ctx, acme.ID, d.ID); err != nil {
		t.Fatalf("DeleteDomain: %v", err)
	}
	checkGone(t, s, acme.ID, d.ID, "deleted")
	if err := s.DeleteDomain(ctx, acme.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDomain(deleted) error = %v, want ErrNotFound", err)
	}
	if ds, total, err := s.Domains(ctx, acme.ID, store.Page{}); err != nil || total != 1 || len(ds) != 1 || ds[0].ID != other.ID {
		t.Errorf("Domains after delete = %d domains, total %d, %v; want only %s", len(ds), total, err, other.ID)
	}
	checkDomain(t, getDomain(t, s, acme.ID, other.ID), other)
	checkSealedKey(t, s, other.ID, sealedKey(other.Name))

	// A domain created again under the same id gets exactly its new records: the
	// deleted domain's records went with it.
	again := sampleDomain(acme.ID, d.ID, "example.com", at(time.Hour))
	again.Records = again.Records[:2]
	again.Records[1].Value = "new key"
	if err := s.CreateDomain(ctx, clone(again), []byte("new sealed key")); err != nil {
		t.Fatalf("CreateDomain(same id after delete): %v", err)
	}
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), again)
	checkSealedKey(t, s, d.ID, []byte("new sealed key"))
}

func testSaveCheck(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme, d, other := twoDomains(t, s)

	checked := at(time.Hour)
	d.Status = domain.StatusVerified
	d.OwnershipVerified, d.DKIMEnabled, d.MailFromEnabled, d.DMARCEnabled = false, true, false, true
	d.LastCheckedAt = checked
	d.VerifiedAt = at(50 * time.Minute)
	d.InboundVerifiedAt = at(55 * time.Minute)
	for i := range d.Records {
		r := &d.Records[i]
		r.Verified = !r.Verified
		r.Failures = i + 10
		r.CheckedAt = checked.Add(time.Duration(i) * time.Millisecond)
		r.UpdatedAt = checked.Add(time.Duration(i) * time.Second)
	}
	d.Records[0].Status, d.Records[0].Found, d.Records[0].Problems = domain.CheckMismatch,
		[]string{"autosend-verify-wrong"}, []domain.Problem{{Code: "TOKEN_MISMATCH", Message: "Copy the token again."}}
	d.Records[1].Status, d.Records[1].Found, d.Records[1].Problems = domain.CheckVerified,
		[]string{"v=DKIM1; p=MIIB"}, nil
	d.Records[1].Propagation = []domain.Sighting{{Server: "127.0.0.3:53", Role: domain.RoleAuthoritative, Status: domain.CheckVerified, Values: []string{"v=DKIM1; p=MIIB"}}}
	d.Records[4].Status, d.Records[4].Found, d.Records[4].Problems = domain.CheckVerified,
		[]string{"v=DMARC1; p=none;"}, nil
	d.Records[5].Status, d.Records[5].Found = domain.CheckMissing, []string{}

	if err := s.SaveCheck(ctx, clone(d), nil); err != nil {
		t.Fatalf("SaveCheck: %v", err)
	}
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)
	checkDomain(t, getDomain(t, s, acme.ID, other.ID), other)
	checkSealedKey(t, s, d.ID, sealedKey(d.Name))

	// A second check that clears what the first found.
	for i := range d.Records {
		d.Records[i].Found, d.Records[i].Problems, d.Records[i].Propagation = nil, nil, nil
		d.Records[i].Status = domain.CheckTemporaryFailure
	}
	d.LastCheckedAt = at(2 * time.Hour)
	if err := s.SaveCheck(ctx, clone(d), nil); err != nil {
		t.Fatalf("SaveCheck again: %v", err)
	}
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)

	// A check of a record whose value was replaced meanwhile (a DKIM key
	// rotation moved another key under its key) leaves the new one alone.
	stale := clone(d)
	stale.LastCheckedAt = at(3 * time.Hour)
	stale.Records[1].Value = "v=DKIM1; k=rsa; p=OLD"
	stale.Records[1].Verified, stale.Records[1].Status, stale.Records[1].Failures = false, domain.CheckMismatch, 99
	if err := s.SaveCheck(ctx, stale, nil); err != nil {
		t.Fatalf("SaveCheck of a replaced record: %v", err)
	}
	d.LastCheckedAt = stale.LastCheckedAt
	checkDomain(t, getDomain(t, s, acme.ID, d.ID), d)
}

func testSaveCheckDeleted(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	d := sampleDomain(acme.ID, newID(t), "example.com", t0)
	createDomain(t, s, d)
	if err := s.DeleteDomain(ctx, acme.ID, d.ID); err != nil {
		t.Fatalf("DeleteDomain: %v", err)
	}
	d.Status = domain.StatusVerified
	d.LastCheckedAt = at(time.Hour)
	if err := s.SaveCheck(ctx, clone(d), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SaveCheck(deleted domain) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Domain(ctx, acme.ID, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain after SaveCheck of a deleted domain: error = %v, want ErrNotFound", err)
	}
}

func testConcurrentCreateDomain(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	ds := sampleDomains(t, acme.ID, 8, func(int) string { return "race.example" })
	errs := make([]error, len(ds))
	testenv.Race(len(ds), func(i int) {
		errs[i] = s.CreateDomain(ctx, clone(ds[i]), sealedKey(ds[i].ID))
	})

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Errorf("CreateDomain succeeded for both %s and %s", ds[winner].ID, ds[i].ID)
		case !errors.Is(err, store.ErrDomainExists):
			t.Errorf("CreateDomain(%s) error = %v, want nil or ErrDomainExists", ds[i].ID, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no CreateDomain succeeded: %v", errs)
	}
	got, total, err := s.Domains(ctx, acme.ID, store.Page{})
	if err != nil || total != 1 || len(got) != 1 {
		t.Fatalf("Domains after the race = %d domains, total %d, %v; want 1", len(got), total, err)
	}
	checkDomain(t, got[0], ds[winner])
	checkSealedKey(t, s, ds[winner].ID, sealedKey(ds[winner].ID))
}
