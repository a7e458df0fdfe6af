package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/domaind/domaind/internal/dnscheck"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
)

// Checker looks records up in DNS; *dnscheck.Checker is the real one.
type Checker interface {
	Check(ctx context.Context, exps []dnscheck.Expectation) []domain.Observation
}

// Gate bounds key generation across the process; *domains.KeyGate is one.
type Gate interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Errors Start returns.
var (
	// ErrBusy means a rotation of the domain runs already.
	ErrBusy = errors.New("rotation: a rotation of this domain is already running")
	// ErrNotPublished means, in cname mode, that the current key has not been
	// seen in the operator's zone yet: there is nothing to rotate from.
	ErrNotPublished = errors.New("rotation: the current key is not published yet")
)

// Rotator takes domains through the rotation steps. It is safe for concurrent
// use, also by several replicas: every step is stored only if the rotation is
// still in the state the step started from.
type Rotator struct {
	Store   store.Store
	Checker Checker
	Sealer  *records.Sealer
	// Records names selectors and targets; its DKIMBits is the size of the next
	// key (--dkim-bits), so a rotation upgrades a 1024-bit key.
	Records records.Config
	Config  Config
	// Updater writes the operator's zone in cname mode; nil outside it.
	Updater *Updater
	// Keygen bounds key generation; nil means none.
	Keygen Gate
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Observer is told of every step's event once the step is saved, for
	// the metrics; nil means none.
	Observer Observer

	// Poll is how often a rotation waiting for DNS looks again (1m when
	// zero); RetryBase and RetryMax bound the back-off of failed updates
	// (30s and 1h when zero); RemindEvery spaces the waiting events of txt
	// mode (24h when zero).
	Poll, RetryBase, RetryMax, RemindEvery time.Duration
}

// Observer is told of the events of a rotation's steps (domain.dkim.*).
type Observer interface {
	RotationEvent(eventType string)
}

// saved tells the Observer of events, which a step saved unless err says
// otherwise, and returns err.
func (r *Rotator) saved(err error, events []store.Event) error {
	if err == nil && r.Observer != nil {
		for _, e := range events {
			r.Observer.RotationEvent(string(e.Type))
		}
	}
	return err
}

func (r *Rotator) now() time.Time {
	if r.Now == nil {
		return domain.NowMillis(time.Now())
	}
	return domain.NowMillis(r.Now())
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Backoff is how long after the attempt-th consecutive failure the step is
// tried again: RetryBase doubled per failure, at most RetryMax.
func (r *Rotator) Backoff(attempt int) time.Duration {
	base, limit := orDefault(r.RetryBase, 30*time.Second), orDefault(r.RetryMax, time.Hour)
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// dueAt is when an idle rotation whose key signs since since starts the next
// one; zero when rotations run only on request.
func (r *Rotator) dueAt(since time.Time) time.Time {
	if r.Config.RotateEvery <= 0 {
		return time.Time{}
	}
	return since.Add(r.Config.RotateEvery)
}

// NewRotation is the rotation row of a domain just added with gen.
func (r *Rotator) NewRotation(d *domain.Domain, gen records.Generated) store.Rotation {
	rot := store.Rotation{
		DomainID: d.ID, ProjectID: d.ProjectID, Domain: d.Name, Mode: domain.DKIMModeTXT, State: domain.RotationIdle,
		CurrentSelector: gen.DKIMSelector, CurrentValue: gen.DKIMValue, CurrentSince: d.CreatedAt,
		StepAt: r.dueAt(d.CreatedAt),
	}
	if r.Records.DKIMZone != "" {
		// The worker publishes the key in the operator's zone at once.
		rot.Mode, rot.StepAt = domain.DKIMModeCNAME, d.CreatedAt
	}
	return rot
}

// Start starts a rotation of the domain now, for reason ("requested" by an
// operator or a customer, "scheduled" by the worker): it generates the next
// key at the idle selector and records it. The worker takes the next steps.
func (r *Rotator) Start(ctx context.Context, id, reason string) (store.Rotation, error) {
	rot, err := r.Store.Rotation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// A domain older than rotations: its row is made first, scheduled as
		// the worker's walk would schedule it.
		if err := r.Store.InitRotation(ctx, id, r.now(), r.Config.RotateEvery); err != nil {
			return rot, err
		}
		rot, err = r.Store.Rotation(ctx, id)
	}
	if err != nil {
		return rot, err
	}
	if rot.State != domain.RotationIdle {
		return rot, ErrBusy
	}
	if rot.Mode == domain.DKIMModeCNAME && rot.CurrentVisibleAt.IsZero() {
		return rot, ErrNotPublished
	}
	return r.start(ctx, rot, reason)
}

func (r *Rotator) start(ctx context.Context, rot store.Rotation, reason string) (store.Rotation, error) {
	// The next key is sealed with this process's master key; if that key does
	// not open the current one (an operator's command given another), the
	// switch would install a key no signer can open.
	cur, err := r.Store.SealedDKIMKey(ctx, rot.DomainID)
	if err != nil {
		return rot, err
	}
	der, err := r.Sealer.Open(cur, rot.DomainID)
	if err != nil {
		return rot, err
	}
	clear(der)
	if r.Keygen != nil {
		release, err := r.Keygen.Acquire(ctx)
		if err != nil {
			return rot, err
		}
		defer release()
	}
	pkcs8, value, err := records.NewDKIMKey(r.Records.DKIMBits)
	if err != nil {
		return rot, err
	}
	// Kept in the same short form as the keys domains are added with.
	priv, err := records.StoredKey(pkcs8)
	clear(pkcs8)
	if err != nil {
		return rot, err
	}
	sealed, err := r.Sealer.Seal(priv, rot.DomainID)
	clear(priv)
	if err != nil {
		return rot, err
	}
	now := r.now()
	from := rot.State
	rot.State, rot.Reason, rot.StartedAt = domain.RotationGenerated, reason, now
	rot.NextSelector, rot.NextValue, rot.NextSealed = r.Records.OtherSelector(rot.CurrentSelector), value, sealed
	rot.PublishedAt, rot.VisibleAt, rot.SwitchedAt, rot.RetireAt, rot.RemindedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	rot.Attempts, rot.LastError, rot.StepAt = 0, "", now
	var next *domain.Record
	if rot.Mode == domain.DKIMModeTXT {
		next = &domain.Record{
			Key: domain.KeyDKIMNext, Type: "TXT", Name: records.DKIMName(rot.NextSelector, rot.Domain), Value: value,
			Purpose: domain.PurposeOf(domain.KeyDKIMNext, "TXT", value),
			Status:  domain.CheckUnchecked, CreatedAt: now, UpdatedAt: now,
		}
	}
	ev, err := r.event(rot, domain.EventDKIMRotationStarted, now)
	if err != nil {
		return rot, err
	}
	if err := r.saved(r.Store.StartRotation(ctx, rot, from, next, ev), ev); err != nil {
		return rot, err
	}
	return rot, nil
}

// Step takes the domain's rotation through every step that can be taken now,
// and records when to look again. A step that must wait (for DNS, for the
// retire time, after a failed update) ends it without error.
func (r *Rotator) Step(ctx context.Context, id string) error {
	// Each pass records one step; there are five, so more passes than that
	// mean a bug, not progress.
	for range 8 {
		rot, err := r.Store.Rotation(ctx, id)
		if err != nil {
			return err
		}
		more, err := r.step(ctx, rot)
		if errors.Is(err, store.ErrStale) {
			continue // another replica took the step; look at where it stands
		}
		if err != nil || !more {
			return err
		}
	}
	return fmt.Errorf("rotation: %s: too many steps at once", id)
}

// step takes one step of rot and reports whether another may follow at once.
func (r *Rotator) step(ctx context.Context, rot store.Rotation) (bool, error) {
	now := r.now()
	switch rot.State {
	case domain.RotationIdle:
		return r.idle(ctx, rot, now)
	case domain.RotationGenerated:
		return r.generated(ctx, rot, now)
	case domain.RotationVisible:
		return r.switchKeys(ctx, rot, now)
	case domain.RotationSwitched:
		if now.Before(rot.RetireAt) {
			rot.StepAt = rot.RetireAt
			return false, r.Store.SaveRotation(ctx, rot, rot.State, nil)
		}
		rot.State = domain.RotationRetiring
		return true, r.Store.SaveRotation(ctx, rot, domain.RotationSwitched, nil)
	case domain.RotationRetiring:
		return r.retire(ctx, rot, now)
	}
	return false, fmt.Errorf("rotation: %s: unknown state %q", rot.DomainID, rot.State)
}

func (r *Rotator) idle(ctx context.Context, rot store.Rotation, now time.Time) (bool, error) {
	if rot.Mode == domain.DKIMModeCNAME && rot.CurrentVisibleAt.IsZero() {
		// A cname-mode domain's first key: publish it and wait until every
		// server of the operator's zone has it; it signs only then.
		if err := r.publish(ctx, rot, rot.CurrentSelector, rot.CurrentValue); err != nil {
			return false, r.failed(ctx, rot, now, err)
		}
		if !r.visible(ctx, rot.Domain, r.Records.DKIMTarget(rot.CurrentSelector, rot.Domain), rot.CurrentValue) {
			rot.Attempts, rot.LastError, rot.StepAt = 0, "", now.Add(orDefault(r.Poll, time.Minute))
			return false, r.Store.SaveRotation(ctx, rot, rot.State, nil)
		}
		rot.CurrentVisibleAt, rot.Attempts, rot.LastError = now, 0, ""
		rot.StepAt = r.dueAt(rot.CurrentSince)
		return true, r.Store.SaveRotation(ctx, rot, rot.State, nil)
	}
	due := r.dueAt(rot.CurrentSince)
	if due.IsZero() || now.Before(due) {
		rot.StepAt = due
		return false, r.Store.SaveRotation(ctx, rot, rot.State, nil)
	}
	// A key that never signed needs no rotation: look again a period later.
	d, err := r.Store.Domain(ctx, rot.ProjectID, rot.DomainID)
	if err != nil {
		return false, err
	}
	if rec := d.Record(domain.KeyDKIM); rec == nil || !rec.Verified {
		rot.StepAt = now.Add(r.Config.RotateEvery)
		return false, r.Store.SaveRotation(ctx, rot, rot.State, nil)
	}
	_, err = r.start(ctx, rot, "scheduled")
	return err == nil, err
}

func (r *Rotator) generated(ctx context.Context, rot store.Rotation, now time.Time) (bool, error) {
	name := records.DKIMName(rot.NextSelector, rot.Domain)
	if rot.Mode == domain.DKIMModeCNAME {
		if rot.PublishedAt.IsZero() {
			if err := r.publish(ctx, rot, rot.NextSelector, rot.NextValue); err != nil {
				return false, r.failed(ctx, rot, now, err)
			}
			rot.PublishedAt, rot.Attempts, rot.LastError = now, 0, ""
			ev, err := r.event(rot, domain.EventDKIMRotationPublished, now)
			if err != nil {
				return false, err
			}
			return true, r.saved(r.Store.SaveRotation(ctx, rot, rot.State, ev), ev)
		}
		target := r.Records.DKIMTarget(rot.NextSelector, rot.Domain)
		// Every server of the operator's zone has the key, and the customer's
		// CNAME at the next selector leads to it: only then can receivers
		// find it. A customer who never published the second CNAME is
		// reminded of it.
		if !r.visible(ctx, rot.Domain, target, rot.NextValue) {
			return false, r.wait(ctx, rot, now, false)
		}
		if !r.resolves(ctx, rot.Domain, name, rot.NextValue) {
			return false, r.wait(ctx, rot, now, true)
		}
	} else if !r.visible(ctx, rot.Domain, name, rot.NextValue) {
		return false, r.wait(ctx, rot, now, true)
	}
	// StepAt stays the claim's lease: this worker switches at once, and if it
	// dies first, another resumes at visible when the lease ends.
	rot.State, rot.VisibleAt = domain.RotationVisible, now
	ev, err := r.event(rot, domain.EventDKIMRotationVisible, now)
	if err != nil {
		return false, err
	}
	return true, r.saved(r.Store.SaveRotation(ctx, rot, domain.RotationGenerated, ev), ev)
}

// wait records that the next key is not visible yet, with a reminder event
// in txt mode once each RemindEvery.
func (r *Rotator) wait(ctx context.Context, rot store.Rotation, now time.Time, remind bool) error {
	rot.StepAt = now.Add(orDefault(r.Poll, time.Minute))
	var ev []store.Event
	if remind && now.Sub(rot.RemindedAt) >= orDefault(r.RemindEvery, 24*time.Hour) {
		rot.RemindedAt = now
		var err error
		if ev, err = r.event(rot, domain.EventDKIMRotationWaiting, now); err != nil {
			return err
		}
	}
	return r.saved(r.Store.SaveRotation(ctx, rot, rot.State, ev), ev)
}

func (r *Rotator) switchKeys(ctx context.Context, rot store.Rotation, now time.Time) (bool, error) {
	rot.PrevSelector, rot.PrevValue = rot.CurrentSelector, rot.CurrentValue
	rot.CurrentSelector, rot.CurrentValue, rot.CurrentSince, rot.CurrentVisibleAt = rot.NextSelector, rot.NextValue, now, rot.VisibleAt
	rot.NextSelector, rot.NextValue, rot.NextSealed = "", "", nil
	rot.State, rot.SwitchedAt, rot.RetireAt = domain.RotationSwitched, now, now.Add(r.Config.RetireAfter)
	rot.StepAt = rot.RetireAt
	ev, err := r.event(rot, domain.EventDKIMRotationSwitched, now)
	if err != nil {
		return false, err
	}
	return true, r.saved(r.Store.SwitchRotation(ctx, rot, now, ev), ev)
}

func (r *Rotator) retire(ctx context.Context, rot store.Rotation, now time.Time) (bool, error) {
	var revoked *domain.Record
	if rot.Mode == domain.DKIMModeCNAME {
		if r.Updater == nil {
			return false, r.failed(ctx, rot, now, ErrNoUpdater)
		}
		if err := r.Updater.Delete(ctx, r.Records.DKIMTarget(rot.PrevSelector, rot.Domain)); err != nil {
			return false, r.failed(ctx, rot, now, err)
		}
	} else {
		// RFC 6376 §3.6.1: an empty p= means the key has been revoked.
		revoked = &domain.Record{Value: domain.RevokedDKIMValue, UpdatedAt: now,
			Purpose: domain.PurposeOf(domain.KeyDKIMPrevious, "TXT", domain.RevokedDKIMValue)}
	}
	retired := rot
	rot.State, rot.RetiredAt, rot.Attempts, rot.LastError = domain.RotationIdle, now, 0, ""
	rot.PrevSelector, rot.PrevValue = "", ""
	rot.StepAt = r.dueAt(rot.CurrentSince)
	ev, err := r.event(retired, domain.EventDKIMRotationRetired, now)
	if err != nil {
		return false, err
	}
	return false, r.saved(r.Store.RetireRotation(ctx, rot, revoked, ev), ev)
}

// Unpublish removes, in cname mode, every key record domaind published for
// the rotation's domain from the operator's zone: for a deleted domain.
func (r *Rotator) Unpublish(ctx context.Context, rot store.Rotation) error {
	if rot.Mode != domain.DKIMModeCNAME {
		return nil
	}
	if r.Updater == nil {
		return ErrNoUpdater
	}
	var errs []error
	for _, sel := range []string{rot.CurrentSelector, rot.NextSelector, rot.PrevSelector} {
		if sel != "" {
			errs = append(errs, r.Updater.Delete(ctx, r.Records.DKIMTarget(sel, rot.Domain)))
		}
	}
	return errors.Join(errs...)
}

// publish writes the key of selector sel (the current or the next one) to
// the operator's zone.
func (r *Rotator) publish(ctx context.Context, rot store.Rotation, sel, value string) error {
	if r.Updater == nil {
		return ErrNoUpdater
	}
	return r.Updater.Replace(ctx, r.Records.DKIMTarget(sel, rot.Domain), value)
}

// failed records a failed DNS update: the step stays where it is and is tried
// again after the back-off, with an event each time.
func (r *Rotator) failed(ctx context.Context, rot store.Rotation, now time.Time, cause error) error {
	rot.Attempts++
	rot.LastError = domain.TruncateBytes(cause.Error(), 300)
	rot.StepAt = now.Add(r.Backoff(rot.Attempts))
	if r.Log != nil {
		r.Log.Warn("dkim rotation: dns update failed", "domain", rot.Domain, "state", rot.State, "attempt", rot.Attempts, "err", cause)
	}
	ev, err := r.event(rot, domain.EventDKIMUpdateFailed, now)
	if err != nil {
		return err
	}
	return r.saved(r.Store.SaveRotation(ctx, rot, rot.State, ev), ev)
}

// visible reports whether every authoritative server of the zone that holds
// name answers with the DKIM key value, and at least one was asked: a key
// some server lacks is one some receivers cannot find.
func (r *Rotator) visible(ctx context.Context, dom, name, value string) bool {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	obs := r.Checker.Check(ctx, []dnscheck.Expectation{{Key: domain.KeyDKIM, Domain: dom, Name: name, Type: "TXT", Value: value}})
	if len(obs) != 1 {
		return false
	}
	seen := 0
	for _, s := range obs[0].Propagation {
		if s.Role != domain.RoleAuthoritative {
			continue
		}
		if s.Status != domain.CheckVerified {
			return false
		}
		seen++
	}
	return seen > 0
}

// resolves reports whether looking name up (through the customer's CNAME)
// finds the key value.
func (r *Rotator) resolves(ctx context.Context, dom, name, value string) bool {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	obs := r.Checker.Check(ctx, []dnscheck.Expectation{{Key: domain.KeyDKIM, Domain: dom, Name: name, Type: "TXT", Value: value}})
	return len(obs) == 1 && obs[0].Status == domain.CheckVerified
}

// checkTimeout bounds one look at DNS, however slow a tenant's servers are;
// a look that runs out is "not visible yet", which only delays a switch.
const checkTimeout = 30 * time.Second

// eventData is the data of a rotation event.
type eventData struct {
	EventID          string `json:"eventId"`
	DomainID         string `json:"domainId"`
	Domain           string `json:"domain"`
	Mode             string `json:"mode"`
	State            string `json:"state"`
	Selector         string `json:"selector"`
	NextSelector     string `json:"nextSelector,omitempty"`
	PreviousSelector string `json:"previousSelector,omitempty"`
	Reason           string `json:"reason,omitempty"`
	RetireAt         string `json:"retireAt,omitempty"`
	Attempt          int    `json:"attempt,omitempty"`
	Error            string `json:"error,omitempty"`
	// Record is the record the customer must publish: in txt mode's started
	// and waiting events the next key, in cname mode's waiting event the
	// second CNAME.
	Record *eventRecord `json:"record,omitempty"`
}

type eventRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return domain.Timestamp(t)
}

// event builds the one event of a step, with its payload fixed now.
func (r *Rotator) event(rot store.Rotation, typ domain.EventType, now time.Time) ([]store.Event, error) {
	id, err := store.NewTimeID("evt_", now)
	if err != nil {
		return nil, err
	}
	data := eventData{
		EventID: id, DomainID: rot.DomainID, Domain: rot.Domain, Mode: string(rot.Mode), State: string(rot.State),
		Selector: rot.CurrentSelector, NextSelector: rot.NextSelector, PreviousSelector: rot.PrevSelector,
		Reason: rot.Reason, RetireAt: stamp(rot.RetireAt),
	}
	if typ == domain.EventDKIMUpdateFailed {
		data.Attempt, data.Error = rot.Attempts, rot.LastError
	}
	switch {
	case rot.Mode == domain.DKIMModeTXT && (typ == domain.EventDKIMRotationStarted || typ == domain.EventDKIMRotationWaiting):
		data.Record = &eventRecord{Name: records.DKIMName(rot.NextSelector, rot.Domain), Type: "TXT", Value: rot.NextValue}
	case rot.Mode == domain.DKIMModeCNAME && typ == domain.EventDKIMRotationWaiting:
		data.Record = &eventRecord{Name: records.DKIMName(rot.NextSelector, rot.Domain), Type: "CNAME", Value: r.Records.DKIMTarget(rot.NextSelector, rot.Domain)}
	}
	body, err := json.Marshal(domain.Envelope[eventData]{Type: typ, Timestamp: stamp(now), Data: data})
	if err != nil {
		return nil, fmt.Errorf("rotation: event payload: %w", err)
	}
	return []store.Event{{ID: id, ProjectID: rot.ProjectID, DomainID: rot.DomainID, Type: typ, Payload: body, CreatedAt: now}}, nil
}
