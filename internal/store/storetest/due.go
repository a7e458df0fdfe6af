package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// testClaimChecks checks that only due domains are claimed, at most limit of them,
// earliest first, that a claim hides a domain for its lease, and that a claim
// whose worker died comes due again when the lease ends.
func testClaimChecks(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	now := at(time.Hour)
	var ids []string
	for i, due := range []time.Duration{-3 * time.Minute, -2 * time.Minute, -time.Minute, time.Minute, 0} {
		d := sampleDomain(p.ID, newID(t), "d"+string(rune('a'+i))+".example.com", at(0))
		d.NextCheckAt = now.Add(due)
		if i == 4 {
			d.NextCheckAt = time.Time{} // not scheduled at all
		}
		createDomain(t, s, d)
		ids = append(ids, d.ID)
	}
	if oldest, err := s.OldestDue(ctx); err != nil || !oldest.Equal(msUTC(now.Add(-3*time.Minute))) {
		t.Fatalf("OldestDue = %v, %v; want %v", oldest, err, msUTC(now.Add(-3*time.Minute)))
	}
	got, err := s.ClaimChecks(ctx, now, time.Minute, 2, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Which domains are claimed matters (the most overdue); the order they are
	// returned in does not, and PostgreSQL's UPDATE ... RETURNING keeps none.
	if g := dueIDs(got); !slices.Equal(g, sortedIDs(ids[:2])) || got[0].ProjectID != p.ID {
		t.Fatalf("first claim %+v, want the two most overdue %v", got, ids[:2])
	}
	got, err = s.ClaimChecks(ctx, now, time.Minute, 10, 0, nil)
	if err != nil || len(got) != 1 || got[0].ID != ids[2] {
		t.Fatalf("second claim %+v, %v; want only %s (claimed ones hidden, future and unscheduled ones not due)", got, err, ids[2])
	}
	// The workers that claimed them died: the claims come due when the lease ends.
	got, err = s.ClaimChecks(ctx, now.Add(time.Minute+time.Second), time.Minute, -1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := dueIDs(got); !slices.Equal(g, sortedIDs(ids[:4])) {
		t.Fatalf("claim after the lease: %v, want %v", g, sortedIDs(ids[:4]))
	}
	if d := getDomain(t, s, p.ID, ids[4]); !d.NextCheckAt.IsZero() {
		t.Errorf("an unscheduled domain got a due time: %v", d.NextCheckAt)
	}
}

// testClaimChecksShare checks the per-project bound: a project with a backlog of
// overdue domains gets only its share left, its most overdue, and the other
// projects' due domains are claimed beside them however overdue the backlog is.
func testClaimChecksShare(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := at(time.Hour)
	add := func(p store.Project, name string, due time.Duration) string {
		d := sampleDomain(p.ID, newID(t), name, at(0))
		d.NextCheckAt = now.Add(due)
		createDomain(t, s, d)
		return d.ID
	}
	hostile, b, c := project(t, s, "hostile"), project(t, s, "beta"), project(t, s, "gamma")
	var backlog []string // most overdue first
	for i := range 10 {
		backlog = append(backlog, add(hostile, fmt.Sprintf("h%d.example", i), time.Duration(i-20)*time.Minute))
	}
	b1, b2 := add(b, "b1.example", -30*time.Second), add(b, "b2.example", -20*time.Second)
	c1 := add(c, "c1.example", -5*time.Minute)
	add(c, "c2.example", time.Minute) // not due

	// The limit takes the most overdue of what the shares allow: two of the
	// backlog, then gamma's, ahead of beta's.
	got, err := s.ClaimChecks(ctx, now, time.Minute, 3, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g, want := dueIDs(got), sortedIDs([]string{backlog[0], backlog[1], c1}); !slices.Equal(g, want) {
		t.Fatalf("claim of 3 with a share of 2 = %v, want %v", g, want)
	}
	for _, d := range got {
		if want := map[string]int64{backlog[0]: hostile.ID, backlog[1]: hostile.ID, c1: c.ID}[d.ID]; d.ProjectID != want {
			t.Errorf("claimed %s of project %d, want %d", d.ID, d.ProjectID, want)
		}
	}

	// The worker runs those three: the backlog's project has no share left, so
	// only beta's two are claimed, however overdue the backlog.
	running := map[int64]int{hostile.ID: 2, c.ID: 1}
	got, err = s.ClaimChecks(ctx, now, time.Minute, 100, 2, running)
	if err != nil {
		t.Fatal(err)
	}
	if g, want := dueIDs(got), sortedIDs([]string{b1, b2}); !slices.Equal(g, want) {
		t.Fatalf("claim with the backlog's share used up = %v, want beta's %v", g, want)
	}
	if running[hostile.ID] != 2 || len(running) != 2 {
		t.Errorf("ClaimChecks changed the running counts it was given: %v", running)
	}

	// One of the backlog's checks ends: one more of it, the next most overdue.
	got, err = s.ClaimChecks(ctx, now, time.Minute, 100, 2, map[int64]int{hostile.ID: 1, b.ID: 2, c.ID: 1})
	if err != nil || len(got) != 1 || got[0].ID != backlog[2] {
		t.Fatalf("claim with one slot of the backlog's project free = %+v, %v; want %s", got, err, backlog[2])
	}
	// Counts beyond the share, of projects with nothing due, or negative, are
	// what a caller may hand over; none lets a project past its share.
	got, err = s.ClaimChecks(ctx, now, time.Minute, 100, 2, map[int64]int{hostile.ID: 5, 999: 3, b.ID: -7})
	if err != nil || len(got) != 0 {
		t.Fatalf("claim with the backlog's project over its share = %+v, %v; want none (beta's are claimed)", got, err)
	}
	got, err = s.ClaimChecks(ctx, now, time.Minute, 100, 3, map[int64]int{hostile.ID: -5})
	if err != nil || len(got) != 3 {
		t.Fatalf("claim with a negative running count = %+v, %v; want three, the share", got, err)
	}
}

func dueIDs(ds []store.Due) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
