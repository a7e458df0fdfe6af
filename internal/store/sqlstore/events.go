package sqlstore

import (
	"strings"

	"github.com/domaind/domaind/internal/store"
)

// An event's payload, the exact JSON its webhooks receive, starts with what
// the event's row already holds: {"type":"<type>","timestamp":"<created_at>",
// "data":{"eventId":"<id>","domainId":"<domain_id>", (the Standard Webhooks
// layout that package verify and the rotation worker write). The payload
// column keeps only the rest, and reads put the start back from the row, so
// about 130 bytes of each event's are not stored twice. A payload that does
// not start so is kept whole; migration 00011 makes the same choice in SQL.

// eventTimestamp is the layout of the payload's timestamp, of created_at.
const eventTimestamp = "2006-01-02T15:04:05.000Z"

// payloadStart is the start of e's payload that its row gives.
func payloadStart(e *store.Event) string {
	return `{"type":"` + e.Type + `","timestamp":"` + e.CreatedAt.UTC().Format(eventTimestamp) +
		`","data":{"eventId":"` + e.ID + `","domainId":"` + e.DomainID + `",`
}

// storedPayload is how e's payload is kept: less payloadStart where it starts
// with it; else whole, marked with a leading "=" unless it starts with "{".
// So a kept payload starting with "{" is whole, one starting with "=" is whole
// after the mark, and any other is the rest after payloadStart.
func storedPayload(e *store.Event) string {
	p := string(e.Payload)
	if rest, ok := strings.CutPrefix(p, payloadStart(e)); ok && rest != "" && rest[0] != '{' && rest[0] != '=' {
		return rest
	}
	if strings.HasPrefix(p, "{") {
		return p
	}
	return "=" + p
}

// payloadOf is the inverse of storedPayload, for the event e read from its row.
func payloadOf(e *store.Event, stored string) []byte {
	switch {
	case strings.HasPrefix(stored, "{"):
		return []byte(stored)
	case strings.HasPrefix(stored, "="):
		return []byte(stored[1:])
	}
	return []byte(payloadStart(e) + stored)
}
