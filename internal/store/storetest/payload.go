package storetest

import (
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
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
	start := func(typ domain.EventType, id, stamp string) string { return payloadStart(typ, id, d.ID, stamp) }
	stamp := eventStamp(when)
	payloads := []string{
		start(domain.EventVerified, "evt_p0", stamp) + `"domain":"example.com","records":[]}}`,
		start(domain.EventVerified, "evt_p1", "2001-01-01T00:00:00.000Z") + `"domain":"example.com"}}`,
		start(domain.EventVerified, "evt_p2", stamp) + `{"nested":true}}}`,
		start(domain.EventVerified, "evt_p3", stamp) + `=x"}}`,
		start(domain.EventVerified, "evt_p4", stamp),
		`={"odd":1}`,
		` {"space":1}`,
		`{"n":1}`,
		``,
	}
	var events []store.Event
	for i, pl := range payloads {
		events = append(events, store.Event{ID: "evt_p" + string(rune('0'+i)), ProjectID: p.ID, DomainID: d.ID,
			Type: domain.EventVerified, Payload: []byte(pl), CreatedAt: when})
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

// payloadStart is how the checks and the rotation worker begin an event's
// payload: its type, time, id and domain, the part a store may leave out and
// build again from the row.
func payloadStart(typ domain.EventType, id, domainID, stamp string) string {
	return `{"type":"` + string(typ) + `","timestamp":"` + stamp + `","data":{"eventId":"` + id + `","domainId":"` + domainID + `",`
}

// eventStamp is t as an event's payload gives its time. It is spelled out
// here, not taken from the code, so that a change of the layout the writers
// and the stores share shows.
func eventStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// CheckEvents returns two events of the domain, created at when, for a store's
// tests of its migrations: the first's payload laid out as the checks write it,
// which a store may keep less its start, the second's of another shape, kept
// whole. [SamePayloads] checks them after the migrations.
func CheckEvents(projectID int64, domainID string, when time.Time) []store.Event {
	return []store.Event{
		{ID: "evt_1", ProjectID: projectID, DomainID: domainID, Type: domain.EventVerified, CreatedAt: when,
			Payload: []byte(payloadStart(domain.EventVerified, "evt_1", domainID, eventStamp(when)) + `"domain":"x"}}`)},
		{ID: "evt_2", ProjectID: projectID, DomainID: domainID, Type: domain.EventFailed, CreatedAt: when, Payload: []byte(` {"n":2}`)},
	}
}

// SamePayloads fails the test unless the domain has as many events as want, and
// each of them of an id in want has want's payload byte for byte; after says
// when, in the messages.
func SamePayloads(t *testing.T, s store.Store, projectID int64, domainID string, want []store.Event, after string) {
	t.Helper()
	evs, _, err := s.Events(t.Context(), projectID, domainID, store.Page{})
	if err != nil || len(evs) != len(want) {
		t.Fatalf("Events %s = %+v, %v", after, evs, err)
	}
	for _, e := range evs {
		for _, w := range want {
			if e.ID == w.ID && string(e.Payload) != string(w.Payload) {
				t.Errorf("%s payload %s: %q; want %q", e.ID, after, e.Payload, w.Payload)
			}
		}
	}
}
