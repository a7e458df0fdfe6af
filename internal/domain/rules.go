package domain

import (
	"slices"
	"time"
)

// Observation is what one check saw of one record.
type Observation struct {
	Key      RecordKey
	Status   CheckStatus
	Found    []string
	Problems []Problem
	// Propagation is what each server asked said, authoritative servers first.
	Propagation []Sighting
}

// CheckView is an observation as clients read it: the v2 API in each record and
// `domaind check --json` show the same four fields. Found, problems, propagation and each
// server's values are [] rather than null when empty, so that a client need not tell
// null from none.
type CheckView struct {
	Status      string     `json:"status"`
	Found       []string   `json:"found"`
	Problems    []Problem  `json:"problems"`
	Propagation []Sighting `json:"propagation"`
}

// ViewCheck returns o's status, found values, problems and propagation as a
// CheckView; it copies them, so the view shares no slice with o.
func ViewCheck(o Observation) CheckView {
	v := CheckView{
		Status:      string(o.Status),
		Found:       append([]string{}, o.Found...),
		Problems:    append([]Problem{}, o.Problems...),
		Propagation: make([]Sighting, len(o.Propagation)),
	}
	for i, s := range o.Propagation {
		s.Values = append([]string{}, s.Values...)
		v.Propagation[i] = s
	}
	return v
}

// Rules tune how observations change a domain.
type Rules struct {
	// DegradeAfter is how many consecutive definite failures a verified record
	// needs before it is reported unverified. Values below 1 mean 1: at once.
	DegradeAfter int
}

// Change says what Apply changed, so callers can tell customers (events, webhooks)
// without comparing domains themselves.
type Change struct {
	From, To Status
	// Flipped lists the records whose Verified flag changed, in display order.
	Flipped []RecordKey
	// Degraded is set when a required record's flag turned off: the domain can
	// no longer send, whatever its status said just before.
	Degraded bool
}

// Changed reports whether the status or any record flag changed.
func (c Change) Changed() bool { return c.From != c.To || len(c.Flipped) > 0 }

// Apply records the observations of one check made at now and recomputes the
// domain's flags and status. Observations of keys the domain does not have are
// ignored. A temporary failure never changes what is known about a record: it is
// noted, but the record's flag and failure count stay as they were.
func (d *Domain) Apply(obs []Observation, now time.Time, rules Rules) Change {
	degradeAfter := max(rules.DegradeAfter, 1)
	change := Change{From: d.Status}
	for _, o := range obs {
		r := d.Record(o.Key)
		if r == nil {
			continue
		}
		before := r.Verified
		r.Status = o.Status
		r.Found = slices.Clone(o.Found)
		r.Problems = slices.Clone(o.Problems)
		r.Propagation = slices.Clone(o.Propagation)
		r.CheckedAt = now
		switch {
		case o.Status == CheckVerified:
			r.Verified = true
			r.Failures = 0
		case o.Status.Definite():
			r.Failures++
			if r.Failures >= degradeAfter {
				r.Verified = false
			}
		}
		if r.Verified != before {
			r.UpdatedAt = now
			change.Flipped = append(change.Flipped, r.Key)
			if before && r.Key.Required() {
				change.Degraded = true
			}
		}
	}
	d.LastCheckedAt = now
	d.recompute(now)
	change.To = d.Status
	// Report flips in display order whatever order the observations came in.
	slices.SortStableFunc(change.Flipped, func(a, b RecordKey) int {
		return d.recordIndex(a) - d.recordIndex(b)
	})
	return change
}

func (d *Domain) recordIndex(k RecordKey) int {
	for i := range d.Records {
		if d.Records[i].Key == k {
			return i
		}
	}
	return len(d.Records)
}

// recompute derives the four flags and the status from the records.
func (d *Domain) recompute(now time.Time) {
	verified := func(k RecordKey) bool {
		r := d.Record(k)
		return r != nil && r.Verified
	}
	d.OwnershipVerified = verified(KeyOwnership)
	d.DKIMEnabled = verified(KeyDKIM)
	d.MailFromEnabled = verified(KeyMailFromMX) && verified(KeyMailFromSPF)
	d.DMARCEnabled = verified(KeyDMARC)
	// Like the flags, inboundDomainVerifiedAt tells the truth about DNS today: it
	// goes when the inbound MX is lost (past the degrade threshold).
	switch in := d.Record(KeyInboundMX); {
	case in == nil || !in.Verified:
		d.InboundVerifiedAt = time.Time{}
	case in.Verified && d.InboundVerifiedAt.IsZero():
		// Inbound MX checks report competing hosts as a mismatch, so verified
		// means the platform's MX is there and alone.
		d.InboundVerifiedAt = now
	}

	allRequired := d.OwnershipVerified && d.DKIMEnabled
	anyFound, losing := false, false
	for _, r := range d.Records {
		if !r.Key.Required() {
			continue
		}
		if r.Verified || r.Status == CheckMismatch {
			anyFound = true
		}
		// A verified record with definite failures is being lost but has not
		// crossed the degrade threshold yet.
		if r.Verified && r.Failures > 0 {
			losing = true
		}
	}
	switch {
	case allRequired && !losing:
		d.Status = StatusVerified
		if d.VerifiedAt.IsZero() {
			d.VerifiedAt = now
		}
	case anyFound:
		d.Status = StatusPending
	default:
		d.Status = StatusPendingConfiguration
	}
}
