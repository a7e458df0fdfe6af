package domain

import "time"

// State is a domain's state as the v2 view and the dashboard show it: richer than
// the v1 Status, which AutoSend clients match on and so keeps its three values.
type State string

// The states, in the order a domain usually passes through them.
const (
	// StatePendingConfiguration: no required record has been found yet.
	StatePendingConfiguration State = "pending_configuration"
	// StatePending: some required records are found, not all.
	StatePending State = "pending"
	// StateVerified: every required record is found.
	StateVerified State = "verified"
	// StateDegrading: verified, but a required record is failing and has not
	// crossed the degrade threshold.
	StateDegrading State = "degrading"
	// StateFailed: automatic checks gave up on an unverified domain.
	StateFailed State = "failed"
)

// EverChecked reports whether the domain has been checked at least once. Its
// LastCheckedAt cannot tell: it equals CreatedAt until the first check.
func (d *Domain) EverChecked() bool {
	for _, r := range d.Records {
		if !r.CheckedAt.IsZero() {
			return true
		}
	}
	return false
}

// CanSend reports whether mail from the domain passes: ownership and DKIM are
// verified. Flags follow DNS with hysteresis, so a domain degrading but not yet
// past the threshold still sends.
func (d *Domain) CanSend() bool { return d.OwnershipVerified && d.DKIMEnabled }

// CanReceive reports whether the domain receives mail: its inbound MX is seen,
// alone (the check reports competing hosts and a null MX as mismatches).
func (d *Domain) CanReceive() bool {
	r := d.Record(KeyInboundMX)
	return r != nil && r.Verified
}

// MayEnableInbound reports whether receiving may be switched on: only a verified
// domain's ownership is proven.
func (d *Domain) MayEnableInbound() bool { return d.Status == StatusVerified }

// Receiving reports whether receiving is on: the domain has an inbound MX to
// publish.
func (d *Domain) Receiving() bool { return d.Record(KeyInboundMX) != nil }

// GaveUp is why automatic checks stopped for a domain whose FailedAt is set, in
// the words every front end and the domain.failed event build on.
const GaveUp = "the required records (ownership and DKIM) were not found before automatic checks gave up"

// FailureReason says why automatic checks gave up on the domain and what to do,
// or "" while they have not. call names how the customer starts a new window of
// checks, such as "call verify".
func (d *Domain) FailureReason(call string) string {
	if d.FailedAt.IsZero() {
		return ""
	}
	return "FAILED: " + GaveUp + "; publish them and " + call + " to start checking again."
}

// NowMillis is now as domains store times: UTC, to the millisecond.
func NowMillis(now time.Time) time.Time { return now.UTC().Truncate(time.Millisecond) }

// TimeLayout is how the API, the events and their webhooks write a time: in
// UTC, to the millisecond, as AutoSend's API does. The store relies on it too:
// an event's stored payload leaves out the start its row gives, timestamp
// included (package sqlstore).
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Timestamp is t written in TimeLayout.
func Timestamp(t time.Time) string { return t.UTC().Format(TimeLayout) }
