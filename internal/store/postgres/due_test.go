package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestClaimChecksPlan checks that the claim probes each project through the
// partial index domains_project_due, whose predicate must match the query's for
// PostgreSQL to consider it.
func TestClaimChecksPlan(t *testing.T) {
	s := openStore(t, freshDatabase(t))
	checkPlanUses(t, s, "domains_project_due", claimChecksSQL, int64(1_750_000_060_000), int64(1_750_000_000_000), 16,
		[]int64{1}, []int32{2}, 100)
}

// TestClaimChecksReplicas claims through two stores (two pools, as two replicas
// have), four claimers each, while one project has a backlog far larger than the
// others: every due domain is claimed exactly once, and no single claim takes more
// of one project than the share.
func TestClaimChecksReplicas(t *testing.T) {
	dsn := freshDatabase(t)
	a, b := openStore(t, dsn), openStore(t, dsn)
	ctx := t.Context()
	now := t0.Add(24 * time.Hour)
	const share, lease = 3, time.Hour
	var want []string
	for pi, due := range []int{300, 20, 20} {
		p, err := a.EnsureProject(ctx, fmt.Sprintf("p%d", pi), t0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range due + 10 {
			next := now.Add(-time.Duration(i) * time.Second) // due, some long overdue
			if i >= due {
				next = now.Add(2 * lease) // scheduled, not due
			}
			d := newDomain(t, p.ID, fmt.Sprintf("d%d.p%d.example", i, pi), next)
			if err := a.CreateDomain(ctx, d, []byte("k")); err != nil {
				t.Fatal(err)
			}
			if i < due {
				want = append(want, d.ID)
			}
		}
	}
	var mu sync.Mutex
	claimed := claimAll(t, []*Store{a, b}, 4, func(s *Store) ([]string, error) {
		ds, err := s.ClaimChecks(ctx, now, lease, 7, share, nil)
		perProject := map[int64]int{}
		var ids []string
		for _, d := range ds {
			perProject[d.ProjectID]++
			ids = append(ids, d.ID)
		}
		mu.Lock()
		defer mu.Unlock()
		for p, n := range perProject {
			if n > share {
				t.Errorf("one claim took %d domains of project %d, more than the share %d", n, p, share)
			}
		}
		return ids, err
	})
	checkOnce(t, claimed, want)
}
