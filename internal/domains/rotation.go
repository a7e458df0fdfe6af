package domains

import (
	"context"
	"errors"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/store"
)

// errNoRotation answers for a service built without a Rotator.
var errNoRotation = errors.New("domains: dkim rotation is not configured")

// DKIMRotation returns the project's domain's DKIM rotation.
func (s *Service) DKIMRotation(ctx context.Context, projectID int64, id string) (domain.Rotation, error) {
	d, err := s.Get(ctx, projectID, id)
	if err != nil {
		return domain.Rotation{}, err
	}
	if s.Rotator == nil {
		return domain.Rotation{}, errNoRotation
	}
	rot, err := s.Store.Rotation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// A domain older than rotations, not yet given its row by the
		// worker: it is idle, with the key it was added with.
		rot, err = store.Rotation{Mode: domain.DKIMModeTXT, State: domain.RotationIdle, CurrentSince: d.CreatedAt}, nil
	}
	if err != nil {
		return domain.Rotation{}, err
	}
	return rotationView(rot), nil
}

// RotateDKIM starts a rotation of the project's domain's DKIM key now, for a
// suspected compromise or to take a new --dkim-bits: fault.Conflict while a
// rotation runs, or (cname mode) before the current key is published.
func (s *Service) RotateDKIM(ctx context.Context, projectID int64, id string) (domain.Rotation, error) {
	if _, err := s.Get(ctx, projectID, id); err != nil {
		return domain.Rotation{}, err
	}
	if s.Rotator == nil {
		return domain.Rotation{}, errNoRotation
	}
	return s.rotate(ctx, id)
}

// NamedRotation is what RotateDKIMNamed did for one domain of the name: the
// rotation it started, or Err, a fault saying why it started none
// (fault.Conflict, or fault.NotFound for a domain deleted meanwhile).
type NamedRotation struct {
	ID        string
	ProjectID int64
	Rotation  domain.Rotation
	Err       error
}

// RotateDKIMNamed starts a rotation of the DKIM key of every project's domain
// named name, for the operator (domaind dkim rotate), who knows a domain by its
// name rather than by a project's id. A domain whose rotation cannot start now
// (one runs, its first key is not published, it was deleted meanwhile) is
// reported in its NamedRotation and the others go on; any other error (a
// master key that does not open the keys) stops it, and what was done before
// is returned with the error. It answers fault.NotFound when no project has
// the domain.
func (s *Service) RotateDKIMNamed(ctx context.Context, name string) ([]NamedRotation, error) {
	if s.Rotator == nil {
		return nil, errNoRotation
	}
	ids, err := s.Store.DomainIDsByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fault.NotFoundf("domain", "No project has the domain "+name+".", nil)
	}
	out := make([]NamedRotation, 0, len(ids))
	for _, id := range ids {
		rot, err := s.rotate(ctx, id.ID)
		if code := fault.CodeOf(err); err != nil && code != fault.Conflict && code != fault.NotFound {
			return out, err
		}
		out = append(out, NamedRotation{ID: id.ID, ProjectID: id.ProjectID, Rotation: rot, Err: err})
	}
	return out, nil
}

func (s *Service) rotate(ctx context.Context, id string) (domain.Rotation, error) {
	rot, err := s.Rotator.Start(ctx, id, "requested")
	switch {
	case errors.Is(err, rotation.ErrBusy):
		return rotationView(rot), &fault.Error{Code: fault.Conflict, Subject: "dkim", Err: err,
			Message: "A DKIM key rotation of this domain is already running (state " + string(rot.State) + "); it must finish first."}
	case errors.Is(err, rotation.ErrNotPublished):
		return rotationView(rot), &fault.Error{Code: fault.Conflict, Subject: "dkim", Err: err,
			Message: "The domain's first DKIM key is not published yet; it can be rotated once it is."}
	case errors.Is(err, store.ErrStale):
		return rotationView(rot), &fault.Error{Code: fault.Conflict, Subject: "dkim", Err: err,
			Message: "A DKIM key rotation of this domain started meanwhile."}
	case err != nil:
		return domain.Rotation{}, notFound(err)
	}
	if s.Log != nil {
		s.Log.Info("dkim rotation started", "domain", rot.Domain, "id", id, "selector", rot.NextSelector)
	}
	return rotationView(rot), nil
}

// rotationView is a rotation row as front ends show it, and the one
// conversion between the two types a rotation has: store.Rotation, the row,
// holds the keys themselves (the next one sealed) for the Rotator;
// domain.Rotation, what the API and the CLI may show, holds none, so no front
// end is handed a key it must take care not to print.
func rotationView(r store.Rotation) domain.Rotation {
	return domain.Rotation{
		Mode: r.Mode, State: r.State, CurrentSelector: r.CurrentSelector, CurrentSince: r.CurrentSince,
		NextSelector: r.NextSelector, PreviousSelector: r.PrevSelector, Reason: r.Reason,
		StartedAt: r.StartedAt, PublishedAt: r.PublishedAt, VisibleAt: r.VisibleAt, SwitchedAt: r.SwitchedAt,
		RetireAt: r.RetireAt, RetiredAt: r.RetiredAt, Attempts: r.Attempts, LastError: r.LastError, NextStepAt: r.StepAt,
	}
}
