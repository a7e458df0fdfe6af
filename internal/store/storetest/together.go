package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/testenv"
)

// testSaveChecksTogether saves the checks of many domains at once, as a worker's
// checks that finish together do, so that a store that commits them together
// (group commit) does so here: every save gets its own outcome. The saves of
// deleted domains fail with ErrNotFound and a save whose event names a domain
// that does not exist fails in the database, after its domain's row is
// written, yet all the other saves are stored whole, and each failed save
// leaves its domain as it was: not half-written.
func testSaveChecksTogether(t *testing.T, s store.Store) {
	ctx := t.Context()
	acme := project(t, s, "acme")
	const n = 48
	ds := sampleDomains(t, acme.ID, n, func(i int) string { return fmt.Sprintf("d%02d.example", i) })
	for _, d := range ds {
		createDomain(t, s, d)
	}
	deleted := func(i int) bool { return i%8 == 3 }
	for i, d := range ds {
		if deleted(i) {
			if err := s.DeleteDomain(ctx, acme.ID, d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Domain 5's event names no domain: its insert fails on the foreign key.
	const badEvent = 5
	eventID := func(i int) string { return fmt.Sprintf("evt_%024d", i) }
	eventDomain := func(i int) string {
		if i == badEvent {
			return "ffffffffffffffffffffffff"
		}
		return ds[i].ID
	}
	saved := make([]*domain.Domain, n)
	for i, d := range ds {
		c := clone(d)
		c.Status, c.OwnershipVerified, c.DKIMEnabled = domain.StatusVerified, true, true
		c.LastCheckedAt = at(time.Hour + time.Duration(i)*time.Millisecond)
		c.NextCheckAt = msUTC(at(24 * time.Hour))
		for j := range c.Records {
			c.Records[j].Status, c.Records[j].Found = domain.CheckVerified, []string{fmt.Sprintf("found %d", i)}
			c.Records[j].CheckedAt = c.LastCheckedAt
		}
		saved[i] = c
	}
	errs := make([]error, n)
	testenv.Race(n, func(i int) {
		events := []store.Event{{ID: eventID(i), ProjectID: acme.ID, DomainID: eventDomain(i), Type: domain.EventVerified,
			Payload: []byte(`{}`), CreatedAt: at(time.Hour)}}
		errs[i] = s.SaveCheck(ctx, clone(saved[i]), events)
	})

	for i, err := range errs {
		switch {
		case deleted(i):
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("save of deleted domain %d: %v, want ErrNotFound", i, err)
			}
			continue
		case i == badEvent:
			if err == nil {
				t.Errorf("save of domain %d with an event of no domain succeeded", i)
			}
			// Nothing of the failed save is stored: neither the domain's
			// new state nor its event.
			checkDomain(t, getDomain(t, s, acme.ID, ds[i].ID), ds[i])
			for _, id := range []string{ds[i].ID, eventDomain(i)} {
				if _, total, _ := s.Events(ctx, acme.ID, id, store.Page{}); total != 0 {
					t.Errorf("failed save of domain %d left %d events of %s", i, total, id)
				}
			}
			continue
		case err != nil:
			t.Errorf("save of domain %d: %v", i, err)
			continue
		}
		checkDomain(t, getDomain(t, s, acme.ID, ds[i].ID), saved[i])
		if got, total, err := s.Events(ctx, acme.ID, ds[i].ID, store.Page{}); err != nil || total != 1 || got[0].ID != eventID(i) {
			t.Errorf("events of domain %d: %+v, %d, %v", i, got, total, err)
		}
	}
}

// testSaveChecksTogetherWebhooks saves the checks of domains of three projects
// at once, as a group commit takes them (a store may read each project's
// webhooks once for a whole batch): each event gets one delivery to each
// webhook of its own project that wants it, and none to another project's.
func testSaveChecksTogetherWebhooks(t *testing.T, s store.Store) {
	ctx := t.Context()
	ps := []store.Project{project(t, s, "acme"), project(t, s, "globex"), project(t, s, "initech")}
	hooks := map[int64][]string{
		ps[0].ID: {hook(t, s, ps[0], "wh_acme_all").ID, hook(t, s, ps[0], "wh_acme_verified", domain.EventVerified).ID},
		ps[1].ID: {hook(t, s, ps[1], "wh_globex_failed", domain.EventFailed).ID},
		// initech has none.
	}
	const n = 36
	ds := make([]*domain.Domain, n)
	for i := range ds {
		ds[i] = sampleDomain(ps[i%3].ID, newID(t), fmt.Sprintf("w%02d.example", i), t0)
		createDomain(t, s, ds[i])
	}
	eventID := func(i int) string { return fmt.Sprintf("evt_%024d", i) }
	errs := make([]error, n)
	testenv.Race(n, func(i int) {
		c := clone(ds[i])
		c.Status, c.LastCheckedAt = domain.StatusVerified, at(time.Hour)
		events := []store.Event{{ID: eventID(i), ProjectID: c.ProjectID, DomainID: c.ID, Type: domain.EventVerified,
			Payload: []byte(`{}`), CreatedAt: at(time.Hour)}}
		errs[i] = s.SaveCheck(ctx, c, events)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("save of domain %d: %v", i, err)
		}
	}
	for _, p := range ps {
		var want []string
		for i, d := range ds {
			// acme's two webhooks both want verified events; globex's wants
			// only failed ones.
			if d.ProjectID == p.ID && p.ID == ps[0].ID {
				want = append(want, eventID(i))
			}
		}
		for _, wh := range hooks[p.ID] {
			got, total, err := s.Deliveries(ctx, p.ID, wh, store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, dl := range got {
				if dl.ProjectID != p.ID || dl.WebhookID != wh {
					t.Errorf("%s: delivery %+v of another project or webhook", wh, dl)
				}
				ids = append(ids, dl.EventID)
			}
			slices.Sort(ids)
			if total != len(want) || !slices.Equal(ids, want) {
				t.Errorf("%s: deliveries of events %v (total %d), want %v", wh, ids, total, want)
			}
		}
	}
}
