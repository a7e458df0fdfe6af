package storetest

import (
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// testEventPayloads checks that an event's payload reads back byte for byte,
// whatever the store keeps of it: one laid out as the checks and the rotation
// worker write it (the row's type, time, id and domain first), one whose
// timestamp is not the row's, and ones of other shapes, including the marks
// a store might use.
func testEventPayloads(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := sampleDomain(p.ID, newID(t), "example.com", at(0))
	createDomain(t, s, d)
	when := at(time.Minute + 123*time.Millisecond + 456*time.Microsecond)
	start := func(typ, id, stamp string) string {
		return `{"type":"` + typ + `","timestamp":"` + stamp + `","data":{"eventId":"` + id + `","domainId":"` + d.ID + `",`
	}
	stamp := when.UTC().Format("2006-01-02T15:04:05.000Z")
	payloads := []string{
		start(store.EventVerified, "evt_p0", stamp) + `"domain":"example.com","records":[]}}`,
		start(store.EventVerified, "evt_p1", "2001-01-01T00:00:00.000Z") + `"domain":"example.com"}}`,
		start(store.EventVerified, "evt_p2", stamp) + `{"nested":true}}}`,
		start(store.EventVerified, "evt_p3", stamp) + `=x"}}`,
		start(store.EventVerified, "evt_p4", stamp),
		`={"odd":1}`,
		` {"space":1}`,
		`{"n":1}`,
		``,
	}
	var events []store.Event
	for i, pl := range payloads {
		events = append(events, store.Event{ID: "evt_p" + string(rune('0'+i)), ProjectID: p.ID, DomainID: d.ID,
			Type: store.EventVerified, Payload: []byte(pl), CreatedAt: when})
	}
	if err := s.SaveCheck(ctx, clone(d), events); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.Events(ctx, p.ID, d.ID, store.Page{})
	if err != nil || total != len(payloads) {
		t.Fatalf("Events = %d, %v; want %d", total, err, len(payloads))
	}
	for _, e := range got {
		i := int(e.ID[len(e.ID)-1] - '0')
		if string(e.Payload) != payloads[i] || !e.CreatedAt.Equal(when.Truncate(time.Millisecond)) {
			t.Errorf("%s read back as %q at %v; want %q", e.ID, e.Payload, e.CreatedAt, payloads[i])
		}
	}
}
