package domain

import (
	"testing"
	"time"
)

func TestScheduleBackoffAndGiveUp(t *testing.T) {
	p := Recheck{Steps: []time.Duration{time.Second, 2 * time.Second, 5 * time.Second}, GiveUpAfter: 20 * time.Second, ReverifyEvery: time.Hour}
	d := newTestDomain()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	d.StartWindow(p, t0)
	if !d.NextCheckAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("first check at %v", d.NextCheckAt)
	}
	now := t0
	var waits []time.Duration
	for range 8 {
		now = d.NextCheckAt
		change := d.Apply(obs(KeyOwnership, CheckMissing, KeyDKIM, CheckMissing), now, Rules{})
		if gaveUp := d.ScheduleNext(p, change, now); gaveUp {
			if now.Sub(t0) < p.GiveUpAfter || d.FailedAt != now || !d.NextCheckAt.IsZero() {
				t.Fatalf("gave up at %v (window %v): failed %v next %v", now.Sub(t0), p.GiveUpAfter, d.FailedAt, d.NextCheckAt)
			}
			break
		}
		waits = append(waits, d.NextCheckAt.Sub(now))
	}
	want := []time.Duration{2 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v then give up", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	// A given-up domain is not scheduled again until a new window starts.
	change := d.Apply(obs(KeyOwnership, CheckMissing), now.Add(time.Hour), Rules{})
	if d.ScheduleNext(p, change, now.Add(time.Hour)) || !d.NextCheckAt.IsZero() {
		t.Fatal("a failed domain was scheduled again")
	}
	d.StartWindow(p, now.Add(2*time.Hour))
	if d.NextCheckAt.IsZero() || !d.FailedAt.IsZero() {
		t.Fatal("a new window did not restart the schedule")
	}
}

func TestScheduleVerifiedAndDegrading(t *testing.T) {
	p := Recheck{Steps: []time.Duration{time.Second}, GiveUpAfter: time.Hour, ReverifyEvery: 24 * time.Hour, Jitter: 0.1}
	d := newTestDomain()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	d.StartWindow(p, t0)
	rules := Rules{DegradeAfter: 2}
	c := d.Apply(obs(KeyOwnership, CheckVerified, KeyDKIM, CheckVerified), t0, rules)
	d.ScheduleNext(p, c, t0)
	wait := d.NextCheckAt.Sub(t0)
	if wait < 21*time.Hour+36*time.Minute || wait > 26*time.Hour+24*time.Minute {
		t.Fatalf("re-verification in %v, want 24h ± 10%%", wait)
	}
	// One failure: losing, checked again at the first step.
	t1 := t0.Add(wait)
	c = d.Apply(obs(KeyOwnership, CheckVerified, KeyDKIM, CheckMissing), t1, rules)
	d.ScheduleNext(p, c, t1)
	if d.NextCheckAt.Sub(t1) != time.Second || d.Status != StatusPending || !d.DKIMEnabled {
		t.Fatalf("losing: next in %v, status %s dkim %v", d.NextCheckAt.Sub(t1), d.Status, d.DKIMEnabled)
	}
	// Second failure crosses the threshold: degraded, a new window.
	t2 := t1.Add(time.Second)
	c = d.Apply(obs(KeyOwnership, CheckVerified, KeyDKIM, CheckMissing), t2, rules)
	d.ScheduleNext(p, c, t2)
	if d.DKIMEnabled || !d.WindowStartedAt.Equal(t2) || d.NextCheckAt.Sub(t2) != time.Second {
		t.Fatalf("degraded: dkim %v window %v next %v", d.DKIMEnabled, d.WindowStartedAt, d.NextCheckAt)
	}
}

func TestJitterSpreads(t *testing.T) {
	p := DefaultRecheck()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for i := range 100 {
		id, _ := NewID(now)
		j := p.jitter(id+string(rune(i)), now, p.ReverifyEvery)
		if j < -p.ReverifyEvery/10 || j > p.ReverifyEvery/10 {
			t.Fatalf("jitter %v outside ±10%%", j)
		}
		seen[j] = true
	}
	if len(seen) < 90 {
		t.Errorf("only %d distinct offsets for 100 domains", len(seen))
	}
}

// TestScheduleNewDomainsChecksOften runs the default schedule under a simulated
// clock: in its first hour an unverified domain is checked at least every 30s, so
// records published 20 minutes after the add are seen within 30s; after the hour
// the back-off is where the time since the add puts it, not back at its start nor
// pushed further out by the extra checks.
func TestScheduleNewDomainsChecksOften(t *testing.T) {
	p := DefaultRecheck()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

	// Published 20 minutes after the add: verified within one NewEvery.
	d := newTestDomain()
	d.CreatedAt = t0
	d.StartWindow(p, t0)
	published := t0.Add(20 * time.Minute)
	for now := t0; ; {
		if wait := d.NextCheckAt.Sub(now); wait <= 0 || wait > 30*time.Second {
			t.Fatalf("at %v after the add: next check in %v, want within (0, 30s]", now.Sub(t0), wait)
		}
		now = d.NextCheckAt
		st := CheckMissing
		if !now.Before(published) {
			st = CheckVerified
		}
		d.ScheduleNext(p, d.Apply(obs(KeyOwnership, st, KeyDKIM, st), now, Rules{}), now)
		if d.Status == StatusVerified {
			if late := now.Sub(published); late > 30*time.Second {
				t.Fatalf("verified %v after publishing, want within 30s", late)
			}
			break
		}
	}

	// Never published: every wait within the first hour is at most 30s; after
	// it, the waits are the steps today's schedule reaches (1h, then 2h, …).
	d = newTestDomain()
	d.CreatedAt = t0
	d.StartWindow(p, t0)
	var after []time.Duration
	for now := t0; len(after) < 3; {
		now = d.NextCheckAt
		d.ScheduleNext(p, d.Apply(obs(KeyOwnership, CheckMissing, KeyDKIM, CheckMissing), now, Rules{}), now)
		wait := d.NextCheckAt.Sub(now)
		if now.Sub(t0) < time.Hour {
			if wait > 30*time.Second {
				t.Fatalf("at %v after the add: next check in %v, want at most 30s", now.Sub(t0), wait)
			}
			continue
		}
		after = append(after, wait)
	}
	want := []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour}
	for i := range want {
		if after[i] != want[i] {
			t.Fatalf("waits after the first hour %v, want %v", after, want)
		}
	}

	// A domain added long ago whose window a verify restarted backs off as
	// before: 30s, 1m, 2m.
	d = newTestDomain()
	d.CreatedAt = t0.Add(-48 * time.Hour)
	d.StartWindow(p, t0)
	now := t0
	for _, w := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		if got := d.NextCheckAt.Sub(now); got != w {
			t.Fatalf("old domain: next check in %v, want %v", got, w)
		}
		now = d.NextCheckAt
		d.ScheduleNext(p, d.Apply(obs(KeyOwnership, CheckMissing, KeyDKIM, CheckMissing), now, Rules{}), now)
	}
}
