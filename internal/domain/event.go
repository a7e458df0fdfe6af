package domain

import "slices"

// EventType names something that happened to a domain, as its events and the
// webhooks that receive them say it. Stores keep it as its string.
type EventType string

// The event types.
const (
	// EventVerified: the domain became VERIFIED.
	EventVerified EventType = "domain.verified"
	// EventDegraded: a verified domain lost a required record for good (past the
	// degrade threshold).
	EventDegraded EventType = "domain.degraded"
	// EventFailed: automatic checks gave up on an unverified domain.
	EventFailed EventType = "domain.failed"
	// EventRecordChanged: a record's flag changed.
	EventRecordChanged EventType = "domain.record.changed"
	// EventStatusChanged: the status changed in a way none of the above covers,
	// such as a verified domain starting to lose a record. It is stored, but only
	// webhooks that name it receive it.
	EventStatusChanged EventType = "domain.status.changed"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventVerified, EventDegraded, EventFailed, EventRecordChanged, EventStatusChanged}

// KnownEventType reports whether s names an event type.
func KnownEventType(s string) bool { return slices.Contains(EventTypes, EventType(s)) }
