package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/testenv"
)

// testSaveChecksTogetherWebhooks saves the checks of domains of three projects
// at once, as a group commit takes them (a store may read each project's
// webhooks once for a whole batch): each event gets one delivery to each
// webhook of its own project that wants it, and none to another project's.
func testSaveChecksTogetherWebhooks(t *testing.T, s store.Store) {
	ctx := t.Context()
	ps := []store.Project{project(t, s, "acme"), project(t, s, "globex"), project(t, s, "initech")}
	hooks := map[int64][]string{
		ps[0].ID: {hook(t, s, ps[0], "wh_acme_all").ID, hook(t, s, ps[0], "wh_acme_verified", store.EventVerified).ID},
		ps[1].ID: {hook(t, s, ps[1], "wh_globex_failed", store.EventFailed).ID},
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
		events := []store.Event{{ID: eventID(i), ProjectID: c.ProjectID, DomainID: c.ID, Type: store.EventVerified,
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
			if d.ProjectID == p.ID && len(hooks[p.ID]) == 2 { // acme's two hooks both want verified
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
			w := want
			if wh == "wh_globex_failed" {
				w = nil // it does not want verified events
			}
			if total != len(w) || !slices.Equal(ids, w) {
				t.Errorf("%s: deliveries of events %v (total %d), want %v", wh, ids, total, w)
			}
		}
	}
}
