// Package watched gives a store.Store that tells the process's read caches of
// every write to a domain, after the write: the one place every service's
// writes pass, so that no call site has to remember to invalidate.
package watched

import (
	"context"
	"sync"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// Invalidator is a cache of what is read of domains (readcache.Cache).
type Invalidator interface {
	// Invalidate forgets the domain id and any load of it that began before.
	Invalidate(id string)
	// InvalidateAll forgets every domain.
	InvalidateAll()
}

// Store is a store.Store whose writes to domains invalidate its watchers'
// entries once they return, whether they succeeded or not (a commit whose
// answer was lost may have happened).
type Store struct {
	store.Store

	mu       sync.RWMutex
	watchers []Invalidator
}

var _ store.Store = (*Store)(nil)

// New returns st, watched. When st is already watched, it is returned itself,
// so that every cache built on it (two Apps given one App's Store(), as tests
// build) hears of every write made through it. Two Apps given the same
// unwatched store each wrap it apart and do not hear each other's writes:
// share App.Store(), not the store under it.
func New(st store.Store) *Store {
	if w, ok := st.(*Store); ok {
		return w
	}
	return &Store{Store: st}
}

// Unwrap returns the store that is watched.
func (s *Store) Unwrap() store.Store { return s.Store }

// Watch adds inv to the caches told of writes.
func (s *Store) Watch(inv Invalidator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers = append(s.watchers, inv)
}

func (s *Store) invalidate(ids ...string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, w := range s.watchers {
		for _, id := range ids {
			w.Invalidate(id)
		}
	}
}

func (s *Store) invalidateAll() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, w := range s.watchers {
		w.InvalidateAll()
	}
}

// The writes of domains, each invalidating the domains it may have changed:
// every write that may change a row of domains or domain_records (what
// Store.Domain reads), or of the rotation beside them. InitRotations, which
// only adds missing rotation rows across every domain, is not among them.
// TestEveryMethodClassified keeps this list whole.

func (s *Store) CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error {
	defer s.invalidate(d.ID)
	return s.Store.CreateDomain(ctx, d, sealedKey)
}

func (s *Store) CreateDomainRotating(ctx context.Context, d *domain.Domain, sealedKey []byte, r store.Rotation) error {
	defer s.invalidate(d.ID)
	return s.Store.CreateDomainRotating(ctx, d, sealedKey, r)
}

func (s *Store) DeleteDomain(ctx context.Context, projectID int64, id string) error {
	defer s.invalidate(id)
	return s.Store.DeleteDomain(ctx, projectID, id)
}

func (s *Store) SaveCheck(ctx context.Context, d *domain.Domain, events []store.Event) error {
	defer s.invalidate(d.ID)
	return s.Store.SaveCheck(ctx, d, events)
}

func (s *Store) SaveInbound(ctx context.Context, d *domain.Domain) error {
	defer s.invalidate(d.ID)
	return s.Store.SaveInbound(ctx, d)
}

func (s *Store) ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]store.Due, error) {
	due, err := s.Store.ClaimChecks(ctx, now, lease, limit, perProject, running)
	if err != nil {
		// What was claimed, if anything was, is not known.
		s.invalidateAll()
		return due, err
	}
	for _, d := range due {
		s.invalidate(d.ID)
	}
	return due, nil
}

func (s *Store) AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	defer s.invalidate(id)
	return s.Store.AcquireCheck(ctx, id, owner, now, lease)
}

// AcquireChecks takes the leases of a whole claim; each domain it names may
// now show a check in progress.
func (s *Store) AcquireChecks(ctx context.Context, ids []string, owner string, now time.Time, lease time.Duration) ([]string, error) {
	defer s.invalidate(ids...)
	return s.Store.AcquireChecks(ctx, ids, owner, now, lease)
}

// FinishCheck saves a check and ends its lease in one write.
func (s *Store) FinishCheck(ctx context.Context, d *domain.Domain, events []store.Event, owner string) error {
	defer s.invalidate(d.ID)
	return s.Store.FinishCheck(ctx, d, events, owner)
}

func (s *Store) ReleaseCheck(ctx context.Context, id, owner string) error {
	defer s.invalidate(id)
	return s.Store.ReleaseCheck(ctx, id, owner)
}

func (s *Store) CreateRotation(ctx context.Context, r store.Rotation) error {
	defer s.invalidate(r.DomainID)
	return s.Store.CreateRotation(ctx, r)
}

func (s *Store) InitRotation(ctx context.Context, domainID string, now time.Time, every time.Duration) error {
	defer s.invalidate(domainID)
	return s.Store.InitRotation(ctx, domainID, now, every)
}

func (s *Store) ClaimRotations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	ids, err := s.Store.ClaimRotations(ctx, now, lease, limit)
	if err != nil {
		s.invalidateAll()
		return ids, err
	}
	s.invalidate(ids...)
	return ids, nil
}

func (s *Store) SaveRotation(ctx context.Context, r store.Rotation, from domain.RotationState, events []store.Event) error {
	defer s.invalidate(r.DomainID)
	return s.Store.SaveRotation(ctx, r, from, events)
}

func (s *Store) StartRotation(ctx context.Context, r store.Rotation, from domain.RotationState, next *domain.Record, events []store.Event) error {
	defer s.invalidate(r.DomainID)
	return s.Store.StartRotation(ctx, r, from, next, events)
}

func (s *Store) SwitchRotation(ctx context.Context, r store.Rotation, now time.Time, events []store.Event) error {
	defer s.invalidate(r.DomainID)
	return s.Store.SwitchRotation(ctx, r, now, events)
}

func (s *Store) RetireRotation(ctx context.Context, r store.Rotation, revoked *domain.Record, events []store.Event) error {
	defer s.invalidate(r.DomainID)
	return s.Store.RetireRotation(ctx, r, revoked, events)
}
