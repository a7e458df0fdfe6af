package domain

import (
	"hash/fnv"
	"slices"
	"time"
)

// Recheck is the policy for automatic re-checks: a backoff schedule while a domain
// is being set up, a give-up window, and a slow re-verification once verified.
type Recheck struct {
	// Steps are the waits between checks while unverified; the last repeats.
	Steps []time.Duration
	// GiveUpAfter ends automatic checks of an unverified domain this long after its
	// window started (the add or the last explicit verify).
	GiveUpAfter time.Duration
	// ReverifyEvery is the wait between checks of a verified domain.
	ReverifyEvery time.Duration
	// Jitter spreads re-verifications by up to this fraction of ReverifyEvery either
	// way, so that domains added together do not fall due together forever.
	Jitter float64
	// During the first NewFor after a domain was added, an unverified domain
	// waits at most NewEvery between checks, whatever Steps say, so that a
	// customer who publishes the records in that time is verified within about
	// NewEvery without calling verify. The back-off keeps its place meanwhile:
	// once NewFor is over, the wait is the step that the time since the window
	// began has reached, as if the extra checks had not been made. Zero turns
	// this off. (Verified domains that are losing a record wait the first step
	// anyway.)
	NewFor, NewEvery time.Duration
}

// DefaultRecheck returns the contract's defaults.
func DefaultRecheck() Recheck {
	return Recheck{
		Steps: []time.Duration{
			30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
			time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
		},
		GiveUpAfter:   72 * time.Hour,
		ReverifyEvery: 24 * time.Hour,
		Jitter:        0.1,
		NewFor:        time.Hour,
		NewEvery:      30 * time.Second,
	}
}

func (p Recheck) step(attempt int) time.Duration {
	if len(p.Steps) == 0 {
		return time.Minute
	}
	return p.Steps[min(max(attempt, 0), len(p.Steps)-1)]
}

// reached returns the attempt the back-off has reached elapsed after its window
// began: how many of its waits, one after another, fit in elapsed.
func (p Recheck) reached(elapsed time.Duration) int {
	n := 0
	for sum := p.step(0); sum <= elapsed && n < 1<<16; sum += p.step(n) {
		n++
	}
	return n
}

// isNew reports whether d is still in the first NewFor after it was added, when
// it is checked at least every NewEvery while unverified.
func (p Recheck) isNew(d *Domain, now time.Time) bool {
	return p.NewFor > 0 && p.NewEvery > 0 && now.Sub(d.CreatedAt) < p.NewFor
}

// jitter returns a stable offset for the domain within ±Jitter of d. It is derived
// from the id and the check time rather than drawn at random, so a schedule can be
// reproduced in a test, yet differs between domains and between checks.
func (p Recheck) jitter(id string, now time.Time, d time.Duration) time.Duration {
	if p.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	var b [8]byte
	ns := uint64(now.UnixNano())
	for i := range b {
		b[i] = byte(ns >> (8 * i))
	}
	h.Write(b[:])
	frac := float64(h.Sum64()%2001)/1000 - 1 // in [-1, 1]
	return time.Duration(frac * p.Jitter * float64(d))
}

// StartWindow begins a new verification window at now: after an add, an explicit
// verify, or a verified domain losing a required record. Automatic checks follow
// the backoff schedule from its first step.
func (d *Domain) StartWindow(p Recheck, now time.Time) {
	d.WindowStartedAt = now
	d.CheckAttempt = 0
	d.FailedAt = time.Time{}
	d.NextCheckAt = now.Add(p.step(0))
	if p.isNew(d, now) {
		d.NextCheckAt = now.Add(min(p.step(0), p.NewEvery))
	}
}

// ScheduleNext sets when the domain is next checked automatically, after a check
// at now that produced change. It reports whether the domain has just been given
// up on: unverified at the end of its window.
func (d *Domain) ScheduleNext(p Recheck, change Change, now time.Time) (gaveUp bool) {
	switch {
	case d.Status == StatusVerified && !d.losing() && d.inboundPending():
		// Sending works; receiving was switched on and its MX is not seen yet:
		// keep looking on the backoff schedule so the customer hears soon.
		d.CheckAttempt++
		d.NextCheckAt = now.Add(p.step(d.CheckAttempt))
		return false
	case d.Status == StatusVerified && !d.losing():
		d.CheckAttempt = 0
		d.NextCheckAt = now.Add(p.ReverifyEvery + p.jitter(d.ID, now, p.ReverifyEvery))
		return false
	case d.losing():
		// Verified but a required record failed: look again soon, so the
		// degrade threshold is crossed (or the scare ends) in minutes, not days.
		d.NextCheckAt = now.Add(p.step(0))
		return false
	case change.Degraded:
		// Just degraded: a new window, as if the domain were new.
		d.StartWindow(p, now)
		return false
	}
	if !d.FailedAt.IsZero() {
		d.NextCheckAt = time.Time{}
		return false
	}
	if p.GiveUpAfter > 0 && now.Sub(d.WindowStartedAt) >= p.GiveUpAfter {
		d.FailedAt = now
		d.NextCheckAt = time.Time{}
		return true
	}
	if p.isNew(d, now) {
		// A new domain: checked every NewEvery, while the back-off keeps the
		// place the time since the window began gives it. CheckAttempt counts
		// the back-off's checks, so it stays one behind: the first check after
		// NewFor counts as the step reached and waits as long as it.
		d.CheckAttempt = max(d.CheckAttempt, p.reached(now.Sub(d.WindowStartedAt))-1)
		d.NextCheckAt = now.Add(min(p.step(d.CheckAttempt), p.NewEvery))
		return false
	}
	d.CheckAttempt++
	d.NextCheckAt = now.Add(p.step(d.CheckAttempt))
	return false
}

// State is the domain's state in the v2 view, richer than the v1 status:
// pending_configuration, pending, verified, degrading (verified, but a required
// record is failing and has not crossed the degrade threshold) or failed
// (automatic checks gave up; a verify starts them again).
func (d *Domain) State() State {
	switch {
	case d.losing():
		return StateDegrading
	case d.Status == StatusVerified:
		return StateVerified
	case !d.FailedAt.IsZero():
		return StateFailed
	case d.Status == StatusPending:
		return StatePending
	}
	return StatePendingConfiguration
}

// inboundPending reports whether receiving is on but its MX is not verified.
func (d *Domain) inboundPending() bool {
	r := d.Record(KeyInboundMX)
	return r != nil && !r.Verified
}

// EnableInbound switches receiving on with the given inbound MX record: the next
// automatic check is due at the first step of the schedule.
func (d *Domain) EnableInbound(rec Record, p Recheck, now time.Time) {
	if d.Record(KeyInboundMX) != nil {
		return
	}
	d.Records = append(d.Records, rec)
	d.InboundEnabledAt = now
	d.InboundVerifiedAt = time.Time{}
	d.CheckAttempt = 0
	d.NextCheckAt = now.Add(p.step(0))
}

// DisableInbound switches receiving off: the inbound MX record and both inbound
// timestamps go.
func (d *Domain) DisableInbound() {
	d.Records = slices.DeleteFunc(d.Records, func(r Record) bool { return r.Key == KeyInboundMX })
	d.InboundEnabledAt = time.Time{}
	d.InboundVerifiedAt = time.Time{}
}

// losing reports whether a verified domain has a required record failing but not
// yet past the degrade threshold.
func (d *Domain) losing() bool {
	for _, r := range d.Records {
		if r.Key.Required() && r.Verified && r.Failures > 0 {
			return true
		}
	}
	return false
}
