package signing

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
)

func TestCandidates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"Mail.Example.COM.", []string{"mail.example.com", "example.com"}},
		{"example.com", []string{"example.com"}},
		{"com", nil},
		{"", nil},
		{"a.b.c.d.e.f.g.h.i.j.example.com", []string{
			"a.b.c.d.e.f.g.h.i.j.example.com", "b.c.d.e.f.g.h.i.j.example.com", "c.d.e.f.g.h.i.j.example.com",
			"d.e.f.g.h.i.j.example.com", "e.f.g.h.i.j.example.com", "f.g.h.i.j.example.com",
			"g.h.i.j.example.com", "h.i.j.example.com"}},
	} {
		if got := Candidates(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHeaderKeys(t *testing.T) {
	for _, tc := range []struct {
		present []string
		want    []string
	}{
		// From is signed once more than it occurs, so an added From breaks the signature.
		{[]string{"from", "To", "Subject", "Received", "X-Mailer"}, []string{"From", "From", "Subject", "To"}},
		// Without a From, it is still named once: nothing can be added unnoticed.
		{[]string{"Subject"}, []string{"From", "Subject"}},
		// Repeated fields are signed as often as they occur.
		{[]string{"From", "Cc", "CC", "Date", "Message-Id", "Received", "Return-Path"}, []string{"From", "From", "Date", "Cc", "Cc", "Message-ID"}},
	} {
		if got := HeaderKeys(tc.present); !slices.Equal(got, tc.want) {
			t.Errorf("HeaderKeys(%q) = %q, want %q", tc.present, got, tc.want)
		}
	}
}

// fixture is a SQLite store with domains whose DKIM state a test sets.
type fixture struct {
	t      *testing.T
	st     *sqlite.Store
	sealer *records.Sealer
}

func newFixture(t *testing.T) *fixture {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := records.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, sealer: sealer}
}

var rc = func() records.Config { c := records.DefaultConfig(); c.DKIMBits = 1024; return c }()

// add creates name in project with a fresh key and the given DKIM outcome at checked.
func (f *fixture) add(project, name string, status domain.CheckStatus, checked time.Time) (*domain.Domain, *rsa.PrivateKey) {
	t := f.t
	ctx := t.Context()
	p, err := f.st.EnsureProject(ctx, project, checked)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := rc.Generate(name, "us-east-1", checked)
	if err != nil {
		t.Fatal(err)
	}
	id, err := domain.NewID(checked)
	if err != nil {
		t.Fatal(err)
	}
	d := &domain.Domain{ID: id, ProjectID: p.ID, Name: name, Region: "us-east-1", Status: domain.StatusPendingConfiguration,
		Records: gen.Records, CreatedAt: checked, LastCheckedAt: checked}
	sealed, err := f.sealer.Seal(gen.DKIMPrivateKey, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateDomain(ctx, d, sealed); err != nil {
		t.Fatal(err)
	}
	d.Apply([]domain.Observation{{Key: domain.KeyDKIM, Status: status}}, checked, domain.Rules{DegradeAfter: 3})
	if err := f.st.SaveCheck(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(gen.DKIMPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return d, priv.(*rsa.PrivateKey)
}

func TestFor(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	_, parentKey := f.add("acme", "example.com", domain.CheckVerified, now)
	f.add("acme", "pending.example.com", domain.CheckMissing, now)
	_, oldKey := f.add("acme", "shared.example", domain.CheckVerified, now.Add(-time.Hour))
	shared, newKey := f.add("globex", "shared.example", domain.CheckVerified, now)
	keys := New(f.st, f.sealer)
	ctx := t.Context()

	for _, tc := range []struct {
		from   string
		domain string
		key    *rsa.PrivateKey
	}{
		{"EXAMPLE.com.", "example.com", parentKey},
		// An unverified subdomain signs with its closest verified parent.
		{"pending.example.com", "example.com", parentKey},
		{"a.b.example.com", "example.com", parentKey},
		// Two projects verified one name: the latest check to verify wins.
		{"shared.example", "shared.example", newKey},
	} {
		k, err := keys.For(ctx, tc.from)
		if err != nil {
			t.Errorf("For(%q): %v", tc.from, err)
			continue
		}
		if k.Domain != tc.domain || k.Selector != "autosend" || !k.Private.Equal(tc.key) {
			t.Errorf("For(%q) = %s selector %s (matching key: %v), want %s", tc.from, k.Domain, k.Selector, k.Private.Equal(tc.key), tc.domain)
		}
	}
	if k, _ := keys.For(ctx, "shared.example"); k.Private.Equal(oldKey) || k.DomainID != shared.ID {
		t.Errorf("For(shared.example) chose the project checked earlier")
	}
	for _, from := range []string{"other.example", "com", "", "example.org."} {
		if _, err := keys.For(ctx, from); !errors.Is(err, ErrNoKey) {
			t.Errorf("For(%q) error = %v, want ErrNoKey", from, err)
		}
	}

	// One definite failure stops signing at once, whatever --degrade-after says.
	d, err := f.st.Domain(ctx, shared.ProjectID, shared.ID)
	if err != nil {
		t.Fatal(err)
	}
	d.Apply([]domain.Observation{{Key: domain.KeyDKIM, Status: domain.CheckMismatch}}, now.Add(time.Minute), domain.Rules{DegradeAfter: 3})
	if !d.DKIMEnabled {
		t.Fatal("test setup: dkimEnabled should survive one failure")
	}
	if err := f.st.SaveCheck(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	if k, err := keys.For(ctx, "shared.example"); err != nil || !k.Private.Equal(oldKey) {
		t.Errorf("For(shared.example) after the newer project lost its record: err %v, old key %v; want the other project's key", err, err == nil && k.Private.Equal(oldKey))
	}

	all, err := keys.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range all {
		names = append(names, k.Domain)
	}
	if !slices.Equal(names, []string{"example.com", "shared.example"}) {
		t.Errorf("All() = %q, want example.com and shared.example once each", names)
	}
	keys.mu.Lock()
	_, kept := keys.opened[shared.ID]
	keys.mu.Unlock()
	if kept {
		t.Error("All() kept the opened key of a domain that no longer signs")
	}
}

// TestOptionsSign signs with Options and checks the result with go-msgauth's own
// verifier against the record domaind generates. (The milter's and the export's
// end-to-end tests check signatures with dkimpy, which is not ours.)
func TestOptionsSign(t *testing.T) {
	f := newFixture(t)
	d, _ := f.add("acme", "example.com", domain.CheckVerified, time.Now())
	key, err := New(f.st, f.sealer).For(t.Context(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: A <a@example.com>\r\nTo: b@example.org\r\nSubject: hi\r\nReceived: from x\r\n\r\nHello  there\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(msg), Options(key, []string{"From", "To", "Subject", "Received"})); err != nil {
		t.Fatal(err)
	}
	sig := signed.String()[:strings.Index(signed.String(), "\r\nFrom: A")]
	for _, want := range []string{"a=rsa-sha256", "c=relaxed/relaxed", "d=example.com", "s=autosend", "h=From:From:Subject:To"} {
		if !strings.Contains(strings.Join(strings.Fields(sig), ""), strings.ReplaceAll(want, " ", "")) {
			t.Errorf("signature %q lacks %s", sig, want)
		}
	}
	txt := d.Record(domain.KeyDKIM).Value
	verifs, err := dkim.VerifyWithOptions(&signed, &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "autosend._domainkey.example.com" {
				return nil, errors.New("no such name: " + name)
			}
			return []string{txt}, nil
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Fatalf("verify: %v %+v", err, verifs)
	}
}

var _ Source = store.Store(nil)
