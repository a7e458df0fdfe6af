package api_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/schedule"
	"github.com/domaind/domaind/internal/store"
)

// replicas starts two domaind API servers, each with its own connection pool,
// verifier and (when asked) scheduler, on one fresh PostgreSQL database, sharing a
// loopback DNS server. It needs DOMAIND_TEST_POSTGRES, as scripts/test.sh sets.
func replicas(t *testing.T, o envOptions) (*env, *env) {
	t.Helper()
	base := os.Getenv("DOMAIND_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("DOMAIND_REQUIRE_POSTGRES") == "1" {
			t.Fatal("DOMAIND_TEST_POSTGRES is not set but DOMAIND_REQUIRE_POSTGRES=1: run the tests through scripts/test.sh")
		}
		t.Skip("SKIPPED: replica tests need PostgreSQL; run `make test` with postgresql installed")
	}
	o.postgres = freshPostgres(t, "domaind_replicas_")
	a := newEnv(t, o)
	o.dnsServer = a.dns
	b2 := newEnv(t, o)
	b2.key = a.key
	return a, b2
}

// TestReplicasAddConcurrently adds one name through both replicas at once, ten
// times: the database lets exactly one add through each time.
func TestReplicasAddConcurrently(t *testing.T) {
	a, b := replicas(t, envOptions{})
	for i := range 10 {
		name := "race" + strconv.Itoa(i) + ".example.com"
		var wg sync.WaitGroup
		status := make([]int, 2)
		for j, e := range []*env{a, b} {
			wg.Go(func() { status[j] = e.do("POST", "/v1/domains", `{"domain":"`+name+`"}`, a.key).status })
		}
		wg.Wait()
		if !(status[0] == http.StatusCreated && status[1] == http.StatusConflict || status[0] == http.StatusConflict && status[1] == http.StatusCreated) {
			t.Fatalf("%s: statuses %v, want one 201 and one 409", name, status)
		}
	}
}

// TestReplicasVerifyConcurrently verifies one domain through both replicas at once,
// while DNS is slow: DNS is asked once, and both answer the result.
func TestReplicasVerifyConcurrently(t *testing.T) {
	a, b := replicas(t, envOptions{dnsTimeout: 300 * time.Millisecond})
	_, results := verifyTwiceAtOnce(t, a, b)
	for i, r := range results {
		if !r.Data.DMARCEnabled || r.Data.VerificationInProgress {
			t.Errorf("replica %d answered %+v, want the finished check", i, r.Data)
		}
	}
}

// hang is a replica's checker that never finishes: it stands for a replica killed
// mid-batch, holding claims it will never complete.
type hang struct {
	mu      sync.Mutex
	claimed map[string]bool
}

func (h *hang) CheckDue(ctx context.Context, _ int64, id string) error {
	h.mu.Lock()
	h.claimed[id] = true
	h.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (h *hang) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.claimed)
}

// claims is a replica's store that counts the domains its worker claimed.
type claims struct {
	store.Store
	mu sync.Mutex
	n  int
}

func (c *claims) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	due, err := c.Store.ClaimChecks(ctx, now, lease, limit, perProject, running)
	c.mu.Lock()
	c.n += len(due)
	c.mu.Unlock()
	return due, err
}

func (c *claims) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestReplicasQueueSurvivesAKilledReplica lets replica a claim a batch and die
// with it (the checks it started and those it claimed ahead of its slots);
// replica b checks everything else, then a's batch once its lease ends: every
// due domain is checked, each once, none lost.
func TestReplicasQueueSurvivesAKilledReplica(t *testing.T) {
	recheck := &domain.Recheck{Steps: []time.Duration{time.Millisecond, time.Hour}, GiveUpAfter: 24 * time.Hour, ReverifyEvery: 24 * time.Hour}
	a, b := replicas(t, envOptions{recheck: recheck, manualWorker: true})
	var ds []domainJSON
	for i := range 30 {
		d := a.addDomain("q" + strconv.Itoa(i) + ".example.com")
		ds = append(ds, d)
	}

	h := &hang{claimed: map[string]bool{}}
	ctxA, killA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	// One project owns every domain: it may take all of a worker's slots.
	claimedA := &claims{Store: a.store}
	workerA := &schedule.Worker{Store: claimedA, Checker: h, Concurrency: 8, ProjectShare: 8, Lease: 2 * time.Second, Interval: 10 * time.Millisecond}
	go func() { defer close(doneA); workerA.Run(ctxA) }()
	waitFor(t, 10*time.Second, "replica a to claim a batch", func() bool { return h.count() == 8 })
	// Its checks hang, so it claims nothing more than its first batch.
	held := claimedA.count()
	if held < 8 || held >= len(ds) {
		t.Fatalf("replica a claimed %d domains", held)
	}

	ctxB, stopB := context.WithCancel(context.Background())
	doneB := make(chan struct{})
	workerB := &schedule.Worker{Store: b.store, Checker: b.verifier, Concurrency: 4, ProjectShare: 4, Lease: 2 * time.Second, Interval: 10 * time.Millisecond}
	go func() { defer close(doneB); workerB.Run(ctxB) }()
	t.Cleanup(func() { stopB(); <-doneB })

	// A domain counts as checked once its check is saved, not when DNS is asked.
	checked := func() int {
		n := 0
		for _, d := range ds {
			got, err := b.store.Domain(context.Background(), 1, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastCheckedAt.Equal(got.CreatedAt) {
				n++
			}
		}
		return n
	}
	waitFor(t, 20*time.Second, "replica b to check the unclaimed domains", func() bool { return checked() == len(ds)-held })
	killA()
	<-doneA
	waitFor(t, 20*time.Second, "replica b to check the dead replica's batch after its lease", func() bool { return checked() == len(ds) })

	for _, d := range ds {
		if n := a.dns.Count(d.DNSRecords.Ownership.Name+".", dns.TypeTXT, ""); n != 1 {
			t.Errorf("%s checked %d times, want once", d.DomainName, n)
		}
	}
}
