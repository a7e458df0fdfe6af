package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// testEventsAndOutbox checks that SaveCheck stores events with a pending delivery
// to each webhook that wants them, and the delivery life cycle.
func testEventsAndOutbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, other := project(t, s, "acme"), project(t, s, "globex")
	all := store.Webhook{ID: "wh_all", ProjectID: p.ID, URL: "https://a.example/h", SealedSecret: []byte{1, 2}, CreatedAt: at(0)}
	picky := store.Webhook{ID: "wh_picky", ProjectID: p.ID, URL: "https://b.example/h", Events: []string{string(domain.EventFailed)}, SealedSecret: []byte{3}, CreatedAt: at(time.Second)}
	foreign := store.Webhook{ID: "wh_foreign", ProjectID: other.ID, URL: "https://c.example/h", SealedSecret: []byte{4}, CreatedAt: at(0)}
	for _, w := range []store.Webhook{all, picky, foreign} {
		if err := s.CreateWebhook(ctx, w, 0); err != nil {
			t.Fatal(err)
		}
	}
	hooks, err := s.Webhooks(ctx, p.ID)
	if err != nil || len(hooks) != 2 || hooks[0].ID != all.ID || hooks[1].ID != picky.ID ||
		!slices.Equal(hooks[1].Events, []string{string(domain.EventFailed)}) || string(hooks[0].SealedSecret) != "\x01\x02" {
		t.Fatalf("Webhooks = %+v, %v", hooks, err)
	}

	d := sampleDomain(p.ID, newID(t), "example.com", at(0))
	createDomain(t, s, d)
	events := []store.Event{
		{ID: "evt_1", ProjectID: p.ID, DomainID: d.ID, Type: domain.EventVerified, Payload: []byte(`{"n":1}`), CreatedAt: at(time.Minute)},
		{ID: "evt_2", ProjectID: p.ID, DomainID: d.ID, Type: domain.EventFailed, Payload: []byte(`{"n":2}`), CreatedAt: at(time.Minute)},
		{ID: "evt_3", ProjectID: p.ID, DomainID: d.ID, Type: domain.EventStatusChanged, Payload: []byte(`{"n":3}`), CreatedAt: at(time.Minute)},
	}
	if err := s.SaveCheck(ctx, clone(d), events); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.Events(ctx, p.ID, d.ID, store.Page{Limit: 2})
	if err != nil || total != 3 || len(got) != 2 || got[0].ID != "evt_3" || got[1].ID != "evt_2" || string(got[1].Payload) != `{"n":2}` {
		t.Fatalf("Events = %+v, %d, %v; want newest first", got, total, err)
	}
	if _, total, _ := s.Events(ctx, other.ID, d.ID, store.Page{}); total != 0 {
		t.Errorf("another project sees %d events of the domain", total)
	}

	// wh_all wants every default type (not status.changed): evt_1 and evt_2;
	// wh_picky only domain.failed: evt_2. Nothing for the other project.
	claimed, err := s.ClaimDeliveries(ctx, at(2*time.Minute), time.Minute, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	type pair struct{ hook, event string }
	var pairs []pair
	for _, dl := range claimed {
		pairs = append(pairs, pair{dl.WebhookID, dl.EventID})
		if dl.URL == "" || len(dl.SealedSecret) == 0 || len(dl.Payload) == 0 || dl.Status != store.DeliveryPending {
			t.Errorf("claimed delivery lacks what sending needs: %+v", dl)
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.hook != b.hook {
			return map[bool]int{true: -1, false: 1}[a.hook < b.hook]
		}
		return map[bool]int{true: -1, false: 1}[a.event < b.event]
	})
	if want := []pair{{"wh_all", "evt_1"}, {"wh_all", "evt_2"}, {"wh_picky", "evt_2"}}; !slices.Equal(pairs, want) {
		t.Fatalf("deliveries %v, want %v", pairs, want)
	}
	if again, _ := s.ClaimDeliveries(ctx, at(2*time.Minute), time.Minute, 10, 10); len(again) != 0 {
		t.Fatalf("claimed deliveries claimed again within their lease: %d", len(again))
	}

	// One fails and is retried later; one is delivered.
	var first, second store.Delivery
	for _, dl := range claimed {
		if dl.WebhookID == "wh_all" && dl.EventID == "evt_1" {
			first = dl
		}
		if dl.WebhookID == "wh_picky" {
			second = dl
		}
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: first.ID, At: at(2 * time.Minute), StatusCode: 500, Error: "500 Internal Server Error", Duration: 12 * time.Millisecond},
		store.DeliveryState{Status: store.DeliveryPending, NextAttemptAt: at(10 * time.Minute)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: second.ID, At: at(2 * time.Minute), StatusCode: 204, Duration: 3 * time.Millisecond},
		store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// At 9m only the third delivery, untouched since its claim expired, is due.
	third, err := s.ClaimDeliveries(ctx, at(9*time.Minute), time.Minute, 10, 10)
	if err != nil || len(third) != 1 || third[0].ID == first.ID || third[0].ID == second.ID {
		t.Fatalf("claim at 9m: %+v, %v; want only the untouched delivery", third, err)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: third[0].ID, At: at(9 * time.Minute), StatusCode: 200},
		store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimDeliveries(ctx, at(11*time.Minute), time.Minute, 10, 10); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("claim at 11m: %+v, want only the retried delivery %s", got, first.ID)
	}
	list, total, err := s.Deliveries(ctx, p.ID, "wh_all", store.Page{})
	if err != nil || total != 2 || len(list) != 2 {
		t.Fatalf("Deliveries = %d of %d, %v", len(list), total, err)
	}
	for _, dl := range list {
		if dl.ID == first.ID {
			if len(dl.Attempts) != 1 || dl.Attempts[0].StatusCode != 500 || dl.Attempts[0].Duration != 12*time.Millisecond || !dl.NextAttemptAt.Equal(msUTC(at(12*time.Minute))) { // claimed at 11m for a minute
				t.Errorf("retried delivery listed as %+v", dl)
			}
		}
	}
	if _, total, _ := s.Deliveries(ctx, other.ID, "wh_all", store.Page{}); total != 0 {
		t.Error("another project sees the webhook's deliveries")
	}

	// Deleting a webhook removes its deliveries; another project cannot.
	if err := s.DeleteWebhook(ctx, other.ID, "wh_all"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cross-project DeleteWebhook: %v", err)
	}
	if err := s.DeleteWebhook(ctx, p.ID, "wh_all"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: first.ID, At: at(12 * time.Minute)}, store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordAttempt for a deleted webhook's delivery: %v, want ErrNotFound", err)
	}
}

// testDomainsAfter checks keyset pagination: the page after a position, with
// domains created in the same millisecond ordered by id.
func testDomainsAfter(t *testing.T, s store.Store) {
	p := project(t, s, "acme")
	var ids []string
	for i, created := range []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second} {
		d := sampleDomain(p.ID, newID(t), "k"+string(rune('a'+i))+".example.com", at(created))
		createDomain(t, s, d)
		ids = append(ids, d.ID)
	}
	all, _, err := s.Domains(t.Context(), p.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	after := &store.Position{CreatedAt: all[1].CreatedAt, ID: all[1].ID}
	got, total, err := s.Domains(t.Context(), p.ID, store.Page{Limit: 2, After: after})
	if err != nil || total != 5 || len(got) != 2 || got[0].ID != all[2].ID || got[1].ID != all[3].ID {
		t.Fatalf("page after %s: %v (total %d, %v); want %s %s", all[1].ID, got, total, err, all[2].ID, all[3].ID)
	}
	got, _, _ = s.Domains(t.Context(), p.ID, store.Page{After: &store.Position{CreatedAt: all[4].CreatedAt, ID: all[4].ID}})
	if len(got) != 0 {
		t.Fatalf("page after the last domain has %d domains", len(got))
	}
}

// testConsistentReads saves checks while reading the domain back: every read must
// see the domain row and its records from the same check, never a mix.
func testConsistentReads(t *testing.T, s store.Store) {
	p := project(t, s, "acme")
	d := sampleDomain(p.ID, newID(t), "example.com", at(0))
	// Every record checked when the domain was: the state each save keeps.
	for j := range d.Records {
		d.Records[j].CheckedAt = d.LastCheckedAt
	}
	createDomain(t, s, d)
	ctx := t.Context()
	done := make(chan struct{})
	var torn []string
	var reads int
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := s.Domain(ctx, p.ID, d.ID)
			if err != nil {
				torn = append(torn, err.Error())
				return
			}
			reads++
			for _, r := range got.Records {
				if !r.CheckedAt.Equal(got.LastCheckedAt) {
					torn = append(torn, "record "+string(r.Key)+" at "+r.CheckedAt.String()+", domain at "+got.LastCheckedAt.String())
				}
			}
		}
	}()
	for i := 1; i <= 200; i++ {
		c := clone(d)
		c.LastCheckedAt = at(time.Duration(i) * time.Second)
		for j := range c.Records {
			c.Records[j].CheckedAt = c.LastCheckedAt
		}
		if err := s.SaveCheck(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	<-readerDone
	if len(torn) > 0 {
		t.Fatalf("%d of %d reads mixed two checks, e.g. %s", len(torn), reads, torn[0])
	}
}

// leased is where the lease tests start: a domain stored in the project acme,
// whose check lease owner a took at now, for a minute. acquire asks for the
// lease for owner at that time, also for a minute, and reports whether owner got
// it.
func leased(t *testing.T, s store.Store) (p store.Project, d *domain.Domain, now time.Time, acquire func(owner string, at time.Time) bool) {
	t.Helper()
	p = project(t, s, "acme")
	d = sampleDomain(p.ID, newID(t), "example.com", at(0))
	createDomain(t, s, d)
	acquire = func(owner string, at time.Time) bool {
		t.Helper()
		ok, err := s.AcquireCheck(t.Context(), d.ID, owner, at, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	now = at(time.Hour)
	if !acquire("a", now) {
		t.Fatal("a free lease was not acquired")
	}
	return p, d, now, acquire
}

// testCheckLease checks that one owner at a time holds a domain's check lease, that
// it ends when released or when its time is up, and that reads show it.
func testCheckLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, d, now, acquire := leased(t, s)
	if acquire("b", now.Add(time.Second)) {
		t.Fatal("a held lease was acquired by another owner")
	}
	if got := getDomain(t, s, p.ID, d.ID); !got.CheckingUntil.Equal(msUTC(now.Add(time.Minute))) {
		t.Errorf("CheckingUntil = %v, want %v", got.CheckingUntil, msUTC(now.Add(time.Minute)))
	}
	if err := s.ReleaseCheck(ctx, d.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if acquire("b", now.Add(2*time.Second)) {
		t.Fatal("another owner's release ended a's lease")
	}
	if err := s.ReleaseCheck(ctx, d.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire("b", now.Add(3*time.Second)) {
		t.Fatal("a released lease was not acquired")
	}
	// b dies holding it: the lease ends on its own.
	if !acquire("c", now.Add(3*time.Second+time.Minute)) {
		t.Fatal("an ended lease was not acquired")
	}
	if ok, err := s.AcquireCheck(ctx, "0123456789abcdef01234567", "a", now, time.Minute); ok || err != nil {
		t.Errorf("AcquireCheck of no domain = %v, %v", ok, err)
	}
}

// testFinishCheck checks that FinishCheck saves like SaveCheck and ends its
// owner's lease in the same write, but leaves another owner's alone, and that
// SaveCheck ends no lease.
func testFinishCheck(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, d, now, acquire := leased(t, s)
	c := clone(d)
	c.LastCheckedAt, c.NextCheckAt = now, now.Add(time.Hour)
	if err := s.SaveCheck(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if acquire("b", now.Add(time.Second)) {
		t.Fatal("SaveCheck ended a's lease")
	}
	c.Version = getDomain(t, s, p.ID, d.ID).Version // SaveCheck saved over any version
	if err := s.FinishCheck(ctx, c, nil, "b"); err != nil {
		t.Fatal(err)
	}
	if acquire("b", now.Add(2*time.Second)) {
		t.Fatal("FinishCheck of another owner ended a's lease")
	}
	c.LastCheckedAt = now.Add(3 * time.Second)
	events := []store.Event{{ID: "evt_" + newID(t), ProjectID: p.ID, DomainID: d.ID, Type: domain.EventVerified,
		Payload: []byte(`{"n":1}`), CreatedAt: now.Add(3 * time.Second)}}
	if err := s.FinishCheck(ctx, c, events, "a"); err != nil {
		t.Fatal(err)
	}
	got := getDomain(t, s, p.ID, d.ID)
	if !got.LastCheckedAt.Equal(msUTC(c.LastCheckedAt)) || !got.NextCheckAt.Equal(msUTC(c.NextCheckAt)) {
		t.Errorf("after FinishCheck: last checked %v, next %v; want %v, %v", got.LastCheckedAt, got.NextCheckAt, msUTC(c.LastCheckedAt), msUTC(c.NextCheckAt))
	}
	if !got.CheckingUntil.IsZero() {
		t.Errorf("after FinishCheck: CheckingUntil = %v, want none", got.CheckingUntil)
	}
	if evs, _, err := s.Events(ctx, p.ID, d.ID, store.Page{}); err != nil || len(evs) != 1 || evs[0].ID != events[0].ID {
		t.Errorf("events after FinishCheck = %v, %v; want the one saved", evs, err)
	}
	if !acquire("b", now.Add(4*time.Second)) {
		t.Fatal("the lease FinishCheck ended was not acquired")
	}
	gone := clone(d)
	gone.ID = "0123456789abcdef01234567"
	if err := s.FinishCheck(ctx, gone, nil, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishCheck of no domain = %v, want ErrNotFound", err)
	}
}

// testEventPages checks that a domain's events, saved three, one and two at a
// time (a store may keep each save's events together), list newest first
// across the saves, at any offset and limit, with their payloads and times.
func testEventPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, d, other := twoDomains(t, s)
	var want []store.Event // newest first
	n := 0
	for _, size := range []int{3, 1, 2} {
		var events []store.Event
		for range size {
			n++
			events = append(events, store.Event{ID: fmt.Sprintf("evt_%02d", n), ProjectID: p.ID, DomainID: d.ID,
				Type: domain.EventRecordChanged, Payload: []byte(fmt.Sprintf(`{"n":%d}`, n)), CreatedAt: at(time.Duration(n) * time.Second)})
		}
		if err := s.SaveCheck(ctx, clone(d), events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			want = append([]store.Event{e}, want...)
		}
		// Another domain's save between: not in d's list.
		if err := s.SaveCheck(ctx, clone(other), []store.Event{{ID: fmt.Sprintf("evt_other_%d", n), ProjectID: p.ID,
			DomainID: other.ID, Type: domain.EventVerified, Payload: []byte(`{}`), CreatedAt: at(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, page := range []store.Page{
		{}, {Limit: 1}, {Limit: 2}, {Limit: 4}, {Offset: 1}, {Offset: 2, Limit: 2}, {Offset: 3, Limit: 1},
		{Offset: 2, Limit: 3}, {Offset: 5}, {Offset: 6}, {Offset: 100, Limit: 1}, {Limit: 100},
	} {
		got, total, err := s.Events(ctx, p.ID, d.ID, page)
		if err != nil {
			t.Fatal(err)
		}
		from := min(page.Offset, len(want))
		to := len(want)
		if page.Limit > 0 {
			to = min(from+page.Limit, len(want))
		}
		var gotIDs, wantIDs []string
		for _, e := range got {
			gotIDs = append(gotIDs, e.ID)
		}
		for _, e := range want[from:to] {
			wantIDs = append(wantIDs, e.ID)
		}
		if total != len(want) || !slices.Equal(gotIDs, wantIDs) {
			t.Errorf("Events(%+v) = %v, total %d; want %v, total %d", page, gotIDs, total, wantIDs, len(want))
			continue
		}
		for i, e := range got {
			w := want[from+i]
			if string(e.Payload) != string(w.Payload) || !e.CreatedAt.Equal(msUTC(w.CreatedAt)) || e.Type != w.Type ||
				e.ProjectID != p.ID || e.DomainID != d.ID {
				t.Errorf("Events(%+v)[%d] = %+v; want %+v", page, i, e, w)
			}
		}
	}
}

// testEventCap checks that a domain keeps its newest store.MaxDomainEvents
// events: saves of a hundred events each add up to a tenth more than that
// before the oldest are deleted, newest first as ever, and the other domain's
// events are left alone.
func testEventCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, d, other := twoDomains(t, s)
	otherEvent := store.Event{ID: "evt_other", ProjectID: p.ID, DomainID: other.ID, Type: domain.EventVerified, Payload: []byte(`{}`), CreatedAt: at(0)}
	if err := s.SaveCheck(ctx, clone(other), []store.Event{otherEvent}); err != nil {
		t.Fatal(err)
	}
	const batch = 100
	saved := 0
	save := func() {
		t.Helper()
		var events []store.Event
		for range batch {
			saved++
			events = append(events, store.Event{ID: fmt.Sprintf("evt_%05d", saved), ProjectID: p.ID, DomainID: d.ID,
				Type: domain.EventRecordChanged, Payload: []byte(fmt.Sprintf(`{"n":%d}`, saved)), CreatedAt: at(time.Minute)})
		}
		if err := s.SaveCheck(ctx, clone(d), events); err != nil {
			t.Fatal(err)
		}
	}
	for saved < store.MaxDomainEvents+store.MaxDomainEvents/10 {
		save()
	}
	if _, total, err := s.Events(ctx, p.ID, d.ID, store.Page{Limit: 1}); err != nil || total != saved {
		t.Fatalf("after %d events, a tenth past the bound: %d kept, %v; want all", saved, total, err)
	}
	save()
	got, total, err := s.Events(ctx, p.ID, d.ID, store.Page{Limit: store.MaxDomainEvents + 1})
	if err != nil || total != store.MaxDomainEvents || len(got) != store.MaxDomainEvents {
		t.Fatalf("after %d events: %d kept (%d listed), %v; want the newest %d", saved, total, len(got), err, store.MaxDomainEvents)
	}
	if first, last := got[0].ID, got[len(got)-1].ID; first != fmt.Sprintf("evt_%05d", saved) || last != fmt.Sprintf("evt_%05d", saved-store.MaxDomainEvents+1) {
		t.Errorf("kept %s back to %s; want evt_%05d back to evt_%05d", first, last, saved, saved-store.MaxDomainEvents+1)
	}
	if got, total, err := s.Events(ctx, p.ID, other.ID, store.Page{}); err != nil || total != 1 || got[0].ID != otherEvent.ID {
		t.Errorf("the other domain's events: %d, %v", total, err)
	}
}

// testDeliveryCap checks that a webhook keeps its newest
// store.MaxWebhookDeliveries deliveries and every pending one: a delivery that
// ends deletes the ended ones older than those.
func testDeliveryCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	hook := store.Webhook{ID: "wh_all", ProjectID: p.ID, URL: "https://a.example/h", SealedSecret: []byte{1}, CreatedAt: at(0)}
	if err := s.CreateWebhook(ctx, hook, 0); err != nil {
		t.Fatal(err)
	}
	d := sampleDomain(p.ID, newID(t), "example.com", at(0))
	createDomain(t, s, d)
	const n, pending = store.MaxWebhookDeliveries + 10, 3
	var events []store.Event
	for i := range n {
		events = append(events, store.Event{ID: fmt.Sprintf("evt_%05d", i), ProjectID: p.ID, DomainID: d.ID,
			Type: domain.EventRecordChanged, Payload: []byte(`{}`), CreatedAt: at(time.Minute)})
	}
	if err := s.SaveCheck(ctx, clone(d), events); err != nil {
		t.Fatal(err)
	}
	now := at(2 * time.Minute)
	claimed, err := s.ClaimDeliveries(ctx, now, time.Hour, 2*n, 2*n)
	if err != nil || len(claimed) != n {
		t.Fatalf("claimed %d of %d deliveries, %v", len(claimed), n, err)
	}
	// The oldest stay pending; every other one is delivered, oldest first.
	for _, dl := range claimed[pending:] {
		if err := s.RecordAttempt(ctx, store.Attempt{DeliveryID: dl.ID, At: now, StatusCode: 200},
			store.DeliveryState{Status: store.DeliveryDelivered}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	got, total, err := s.Deliveries(ctx, p.ID, hook.ID, store.Page{Limit: 2 * n})
	// The newest MaxWebhookDeliveries reach back to claimed[n-Max]; the ended
	// ones older than that are gone, the pending ones not.
	want := store.MaxWebhookDeliveries + pending
	if err != nil || total != want || len(got) != want {
		t.Fatalf("Deliveries = %d (total %d), %v; want %d: the newest %d and the %d pending", len(got), total, err, want, store.MaxWebhookDeliveries, pending)
	}
	if oldestKept := got[store.MaxWebhookDeliveries-1]; oldestKept.ID != claimed[n-store.MaxWebhookDeliveries].ID || oldestKept.Status != store.DeliveryDelivered {
		t.Errorf("the oldest of the newest kept is %s (%s), want %s", oldestKept.ID, oldestKept.Status, claimed[n-store.MaxWebhookDeliveries].ID)
	}
	for i, dl := range got[store.MaxWebhookDeliveries:] {
		if w := claimed[pending-1-i]; dl.ID != w.ID || dl.Status != store.DeliveryPending {
			t.Errorf("kept %s (%s) past the newest, want the pending %s", dl.ID, dl.Status, w.ID)
		}
	}
}

// testManyEvents saves more events at once than one statement inserts: every
// one is stored, in the order given, with its payload and one delivery to each
// webhook that wants it.
func testManyEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	all := store.Webhook{ID: "wh_all", ProjectID: p.ID, URL: "https://a.example/h", SealedSecret: []byte{1}, CreatedAt: at(0)}
	picky := store.Webhook{ID: "wh_picky", ProjectID: p.ID, URL: "https://b.example/h", Events: []string{string(domain.EventFailed)}, SealedSecret: []byte{2}, CreatedAt: at(time.Second)}
	for _, w := range []store.Webhook{all, picky} {
		if err := s.CreateWebhook(ctx, w, 0); err != nil {
			t.Fatal(err)
		}
	}
	d := sampleDomain(p.ID, newID(t), "example.com", at(0))
	createDomain(t, s, d)
	const n = 41
	var events []store.Event
	wantDeliveries := 0
	for i := range n {
		typ := domain.EventVerified
		if i%3 == 0 {
			typ = domain.EventFailed
			wantDeliveries++ // and one to wh_all below
		}
		wantDeliveries++
		events = append(events, store.Event{ID: fmt.Sprintf("evt_%02d", n-i), ProjectID: p.ID, DomainID: d.ID, Type: typ,
			Payload: []byte(fmt.Sprintf(`{"i":%d}`, i)), CreatedAt: at(time.Minute)})
	}
	if err := s.SaveCheck(ctx, clone(d), events); err != nil {
		t.Fatal(err)
	}
	got, total, err := s.Events(ctx, p.ID, d.ID, store.Page{})
	if err != nil || total != n || len(got) != n {
		t.Fatalf("Events = %d of %d, %v; want %d", len(got), total, err, n)
	}
	for i, e := range got {
		// Newest first: the last saved comes first.
		want := events[n-1-i]
		if e.ID != want.ID || string(e.Payload) != string(want.Payload) || e.Type != want.Type {
			t.Fatalf("event %d = %s %s %s, want %s %s %s", i, e.ID, e.Type, e.Payload, want.ID, want.Type, want.Payload)
		}
	}
	claimed, err := s.ClaimDeliveries(ctx, at(2*time.Minute), time.Minute, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, dl := range claimed {
		key := dl.WebhookID + " " + dl.EventID
		if seen[key] {
			t.Errorf("two deliveries of %s", key)
		}
		seen[key] = true
		if dl.WebhookID == picky.ID && dl.EventType != domain.EventFailed {
			t.Errorf("wh_picky got a %s", dl.EventType)
		}
	}
	if len(claimed) != wantDeliveries {
		t.Errorf("%d deliveries, want %d", len(claimed), wantDeliveries)
	}
}

// testAcquireChecks checks that AcquireChecks takes, in one call, the leases of
// the domains that are free, whose lease ended, or that owner holds already, and
// not those another owner holds or that do not exist.
func testAcquireChecks(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	now := at(time.Hour)
	var ids []string
	for i := range 6 {
		d := sampleDomain(p.ID, newID(t), fmt.Sprintf("d%d.example", i), at(0))
		createDomain(t, s, d)
		ids = append(ids, d.ID)
	}
	take := func(id, owner string, at time.Time) {
		t.Helper()
		if ok, err := s.AcquireCheck(ctx, id, owner, at, time.Minute); err != nil || !ok {
			t.Fatalf("AcquireCheck(%s, %s) = %v, %v", id, owner, ok, err)
		}
	}
	take(ids[1], "b", now)                     // held by another: not taken
	take(ids[2], "a", now)                     // held by a already: kept
	take(ids[3], "b", now.Add(-2*time.Minute)) // another's, ended: taken
	missing := "0123456789abcdef01234567"
	got, err := s.AcquireChecks(ctx, append(slices.Clone(ids), missing), "a", now.Add(time.Second), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{ids[0], ids[2], ids[3], ids[4], ids[5]}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("AcquireChecks took %v, want %v", got, want)
	}
	for i, id := range ids {
		d := getDomain(t, s, p.ID, id)
		until := msUTC(now.Add(time.Second + time.Minute))
		if i == 1 {
			until = msUTC(now.Add(time.Minute))
		}
		if !d.CheckingUntil.Equal(until) {
			t.Errorf("domain %d: lease until %v, want %v", i, d.CheckingUntil, until)
		}
	}
	// a holds them: b cannot take them, and a's release frees them.
	if ok, err := s.AcquireCheck(ctx, ids[0], "b", now.Add(2*time.Second), time.Minute); err != nil || ok {
		t.Errorf("b took a lease a holds: %v, %v", ok, err)
	}
	if got, err := s.AcquireChecks(ctx, nil, "a", now, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("AcquireChecks of none = %v, %v", got, err)
	}
}

// testDomainsByID checks that DomainsByID gives each domain asked for, of any
// project, once and whole (as Domain gives it), and leaves out ids of none.
func testDomainsByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	p, q := project(t, s, "acme"), project(t, s, "other")
	var want []*domain.Domain
	for i, proj := range []store.Project{p, p, p, q} {
		d := sampleDomain(proj.ID, newID(t), fmt.Sprintf("d%d.example", i), at(time.Duration(i)*time.Second))
		createDomain(t, s, d)
		want = append(want, d)
	}
	// A domain checked since, so that its records' states are not those it was
	// created with; and one not asked for.
	checked := getDomain(t, s, p.ID, want[1].ID)
	checked.Records[0].Verified = true
	checked.Records[0].Found = []string{"found"}
	checked.LastCheckedAt = at(time.Minute)
	if err := s.SaveCheck(ctx, checked, nil); err != nil {
		t.Fatal(err)
	}
	notAsked := sampleDomain(p.ID, newID(t), "not-asked.example", at(0))
	createDomain(t, s, notAsked)

	missing := "0123456789abcdef01234567"
	ids := []string{want[3].ID, missing, want[0].ID, want[1].ID, want[2].ID, want[0].ID}
	got, err := s.DomainsByID(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("DomainsByID gave %d domains, want %d", len(got), len(want))
	}
	byID := map[string]*domain.Domain{}
	for _, d := range got {
		if byID[d.ID] != nil {
			t.Errorf("DomainsByID gave %s twice", d.ID)
		}
		byID[d.ID] = d
	}
	for _, w := range want {
		d := byID[w.ID]
		if d == nil {
			t.Errorf("DomainsByID left out %s", w.ID)
			continue
		}
		checkDomain(t, d, getDomain(t, s, w.ProjectID, w.ID))
	}
	if d := byID[want[1].ID]; d != nil && len(d.Records) > 0 && (!d.Records[0].Verified || !slices.Equal(d.Records[0].Found, []string{"found"})) {
		t.Errorf("DomainsByID gave the checked domain's record as %+v, not as saved", d.Records[0])
	}
	if got, err := s.DomainsByID(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("DomainsByID of none = %v, %v", got, err)
	}
	// More ids than one statement takes (a store may read them in parts):
	// the domains asked for first and last are both found.
	many := []string{want[0].ID}
	for i := range 1200 {
		many = append(many, fmt.Sprintf("%024x", i))
	}
	many = append(many, want[3].ID)
	got, err = s.DomainsByID(ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID == got[1].ID || !slices.ContainsFunc(got, func(d *domain.Domain) bool { return d.ID == want[3].ID }) {
		t.Errorf("DomainsByID of 1,202 ids gave %d domains, want the first and the last asked for", len(got))
	}
}

// testFinishCheckChanged checks that FinishCheck saves only over the version of
// the domain the check read: a check that read the domain before another write
// changed what it reads (receiving switched on, a rotation's record moves) is
// refused with ErrChanged, saves nothing and keeps its lease, while a check
// that read the latest version saves, and may save again.
func testFinishCheckChanged(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := project(t, s, "acme")
	d := signingDomain(t, s, p, "version.example")
	now := at(time.Hour)
	if ok, err := s.AcquireCheck(ctx, d.ID, "a", now, time.Hour); err != nil || !ok {
		t.Fatalf("AcquireCheck = %v, %v", ok, err)
	}

	read := getDomain(t, s, p.ID, d.ID)
	c := clone(read)
	c.LastCheckedAt = now
	if err := s.FinishCheck(ctx, c, nil, "a"); err != nil {
		t.Fatalf("FinishCheck over the version read: %v", err)
	}
	if got := getDomain(t, s, p.ID, d.ID); got.Version != c.Version || c.Version == read.Version {
		t.Fatalf("version after a save: stored %d, the saved domain's %d, read %d; want the stored one moved on and given back",
			got.Version, c.Version, read.Version)
	}
	// The version FinishCheck gave back is the stored one: a second save over
	// it goes through.
	c.LastCheckedAt = now.Add(time.Second)
	if err := s.FinishCheck(ctx, c, nil, "a"); err != nil {
		t.Fatalf("second FinishCheck: %v", err)
	}

	// Every write that changes what a check reads makes an earlier read stale.
	// The saves ended the lease: the refused saves below must keep this one.
	if ok, err := s.AcquireCheck(ctx, d.ID, "a", now.Add(2*time.Second), time.Hour); err != nil || !ok {
		t.Fatalf("AcquireCheck again = %v, %v", ok, err)
	}
	every := 180 * 24 * time.Hour
	if err := s.InitRotation(ctx, d.ID, t0, every); err != nil {
		t.Fatal(err)
	}
	rot, err := s.Rotation(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	start := rot
	start.State, start.StartedAt = domain.RotationGenerated, at(2*time.Hour)
	start.NextSelector, start.NextValue, start.NextSealed = "autosend2", "v=DKIM1; k=rsa; p=NEXT", []byte("sealed-next")
	next := &domain.Record{Key: domain.KeyDKIMNext, Type: "TXT", Name: "autosend2._domainkey." + d.Name, Value: start.NextValue,
		Purpose: domain.PurposeOf(domain.KeyDKIMNext, "TXT", ""), Status: domain.CheckUnchecked, CreatedAt: at(2 * time.Hour), UpdatedAt: at(2 * time.Hour)}
	vis := start
	vis.State, vis.VisibleAt = domain.RotationVisible, at(3*time.Hour)
	sw := vis
	sw.State, sw.SwitchedAt, sw.RetireAt = domain.RotationSwitched, at(3*time.Hour), at(4*time.Hour)
	sw.PrevSelector, sw.PrevValue, sw.CurrentSelector, sw.CurrentValue = rot.CurrentSelector, rot.CurrentValue, "autosend2", start.NextValue
	sw.NextSelector, sw.NextValue, sw.NextSealed = "", "", nil
	ret := sw
	ret.State = domain.RotationRetiring
	idle := ret
	idle.State, idle.RetiredAt, idle.PrevSelector, idle.PrevValue = domain.RotationIdle, at(5*time.Hour), "", ""
	revoked := &domain.Record{Value: domain.RevokedDKIMValue, Purpose: domain.PurposeOf(domain.KeyDKIMPrevious, "TXT", domain.RevokedDKIMValue), UpdatedAt: at(5 * time.Hour)}

	writes := []struct {
		name  string
		write func() error
	}{
		{"SaveInbound", func() error {
			in := getDomain(t, s, p.ID, d.ID)
			in.InboundEnabledAt = at(90 * time.Minute)
			return s.SaveInbound(ctx, in)
		}},
		{"StartRotation", func() error { return s.StartRotation(ctx, start, domain.RotationIdle, next, nil) }},
		{"SwitchRotation", func() error {
			if err := s.SaveRotation(ctx, vis, domain.RotationGenerated, nil); err != nil {
				return err
			}
			return s.SwitchRotation(ctx, sw, at(3*time.Hour), nil)
		}},
		{"RetireRotation", func() error {
			if err := s.SaveRotation(ctx, ret, domain.RotationSwitched, nil); err != nil {
				return err
			}
			return s.RetireRotation(ctx, idle, revoked, nil)
		}},
	}
	for i, w := range writes {
		before := getDomain(t, s, p.ID, d.ID)
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		after := getDomain(t, s, p.ID, d.ID)
		stale := clone(before)
		stale.Status, stale.LastCheckedAt = domain.StatusVerified, now.Add(time.Duration(i+3)*time.Second)
		if err := s.FinishCheck(ctx, stale, nil, "a"); !errors.Is(err, store.ErrChanged) {
			t.Fatalf("FinishCheck of a domain read before %s = %v, want ErrChanged", w.name, err)
		}
		got := getDomain(t, s, p.ID, d.ID)
		if got.Status != after.Status || !got.LastCheckedAt.Equal(after.LastCheckedAt) || got.Version != after.Version {
			t.Fatalf("a refused save after %s changed the domain: status %s, last checked %v, version %d; want %s, %v, %d",
				w.name, got.Status, got.LastCheckedAt, got.Version, after.Status, after.LastCheckedAt, after.Version)
		}
		if got.CheckingUntil.IsZero() {
			t.Fatalf("a refused save after %s ended the check's lease", w.name)
		}
	}

	// SaveInbound too saves only over the version it read, and gives back the
	// stored one.
	in := getDomain(t, s, p.ID, d.ID)
	if err := s.FinishCheck(ctx, clone(in), nil, "a"); err != nil {
		t.Fatal(err)
	}
	in.DisableInbound()
	if err := s.SaveInbound(ctx, in); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("SaveInbound of a domain read before a check's save = %v, want ErrChanged", err)
	}
	if got := getDomain(t, s, p.ID, d.ID); !got.Receiving() {
		t.Fatal("a refused SaveInbound switched receiving off")
	}
	in = getDomain(t, s, p.ID, d.ID)
	in.DisableInbound()
	if err := s.SaveInbound(ctx, in); err != nil {
		t.Fatalf("SaveInbound over the version read: %v", err)
	}
	got := getDomain(t, s, p.ID, d.ID)
	if got.Receiving() || got.Version != in.Version {
		t.Fatalf("after SaveInbound: receiving %v, version %d (given back %d); want off and the same", got.Receiving(), got.Version, in.Version)
	}
	if r := got.Record(domain.KeyDKIM); r == nil || !r.Verified || r.Status != domain.CheckVerified {
		t.Fatalf("dkim record after SaveInbound: %+v; want what its checks found kept", r)
	}

	// A save of a deleted domain is ErrNotFound, whatever the version.
	gone := getDomain(t, s, p.ID, d.ID)
	if err := s.DeleteDomain(ctx, p.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishCheck(ctx, gone, nil, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FinishCheck of a deleted domain = %v, want ErrNotFound", err)
	}
}
