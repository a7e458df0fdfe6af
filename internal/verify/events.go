package verify

import (
	"fmt"
	"time"

	// The events of every check are encoded here, and segmentio's encoder
	// writes the same bytes as encoding/json's in about half the time (see
	// FuzzPayloadJSON).
	"github.com/segmentio/encoding/json"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

func toEventRecord(r *domain.Record) domain.EventRecord {
	return domain.EventRecord{
		Type: r.Key.Role(), Name: r.Name, RecordType: r.Type, IsVerified: r.Verified,
		Status: r.Status, Problems: append([]domain.Problem{}, r.Problems...),
	}
}

// buildEvents turns what a check changed into events. A check that changed
// nothing makes none.
func buildEvents(d *domain.Domain, c domain.Change, gaveUp bool, now time.Time) ([]store.Event, error) {
	type ev struct {
		typ     domain.EventType
		records []domain.EventRecord
		reason  string
	}
	var evs []ev
	flipped := func(onlyLost bool) []domain.EventRecord {
		var out []domain.EventRecord
		for _, k := range c.Flipped {
			r := d.Record(k)
			if onlyLost && (r.Verified || !k.Required()) {
				continue
			}
			out = append(out, toEventRecord(r))
		}
		return out
	}
	switch {
	case c.To == domain.StatusVerified && c.From != domain.StatusVerified:
		evs = append(evs, ev{typ: domain.EventVerified, records: flipped(false)})
	case c.Degraded:
		lost := flipped(true)
		reason := "A required record is no longer published."
		if len(lost) > 0 && len(lost[0].Problems) > 0 {
			reason = lost[0].Problems[0].Message
		}
		evs = append(evs, ev{typ: domain.EventDegraded, records: lost, reason: reason})
	case c.From != c.To:
		evs = append(evs, ev{typ: domain.EventStatusChanged})
	}
	if gaveUp {
		evs = append(evs, ev{typ: domain.EventFailed, reason: d.FailureReason("call verify")})
	}
	for _, k := range c.Flipped {
		evs = append(evs, ev{typ: domain.EventRecordChanged, records: []domain.EventRecord{toEventRecord(d.Record(k))}})
	}

	out := make([]store.Event, 0, len(evs))
	stamp := domain.Timestamp(now)
	for _, e := range evs {
		id, err := store.NewTimeID("evt_", now)
		if err != nil {
			return nil, err
		}
		if e.records == nil {
			e.records = []domain.EventRecord{}
		}
		body, err := json.Marshal(domain.EventPayload{
			Type:      e.typ,
			Timestamp: stamp,
			Data: domain.EventData{
				EventID: id, DomainID: d.ID, Domain: d.Name,
				VerificationStatus: string(d.Status), PreviousStatus: string(c.From),
				OwnershipVerified: d.OwnershipVerified, DKIMEnabled: d.DKIMEnabled,
				MailFromEnabled: d.MailFromEnabled, DMARCEnabled: d.DMARCEnabled,
				Records: e.records, Reason: e.reason,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("verify: event payload: %w", err)
		}
		out = append(out, store.Event{ID: id, ProjectID: d.ProjectID, DomainID: d.ID, Type: e.typ, Payload: body, CreatedAt: now})
	}
	return out, nil
}
