package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/testenv"
)

// hook stores a webhook of project p subscribed to events and returns it.
func hook(t *testing.T, s store.Store, p store.Project, id string, events ...domain.EventType) store.Webhook {
	t.Helper()
	var names []string
	for _, e := range events {
		names = append(names, string(e))
	}
	w := store.Webhook{ID: id, ProjectID: p.ID, URL: "https://" + id + ".example/h", Events: names,
		SealedSecret: []byte(id), CreatedAt: t0}
	if err := s.CreateWebhook(t.Context(), w, 0); err != nil {
		t.Fatalf("CreateWebhook(%s): %v", id, err)
	}
	return w
}

// emitAll stores events of one domain of p, created one second apart from
// start, each of type typ, and returns their ids.
func emitAll(t *testing.T, s store.Store, p store.Project, start time.Time, n int, typ domain.EventType) []string {
	t.Helper()
	id := newID(t)
	d := sampleDomain(p.ID, id, "e"+id+".example.com", t0)
	createDomain(t, s, d)
	var events []store.Event
	var ids []string
	for i := range n {
		id := fmt.Sprintf("evt_%s_%d", d.ID, i)
		events = append(events, store.Event{ID: id, ProjectID: p.ID, DomainID: d.ID, Type: typ,
			Payload: []byte(`{}`), CreatedAt: start.Add(time.Duration(i) * time.Second)})
		ids = append(ids, id)
	}
	if err := s.SaveCheck(t.Context(), clone(d), events); err != nil {
		t.Fatal(err)
	}
	return ids
}

// perHook counts claimed deliveries by webhook.
func perHook(ds []store.Delivery) map[string][]string {
	out := map[string][]string{}
	for _, d := range ds {
		out[d.WebhookID] = append(out[d.WebhookID], d.EventID)
	}
	return out
}

// testClaimFair checks the claim's fairness rules: every endpoint's oldest due
// delivery before any endpoint's second, never more in flight for an endpoint
// than allowed (counting earlier claims), and a claim whose lease ran out no
// longer counted.
func testClaimFair(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, other := project(t, s, "acme"), project(t, s, "globex")
	// A has a backlog of five; B and C, of another project, one each and newer.
	hook(t, s, p, "wh_a", domain.EventRecordChanged)
	hook(t, s, other, "wh_b", domain.EventVerified)
	hook(t, s, other, "wh_c", domain.EventVerified)
	backlog := emitAll(t, s, p, at(0), 5, domain.EventRecordChanged)
	emitAll(t, s, other, at(time.Minute), 1, domain.EventVerified)
	now := at(time.Hour)

	got, err := s.ClaimDeliveries(ctx, now, time.Minute, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if by := perHook(got); len(got) != 3 || !slices.Equal(by["wh_a"], backlog[:1]) || len(by["wh_b"]) != 1 || len(by["wh_c"]) != 1 {
		t.Fatalf("first claim of 3 = %v; want A's oldest and B's and C's one: a backlog must not take the batch", by)
	}
	first := got[0]
	for _, d := range got {
		if d.WebhookID == "wh_a" {
			first = d
		}
	}
	if again, err := s.ClaimDeliveries(ctx, now, time.Minute, 10, 1); err != nil || len(again) != 0 {
		t.Fatalf("claim with one in flight per endpoint = %v, %v; want nothing, A's backlog waits", perHook(again), err)
	}
	// An allowance of two lets A have one more, not more.
	got, err = s.ClaimDeliveries(ctx, now, time.Minute, 10, 2)
	if by := perHook(got); err != nil || len(got) != 1 || !slices.Equal(by["wh_a"], backlog[1:2]) {
		t.Fatalf("claim with two allowed = %v, %v; want only A's second", by, err)
	}
	// A's first attempt ends: its slot is free again.
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: first.ID, At: now, StatusCode: 200},
		store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err = s.ClaimDeliveries(ctx, now, time.Minute, 10, 2)
	if by := perHook(got); err != nil || len(got) != 1 || !slices.Equal(by["wh_a"], backlog[2:3]) {
		t.Fatalf("claim after A's first attempt = %v, %v; want A's third", by, err)
	}
	// The Deliverers died: once the leases run out nothing counts as in flight.
	got, err = s.ClaimDeliveries(ctx, now.Add(time.Minute+time.Second), time.Minute, 10, 1)
	if by := perHook(got); err != nil || len(got) != 3 || len(by["wh_a"]) != 1 || len(by["wh_b"]) != 1 || len(by["wh_c"]) != 1 {
		t.Fatalf("claim after the leases ran out = %v, %v; want one of each endpoint", by, err)
	}
}

// testClaimParked checks that a failed attempt parks its endpoint: its pending
// deliveries, old and new, are not claimed until the parking ends, another
// endpoint's are, a success resets the endpoint, and a parked endpoint's
// deliveries expire when the retry window closes.
func testClaimParked(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	hook(t, s, p, "wh_dead", domain.EventRecordChanged)
	hook(t, s, p, "wh_live", domain.EventVerified)
	emitAll(t, s, p, at(0), 3, domain.EventRecordChanged)
	now := at(time.Hour)
	got, err := s.ClaimDeliveries(ctx, now, time.Minute, 10, 1)
	if err != nil || len(got) != 1 || got[0].WebhookID != "wh_dead" || got[0].EndpointFailures != 0 {
		t.Fatalf("first claim = %+v, %v; want one of wh_dead's, with no failures yet", got, err)
	}
	parkedUntil := now.Add(10 * time.Minute)
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: got[0].ID, At: now, Error: "timeout"},
		store.DeliveryState{Status: store.DeliveryPending, NextAttemptAt: now.Add(5 * time.Second)}, parkedUntil); err != nil {
		t.Fatal(err)
	}
	hooks, err := s.Webhooks(ctx, p.ID)
	if err != nil || len(hooks) != 2 || hooks[0].Failures != 1 || !hooks[0].ParkedUntil.Equal(msUTC(parkedUntil)) ||
		hooks[1].Failures != 0 || !hooks[1].ParkedUntil.IsZero() {
		t.Fatalf("Webhooks after a failure = %+v, %v; want wh_dead with 1 failure parked until %v", hooks, err, msUTC(parkedUntil))
	}
	// Every pending delivery of the parked endpoint, the failed one included,
	// waits for the parking to end; so does one stored while it is parked.
	emitAll(t, s, p, now.Add(time.Second), 1, domain.EventRecordChanged)
	emitAll(t, s, p, now.Add(time.Second), 1, domain.EventVerified)
	ds, _, err := s.Deliveries(ctx, p.ID, "wh_dead", store.Page{})
	if err != nil || len(ds) != 4 {
		t.Fatalf("Deliveries(wh_dead) = %d, %v; want 4", len(ds), err)
	}
	for _, d := range ds {
		if d.Status != store.DeliveryPending || !d.NextAttemptAt.Equal(msUTC(parkedUntil)) {
			t.Errorf("parked endpoint's delivery %s is %s, next %v; want pending until %v", d.EventID, d.Status, d.NextAttemptAt, msUTC(parkedUntil))
		}
	}
	got, err = s.ClaimDeliveries(ctx, now.Add(9*time.Minute), time.Minute, 10, 1)
	if err != nil || len(got) != 1 || got[0].WebhookID != "wh_live" {
		t.Fatalf("claim while wh_dead is parked = %v, %v; want only wh_live's", perHook(got), err)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: got[0].ID, At: now.Add(9 * time.Minute), StatusCode: 204},
		store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err = s.ClaimDeliveries(ctx, parkedUntil, time.Minute, 10, 1)
	if err != nil || len(got) != 1 || got[0].WebhookID != "wh_dead" || got[0].EndpointFailures != 1 {
		t.Fatalf("claim when the parking ends = %+v, %v; want one of wh_dead's, with its failure", got, err)
	}
	// A success forgives the failures.
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: got[0].ID, At: parkedUntil, StatusCode: 200},
		store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if hooks, err := s.Webhooks(ctx, p.ID); err != nil || hooks[0].Failures != 0 || !hooks[0].ParkedUntil.IsZero() {
		t.Fatalf("Webhooks after a success = %+v, %v; want wh_dead reset", hooks, err)
	}

	// Parked again, long: its deliveries expire when 24 hours have passed since
	// each was stored, with no further attempt; the live endpoint's do not.
	got, err = s.ClaimDeliveries(ctx, parkedUntil, time.Minute, 10, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v; want one", perHook(got), err)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: got[0].ID, At: parkedUntil, Error: "refused"},
		store.DeliveryState{Status: store.DeliveryPending, NextAttemptAt: parkedUntil.Add(time.Minute)}, at(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	emitAll(t, s, p, parkedUntil, 1, domain.EventVerified) // wh_live, pending
	if n, err := s.ExpireDeliveries(ctx, at(24*time.Hour-time.Second), 24*time.Hour); err != nil || n != 0 {
		t.Fatalf("ExpireDeliveries before any window closed = %d, %v; want 0", n, err)
	}
	// At 24h only the three first deliveries (stored at 0s, 1s, 2s) are 24h old.
	n, err := s.ExpireDeliveries(ctx, at(24*time.Hour+2*time.Second), 24*time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("ExpireDeliveries at 24h2s = %d, %v; want the 2 of the first 3 still pending", n, err)
	}
	ds, _, _ = s.Deliveries(ctx, p.ID, "wh_dead", store.Page{})
	var failed, pending int
	for _, d := range ds {
		switch d.Status {
		case store.DeliveryFailed:
			failed++
			if !d.NextAttemptAt.IsZero() {
				t.Errorf("expired delivery %s keeps a next attempt %v", d.EventID, d.NextAttemptAt)
			}
		case store.DeliveryPending:
			pending++
		}
	}
	if failed != 2 || pending != 1 {
		t.Errorf("wh_dead after expiry: %d failed, %d pending; want 2 and the one stored an hour later", failed, pending)
	}
	if n, err := s.ExpireDeliveries(ctx, at(100*time.Hour), 24*time.Hour); err != nil || n != 0 {
		t.Errorf("ExpireDeliveries once the parking is over = %d, %v; want 0: an endpoint that is not parked gets its last attempt", n, err)
	}
	ds, _, _ = s.Deliveries(ctx, p.ID, "wh_live", store.Page{})
	for _, d := range ds {
		if d.Status == store.DeliveryFailed {
			t.Errorf("a delivery of an endpoint that is not parked expired: %+v", d)
		}
	}
}

// testWebhookLimit checks the cap on a project's webhooks, also under
// concurrent registrations.
func testWebhookLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, other := project(t, s, "acme"), project(t, s, "globex")
	mk := func(p store.Project, i int) store.Webhook {
		return store.Webhook{ID: fmt.Sprintf("wh_%d_%d", p.ID, i), ProjectID: p.ID, URL: "https://h.example/",
			SealedSecret: []byte{1}, CreatedAt: at(time.Duration(i) * time.Millisecond)}
	}
	for i := range 3 {
		if err := s.CreateWebhook(ctx, mk(p, i), 3); err != nil {
			t.Fatalf("webhook %d of 3: %v", i+1, err)
		}
	}
	if err := s.CreateWebhook(ctx, mk(p, 3), 3); !errors.Is(err, store.ErrTooManyWebhooks) {
		t.Fatalf("a fourth webhook with a cap of 3: %v, want ErrTooManyWebhooks", err)
	}
	if err := s.CreateWebhook(ctx, mk(other, 0), 3); err != nil {
		t.Fatalf("another project's first webhook: %v", err)
	}
	if err := s.CreateWebhook(ctx, mk(p, 4), 0); err != nil {
		t.Fatalf("no cap: %v", err)
	}
	if err := s.DeleteWebhook(ctx, p.ID, mk(p, 0).ID); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(ctx, mk(p, 5), 5); err != nil {
		t.Fatalf("after a delete, below the cap: %v", err)
	}

	// Racing registrations of a new project never exceed the cap.
	racer := project(t, s, "racer")
	const racers, limit = 16, 5
	errs := make([]error, racers)
	testenv.Race(racers, func(i int) {
		errs[i] = s.CreateWebhook(ctx, mk(racer, i), limit)
	})
	ok := Wins(t, errs, store.ErrTooManyWebhooks, "CreateWebhook")
	hooks, err := s.Webhooks(ctx, racer.ID)
	if err != nil || ok != limit || len(hooks) != limit {
		t.Errorf("%d racing registrations with a cap of %d: %d succeeded, %d stored (%v); want %d", racers, limit, ok, len(hooks), err, limit)
	}
}

// testClaimConcurrently runs ClaimConcurrently on one store.
func testClaimConcurrently(t *testing.T, s store.Store) {
	ClaimConcurrently(t, []store.Store{s, s})
}

// ClaimConcurrently fills the outbox of the first store with a backlog for many
// endpoints, then has four claimers per store claim and record attempts until
// every delivery is delivered. It fails if a delivery is claimed twice or an
// endpoint ever has more than one delivery in flight. Several stores on one
// database are replicas.
func ClaimConcurrently(t *testing.T, stores []store.Store) {
	ctx := t.Context()
	s := stores[0]
	p := project(t, s, "acme")
	const endpoints, each = 12, 15
	for i := range endpoints {
		hook(t, s, p, fmt.Sprintf("wh_%02d", i))
	}
	emitAll(t, s, p, at(0), each, domain.EventVerified)
	const total = endpoints * each
	now := at(time.Hour)

	var (
		mu       sync.Mutex
		inFlight = map[string]int{}
		claimed  = map[string]int{}
		done     int
		problems []string
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(60 * time.Second)
	for i, st := range stores {
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					mu.Lock()
					finished := done == total
					mu.Unlock()
					if finished {
						return
					}
					ds, err := st.ClaimDeliveries(ctx, now, time.Hour, 3, 1)
					if err != nil {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("claim on store %d: %v", i, err))
						mu.Unlock()
						return
					}
					mu.Lock()
					for _, d := range ds {
						claimed[d.ID]++
						if inFlight[d.WebhookID]++; inFlight[d.WebhookID] > 1 {
							problems = append(problems, fmt.Sprintf("%s has %d deliveries in flight", d.WebhookID, inFlight[d.WebhookID]))
						}
					}
					mu.Unlock()
					if len(ds) > 0 {
						// The attempt: real work on the store, during which another
						// claim of these endpoints would be caught above.
						if _, err := st.Webhooks(ctx, p.ID); err != nil {
							t.Error(err)
						}
					}
					for _, d := range ds {
						// The count drops before the attempt is recorded, as the
						// store frees the slot only when the record commits; a claim
						// in between that gets the endpoint again is the bug.
						mu.Lock()
						inFlight[d.WebhookID]--
						mu.Unlock()
						err := st.RecordAttempt(ctx, store.Attempt{DeliveryID: d.ID, At: now, StatusCode: 200},
							store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{})
						mu.Lock()
						if err != nil {
							problems = append(problems, fmt.Sprintf("record on store %d: %v", i, err))
						}
						done++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	for _, p := range problems[:min(len(problems), 10)] {
		t.Error(p)
	}
	for id, n := range claimed {
		if n > 1 {
			t.Errorf("%s was claimed %d times", id, n)
		}
	}
	if len(claimed) != total || done != total {
		t.Errorf("%d deliveries claimed and %d recorded, want %d", len(claimed), done, total)
	}
}
