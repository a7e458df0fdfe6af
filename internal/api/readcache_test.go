package api_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/apikey"
	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/readcache"
	"github.com/domaind/domaind/internal/testenv"
)

// uncached returns a variant of e that serves e's store without a read cache:
// what a GET answers when nothing is remembered.
func (e *env) uncached() *env {
	return e.variant(func(c *app.Config) { c.ReadCache = readcache.Config{} })
}

// sameGet asks e (cached) and u (uncached) for the domain and fails unless
// they answer alike; it returns e's answer.
func sameGet(t *testing.T, e, u *env, id string) response {
	t.Helper()
	c := e.do("GET", "/v1/domains/"+id, "", e.key)
	f := u.do("GET", "/v1/domains/"+id, "", e.key)
	if c.status != f.status || !bytes.Equal(c.body, f.body) {
		t.Fatalf("cached GET answered %d\n%s\nuncached GET answered %d\n%s", c.status, c.body, f.status, f.body)
	}
	return c
}

// TestGetCacheAfterEveryWrite: after each kind of write made through the
// replica, the next GET, served from the cache, equals a GET that reads the
// database, and shows the write.
func TestGetCacheAfterEveryWrite(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testGetCacheAfterEveryWrite(t, envOptions{}) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("DOMAIND_TEST_POSTGRES") == "" {
			t.Skip("DOMAIND_TEST_POSTGRES is not set")
		}
		testGetCacheAfterEveryWrite(t, envOptions{postgres: freshPostgres(t, "domaind_readcache_")})
	})
}

func testGetCacheAfterEveryWrite(t *testing.T, o envOptions) {
	e := newEnv(t, o)
	u := e.uncached()
	ctx := context.Background()
	k, err := e.app.Auth().Authenticate(ctx, e.key)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(d domainJSON) {
		e.publish(d.DNSRecords.Ownership)
		e.publish(d.DNSRecords.DKIM)
	}
	verified := func(t *testing.T, d domainJSON) {
		publish(d)
		if v := e.verify(d.ID); v.Data.VerificationStatus != "VERIFIED" {
			t.Fatalf("verify: %+v", v.Data)
		}
	}
	post := func(path string, want int) func(t *testing.T, d domainJSON) {
		return func(t *testing.T, d domainJSON) {
			if r := e.do("POST", "/v1/domains/"+d.ID+path, "", e.key); r.status != want {
				t.Fatalf("POST %s: %d %s", path, r.status, r.body)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, d domainJSON) // before the cached read
		write func(t *testing.T, d domainJSON)
		gone  bool // the write deletes the domain
	}{
		{name: "verify", setup: func(t *testing.T, d domainJSON) { publish(d) }, write: post("/verify", http.StatusOK)},
		{name: "background check", setup: func(t *testing.T, d domainJSON) { publish(d) }, write: func(t *testing.T, d domainJSON) {
			if err := e.app.Verifier().CheckDue(ctx, k.ProjectID, d.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "inbound enable", setup: verified, write: post("/inbound/enable", http.StatusOK)},
		{name: "inbound disable", setup: func(t *testing.T, d domainJSON) {
			verified(t, d)
			post("/inbound/enable", http.StatusOK)(t, d)
		}, write: post("/inbound/disable", http.StatusOK)},
		{name: "rotation step", setup: verified, write: func(t *testing.T, d domainJSON) {
			if r := e.do("POST", "/api/v2/domains/"+d.ID+"/dkim/rotate", "", e.key); r.status != http.StatusAccepted {
				t.Fatalf("rotate: %d %s", r.status, r.body)
			}
		}},
		{name: "check lease taken through this replica's store", write: func(t *testing.T, d domainJSON) {
			if ok, err := e.store.AcquireCheck(ctx, d.ID, "another-replica", time.Now(), time.Minute); err != nil || !ok {
				t.Fatalf("AcquireCheck: %v %v", ok, err)
			}
		}},
		{name: "check lease ended through this replica's store", setup: func(t *testing.T, d domainJSON) {
			if ok, err := e.store.AcquireCheck(ctx, d.ID, "another-replica", time.Now(), time.Minute); err != nil || !ok {
				t.Fatalf("AcquireCheck: %v %v", ok, err)
			}
		}, write: func(t *testing.T, d domainJSON) {
			if err := e.store.ReleaseCheck(ctx, d.ID, "another-replica"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "delete", gone: true, write: func(t *testing.T, d domainJSON) {
			if r := e.do("DELETE", "/v1/domains/"+d.ID, "", e.key); r.status != http.StatusOK {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t, u.t = t, t
			// Each case has a domain of its own, so that one's records do not
			// verify another's.
			d := e.addDomain(tc.name[:1] + time.Now().Format("150405.000000000")[7:] + ".example.com")
			if tc.setup != nil {
				tc.setup(t, d)
			}
			before := sameGet(t, e, u, d.ID)
			if again := sameGet(t, e, u, d.ID); !bytes.Equal(again.body, before.body) {
				t.Fatalf("two reads without a write differ:\n%s\n%s", before.body, again.body)
			}
			tc.write(t, d)
			after := sameGet(t, e, u, d.ID)
			switch {
			case tc.gone && after.status != http.StatusNotFound:
				t.Fatalf("after the write: status %d, want 404", after.status)
			case !tc.gone && (after.status != http.StatusOK || bytes.Equal(after.body, before.body)):
				t.Fatalf("the write changed nothing a GET shows (%d):\n%s", after.status, after.body)
			}
			sameGet(t, e, u, d.ID)
		})
	}
	if st := e.app.GetCache().Stats(); st.Hits == 0 {
		t.Errorf("the cache served no read: %+v", st)
	}
}

// TestGetCacheAccess: a cached domain is served to its own project only, and
// a key revoked on this replica is refused at once, cache or not.
func TestGetCacheAccess(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.addDomain("example.com")
	for range 2 {
		if r := e.do("GET", "/v1/domains/"+d.ID, "", e.key); r.status != http.StatusOK {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/domains/"+d.ID, "", e.newKey("globex")); r.status != http.StatusNotFound {
		t.Fatalf("another project's GET of a cached domain: %d %s", r.status, r.body)
	}
	if _, err := e.app.Auth().Revoke(context.Background(), apikey.Prefix(e.key), time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/v1/domains/"+d.ID, "", e.key); r.status != http.StatusUnauthorized {
		t.Fatalf("GET with the key just revoked: %d %s", r.status, r.body)
	}
}

// TestGetCacheAnotherProcess: a write by another process on the same SQLite
// file (a `domaind` command, another serve) is seen by the first poll of
// SQLite's data_version after it, while the clock stands still, so that no
// time-to-live can be what notices it.
func TestGetCacheAnotherProcess(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	a := newEnv(t, envOptions{now: clock.Now})
	b := newEnv(t, envOptions{now: clock.Now, dbPath: a.dbPath, dnsServer: a.dns})
	b.key = a.key
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if err := a.app.GetCache().Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll()
	d := a.addDomain("example.com")
	for range 2 {
		if r := a.do("GET", "/v1/domains/"+d.ID, "", a.key); r.status != http.StatusOK {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
	}
	hits := a.app.GetCache().Stats().Hits
	poll()
	if r := a.do("GET", "/v1/domains/"+d.ID, "", a.key); r.status != http.StatusOK || a.app.GetCache().Stats().Hits != hits+1 {
		t.Fatalf("GET after a poll with no other writer: %d, %d hits, want a hit", r.status, a.app.GetCache().Stats().Hits-hits)
	}
	if r := b.do("DELETE", "/v1/domains/"+d.ID, "", b.key); r.status != http.StatusOK {
		t.Fatalf("delete by the other process: %d %s", r.status, r.body)
	}
	poll()
	if r := a.do("GET", "/v1/domains/"+d.ID, "", a.key); r.status != http.StatusNotFound {
		t.Fatalf("GET after the other process deleted the domain and a poll: %d %s", r.status, r.body)
	}
}

// TestGetCacheAcrossReplicas: a write on one PostgreSQL replica is seen by the
// other's GET once readcache.DefaultMaxStale has passed on its clock.
func TestGetCacheAcrossReplicas(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	a, b := replicas(t, envOptions{now: clock.Now})
	d := a.addDomain("example.com")
	get := func(e *env) response { return e.do("GET", "/v1/domains/"+d.ID, "", a.key) }
	before := get(a)
	if before.status != http.StatusOK || get(b).status != http.StatusOK {
		t.Fatalf("GET: %d %s", before.status, before.body)
	}
	a.publish(d.DNSRecords.Ownership)
	if v := b.verify(d.ID); !v.Data.OwnershipVerified {
		t.Fatalf("verify on the other replica: %+v", v.Data)
	}
	if r := get(b); bytes.Equal(r.body, before.body) {
		t.Fatalf("the verifying replica's GET does not show its verify: %s", r.body)
	}
	// Apart from the write, the clock is what tells a of it, and it does
	// within MaxStale.
	clock.Advance(readcache.DefaultMaxStale)
	if r := get(a); r.status != http.StatusOK || bytes.Equal(r.body, before.body) || !bytes.Equal(r.body, get(b).body) {
		t.Fatalf("the other replica's GET %v after the write: %d\n%s\nwant\n%s", readcache.DefaultMaxStale, r.status, r.body, get(b).body)
	}
}

// TestGetCacheLeaseEnds: whether a check is in progress is decided at each
// request: a lease another replica took and never released (it died) stops
// showing once it ends on the clock, with no write to tell the cache.
func TestGetCacheLeaseEnds(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, envOptions{now: clock.Now})
	u := e.uncached()
	d := e.addDomain("example.com")
	if ok, err := e.store.AcquireCheck(context.Background(), d.ID, "dead-replica", clock.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("AcquireCheck: %v %v", ok, err)
	}
	// The epoch is known before the first read, so that its entry is
	// believed as long as polls confirm it, whatever the clock says.
	if err := e.app.GetCache().Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	inProgress := func() bool {
		var v v1Domain
		decodeStrict(t, sameGet(t, e, u, d.ID).body, &v)
		return v.Data.VerificationInProgress
	}
	if !inProgress() || !inProgress() {
		t.Fatal("not in progress under another replica's lease")
	}
	clock.Advance(time.Minute)
	// A poll at the new time confirms that nothing else wrote the file, so
	// that the next read is served from the cache.
	if err := e.app.GetCache().Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if inProgress() {
		t.Fatal("still in progress once the lease ended")
	}
	if st := e.app.GetCache().Stats(); st.Hits < 2 {
		t.Fatalf("the cache served %d of the reads, want the two after the first", st.Hits)
	}
}
