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

	// The steps of a DKIM key rotation (see RotationState and the README's state
	// machine).

	// EventDKIMRotationStarted: the next key was generated at the idle selector.
	EventDKIMRotationStarted EventType = "domain.dkim.rotation.started"
	// EventDKIMRotationPublished: in cname mode, the next key's TXT record was
	// written to the operator's zone by RFC 2136 update.
	EventDKIMRotationPublished EventType = "domain.dkim.rotation.published"
	// EventDKIMRotationWaiting: in txt mode, the next key's record is not yet on
	// every authoritative server; sent again each reminder interval.
	EventDKIMRotationWaiting EventType = "domain.dkim.rotation.waiting"
	// EventDKIMRotationVisible: every authoritative server answers with the next
	// key.
	EventDKIMRotationVisible EventType = "domain.dkim.rotation.visible"
	// EventDKIMRotationSwitched: mail is signed with the next key from now on.
	EventDKIMRotationSwitched EventType = "domain.dkim.rotation.switched"
	// EventDKIMRotationRetired: the previous key was revoked or removed.
	EventDKIMRotationRetired EventType = "domain.dkim.rotation.retired"
	// EventDKIMUpdateFailed: an RFC 2136 update of the operator's zone failed; it
	// is retried with back-off and signing does not switch meanwhile.
	EventDKIMUpdateFailed EventType = "domain.dkim.update_failed"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventVerified, EventDegraded, EventFailed, EventRecordChanged, EventStatusChanged,
	EventDKIMRotationStarted, EventDKIMRotationPublished, EventDKIMRotationWaiting, EventDKIMRotationVisible,
	EventDKIMRotationSwitched, EventDKIMRotationRetired, EventDKIMUpdateFailed}

// Wants reports whether a webhook subscribed to events receives an event of
// type t. An empty list means every type but EventStatusChanged, which is
// stored but sent only to the webhooks that name it.
func Wants(events []string, t EventType) bool {
	if len(events) == 0 {
		return t != EventStatusChanged
	}
	return slices.Contains(events, string(t))
}

// KnownEventType reports whether s names an event type.
func KnownEventType(s string) bool { return slices.Contains(EventTypes, EventType(s)) }

// EventRecord is a record as a verification event describes it.
type EventRecord struct {
	Type       string      `json:"type"`
	Name       string      `json:"name"`
	RecordType string      `json:"recordType"`
	IsVerified bool        `json:"isVerified"`
	Status     CheckStatus `json:"status"`
	Problems   []Problem   `json:"problems"`
}

// EventData is the data of every verification event: the domain's state after
// the change, and what changed. Package verify writes it; the dashboard reads
// it back to show a domain's history.
type EventData struct {
	EventID            string        `json:"eventId"`
	DomainID           string        `json:"domainId"`
	Domain             string        `json:"domain"`
	VerificationStatus string        `json:"verificationStatus"`
	PreviousStatus     string        `json:"previousStatus"`
	OwnershipVerified  bool          `json:"ownershipVerified"`
	DKIMEnabled        bool          `json:"dkimEnabled"`
	MailFromEnabled    bool          `json:"mailFromEnabled"`
	DMARCEnabled       bool          `json:"dmarcEnabled"`
	Records            []EventRecord `json:"records"`
	Reason             string        `json:"reason,omitempty"`
}

// Envelope is the layout of every event's payload, as it is stored and as
// webhooks receive it (Standard Webhooks): the type, the time and the data, in
// that order. The store relies on the order (package sqlstore keeps a payload
// without the start its row gives back), so every kind of event is written
// through this one type.
type Envelope[T any] struct {
	Type      EventType `json:"type"`
	Timestamp string    `json:"timestamp"`
	Data      T         `json:"data"`
}

// EventPayload is a verification event's payload.
type EventPayload = Envelope[EventData]
