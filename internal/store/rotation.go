package store

import (
	"context"
	"errors"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// ErrStale means a rotation step found the rotation no longer in the state the
// step started from: another replica (or a rotate-now request) moved it first.
var ErrStale = errors.New("store: the rotation moved on meanwhile")

// Rotation is a domain's DKIM key rotation row (see domain.RotationState).
type Rotation struct {
	DomainID  string
	ProjectID int64
	Domain    string // the domain's name, read from the domain
	Mode      domain.DKIMMode
	State     domain.RotationState

	// The key that signs now: its selector, its DKIM key record value, since
	// when it signs, and (cname mode) when it was seen in the operator's zone.
	CurrentSelector  string
	CurrentValue     string
	CurrentSince     time.Time
	CurrentVisibleAt time.Time

	// The next key, while a rotation runs: sealed for DomainID like the current.
	NextSelector string
	NextValue    string
	NextSealed   []byte
	// The key signing stopped with, until it is retired.
	PrevSelector string
	PrevValue    string

	Reason      string // "scheduled" or "requested"
	StartedAt   time.Time
	PublishedAt time.Time
	VisibleAt   time.Time
	SwitchedAt  time.Time
	RetireAt    time.Time
	RetiredAt   time.Time
	RemindedAt  time.Time
	Attempts    int
	LastError   string
	// StepAt is when the worker next looks at the rotation; zero: never.
	StepAt time.Time
}

// Rotations keeps DKIM key rotations. Every write that changes the state
// names the state it starts from and fails with ErrStale when the row is no
// longer in it, so a step runs once however many workers try it; each stores
// its events (with their webhook deliveries) in the same transaction.
type Rotations interface {
	// CreateRotation stores a new domain's rotation row, unless it has one.
	CreateRotation(ctx context.Context, r Rotation) error
	// CreateDomainRotating does CreateDomain and CreateRotation in one
	// transaction: a cname-mode domain without its row would never have its
	// key published, and a domain is never stored without it.
	CreateDomainRotating(ctx context.Context, d *domain.Domain, sealedKey []byte, r Rotation) error
	// InitRotations looks at up to limit domains whose ids follow after, in
	// id order, and creates for those without one an idle txt-mode rotation
	// row from the domain's DKIM record (domains made before rotations
	// existed), next due every after the later of the record's creation and
	// now; every of 0 schedules none. It returns how many rows it created and
	// the last id it looked at, "" when none follows after: a caller walks
	// every domain once by passing that id back, whatever it finds.
	InitRotations(ctx context.Context, now time.Time, every time.Duration, after string, limit int) (n int, last string, err error)
	// InitRotation does what InitRotations does for the one domain.
	InitRotation(ctx context.Context, domainID string, now time.Time, every time.Duration) error
	// Rotation returns the domain's rotation row (any project).
	Rotation(ctx context.Context, domainID string) (Rotation, error)
	// ClaimRotations claims up to limit rotations whose StepAt is due at now by
	// moving StepAt to now+lease, and returns their domain ids.
	ClaimRotations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error)
	// SaveRotation stores r if the row is in state from.
	SaveRotation(ctx context.Context, r Rotation, from domain.RotationState, events []Event) error
	// StartRotation stores r (state generated, with the next key) if the row is
	// in state from; in txt mode it replaces the domain's dkim_next and
	// dkim_previous records with next.
	StartRotation(ctx context.Context, r Rotation, from domain.RotationState, next *domain.Record, events []Event) error
	// SwitchRotation makes the next key the one that signs, if the row is in
	// state visible: the domain's sealed key becomes r's next one, and its
	// records move (txt: dkim becomes dkim_previous and dkim_next becomes dkim,
	// verified at now; cname: dkim and dkim_2 swap), with r stored as given
	// (state switched) in one transaction.
	SwitchRotation(ctx context.Context, r Rotation, now time.Time, events []Event) error
	// RetireRotation stores r (state idle) if the row is in state retiring;
	// in txt mode the dkim_previous record becomes revoked, when given.
	RetireRotation(ctx context.Context, r Rotation, revoked *domain.Record, events []Event) error
	// DomainIDsByName returns the ids of the domains named name, in any project.
	DomainIDsByName(ctx context.Context, name string) ([]Due, error)
}
