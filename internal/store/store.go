// Package store defines how domaind keeps projects, API keys and domains. The Store
// interface is implemented once, in package sqlstore, for the SQL databases that
// packages sqlite (the embedded default) and postgres (for several replicas) open;
// package storetest holds the conformance tests every implementation must pass.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// Errors every implementation returns, checked with errors.Is.
var (
	// ErrNotFound means no row matched: an unknown id, or one of another project.
	ErrNotFound = errors.New("store: not found")
	// ErrChanged means a save over the version of a domain it read found the
	// domain written since (see FinishCheck and SaveInbound).
	ErrChanged = errors.New("store: the domain changed since it was read")
	// ErrDomainExists means the project already has a domain of that name.
	ErrDomainExists = errors.New("store: domain already exists in this project")
	// ErrAmbiguous means a key prefix matched more than one API key.
	ErrAmbiguous = errors.New("store: prefix matches more than one key")
	// ErrTooManyWebhooks means the project already has as many webhooks as it
	// may.
	ErrTooManyWebhooks = errors.New("store: the project has the most webhooks allowed")
)

// Project is a tenant: it owns API keys and domains.
type Project struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// APIKey is the stored half of an API key: its hash and a short prefix that
// identifies it to operators. The key itself is never stored.
type APIKey struct {
	ID          int64
	ProjectID   int64
	ProjectName string
	Prefix      string
	Hash        [32]byte // SHA-256 of the whole key
	CreatedAt   time.Time
	RevokedAt   time.Time // zero while the key is valid
}

// Page selects part of a list. A Limit of 0 means no limit.
type Page struct {
	Limit  int
	Offset int
	// After, when set, starts the list just after this position instead of at
	// Offset: keyset pagination, which stays stable while domains are added and
	// costs the same on the thousandth page as on the first.
	After *Position
}

// Position is a place in a project's list of domains, which is ordered by
// creation time and then id.
type Position struct {
	CreatedAt time.Time
	ID        string
}

// Due is a domain claimed for an automatic check.
type Due struct {
	ID        string
	ProjectID int64
}

// MaxDomainEvents is how many of a domain's events are kept, the newest: once
// it holds more than a tenth more, the oldest are deleted, as many as were
// saved together (a store may keep each save's events together, and then
// keeps up to a save's events fewer). A domain's events
// are few (a check that changes nothing raises none), but a tenant whose name
// server answers differently on every query, asking for a verify every few
// seconds, could otherwise grow the events without bound. Webhook deliveries
// keep their own copy of the payload, so deleting an event does not stop its
// deliveries.
const MaxDomainEvents = 1000

// MaxWebhookDeliveries is how many of a webhook's ended deliveries (delivered,
// or failed for good) are kept, the newest, with their attempts; pending ones
// are all kept. A delivery that ends deletes the ended ones older than those.
// Without it a webhook kept every delivery until it was deleted.
const MaxWebhookDeliveries = 1000

// Event is something that happened to a domain, stored with it and delivered to
// webhooks. Payload is the exact JSON body webhooks receive, fixed when the event
// is stored so that every retry sends (and signs) the same bytes.
type Event struct {
	ID        string // "evt_" + 24 hex characters
	ProjectID int64
	DomainID  string
	Type      domain.EventType
	Payload   []byte
	CreatedAt time.Time
}

// Webhook is a project's endpoint for events.
type Webhook struct {
	ID        string // "wh_" + 24 hex characters
	ProjectID int64
	URL       string
	Events    []string // event types; empty means all
	// SealedSecret is the signing secret, sealed with the master key.
	SealedSecret []byte
	CreatedAt    time.Time

	// Failures counts the endpoint's consecutive failed attempts; a delivered
	// one resets it. Set by the store, ignored by CreateWebhook.
	Failures int
	// ParkedUntil is when claims may hand out the endpoint's deliveries again
	// after its failures; zero when it is not parked. Set by the store.
	ParkedUntil time.Time
}

// DeliveryState is where a delivery stands.
type DeliveryState struct {
	Status        string    // "pending", "delivered" or "failed"
	NextAttemptAt time.Time // when pending
}

// The delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID        string // "msg_" + 24 hex characters
	WebhookID string
	EventID   string
	EventType domain.EventType
	ProjectID int64
	DeliveryState
	Attempts  []Attempt
	CreatedAt time.Time

	// Filled in by ClaimDeliveries, for sending.
	URL          string
	SealedSecret []byte
	Payload      []byte
	// EndpointFailures is the webhook's Failures when the delivery was
	// claimed: how long to park the endpoint if this attempt fails too.
	EndpointFailures int
}

// Attempt is one try at delivering.
type Attempt struct {
	DeliveryID string
	At         time.Time
	StatusCode int    // 0 when no response came
	Error      string // empty on success
	Duration   time.Duration
}

// SigningKey is a domain whose DKIM record receivers can find, with what a signer
// needs: the name and selector of the signature and the sealed private key.
type SigningKey struct {
	DomainID  string
	ProjectID int64
	Domain    string // the signature's d=
	Selector  string // the signature's s=
	Sealed    []byte // the private key, sealed for DomainID
	CheckedAt time.Time
}

// Store keeps domaind's state. Every method that writes does so in one transaction:
// it either happens whole or not at all.
type Store interface {
	Sessions
	Inbound
	Rotations

	// EnsureProject returns the project named name, creating it if it is new.
	EnsureProject(ctx context.Context, name string, now time.Time) (Project, error)
	// CreateAPIKey stores a new key's hash for a project.
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// APIKeyByHash returns the key with the given hash, revoked or not.
	APIKeyByHash(ctx context.Context, hash [32]byte) (APIKey, error)
	// APIKeys lists every key, oldest first.
	APIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey revokes the one key whose prefix starts with prefix.
	RevokeAPIKey(ctx context.Context, prefix string, now time.Time) (APIKey, error)

	// CreateDomain stores a new domain with its records and its sealed DKIM
	// private key. It returns ErrDomainExists if the project has one of that name.
	CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error
	// Domain returns the project's domain with the given id.
	Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error)
	// DomainsByID returns the domains with the given ids, of any project, with
	// their records, in no particular order; ids of no domain are left out.
	DomainsByID(ctx context.Context, ids []string) ([]*domain.Domain, error)
	// Domains lists the project's domains, oldest first, and the total count.
	Domains(ctx context.Context, projectID int64, p Page) ([]*domain.Domain, int, error)
	// DeleteDomain removes the project's domain, its records and its key.
	DeleteDomain(ctx context.Context, projectID int64, id string) error
	// SaveCheck stores the state a check gave the domain and its records, its
	// schedule, and the events the check caused, with a pending delivery of each
	// event to every webhook of the project that wants it (the outbox), all in
	// one transaction.
	SaveCheck(ctx context.Context, d *domain.Domain, events []Event) error
	// FinishCheck is SaveCheck that also ends owner's lease on checking the
	// domain, as ReleaseCheck does, in the same write: a check's end costs the
	// database one write and not two. A lease that owner does not hold (any
	// more) is left as it is. Unlike SaveCheck, it saves only over the version
	// of the domain that d was read at (d.Version): if a write that counts the
	// version up (a check's save, SaveInbound, a rotation's start, switch or
	// retirement; not a lease or a claim) came since, nothing is saved and the
	// error is ErrChanged, so that the check is applied again to the domain as
	// it is now. On success d.Version is the stored one. (SaveCheck saves over
	// any version and leaves d.Version as it was: over a version other than
	// d's, what it found of each record still there is kept only where it
	// looked later than what is stored, such as a rotation's switch, and a
	// record that changed since d was read keeps its own.)
	FinishCheck(ctx context.Context, d *domain.Domain, events []Event, owner string) error
	// ClaimChecks claims up to limit domains (below 0: no bound) whose next
	// automatic check is due at now, the most overdue first (returned in no
	// particular order), by moving their due time to now+lease: a worker that
	// dies mid-check loses its claim when the lease runs out, and another worker
	// claims the domain again. When perProject is at least 1, it claims at most
	// perProject-running[p] domains of each project p, the project's most
	// overdue: running counts the checks the worker runs already, so one
	// project's backlog never takes more of a worker's slots than its share, and
	// never hides another project's due domains from the claim.
	ClaimChecks(ctx context.Context, now time.Time, lease time.Duration, limit, perProject int, running map[int64]int) ([]Due, error)
	// OldestDue returns the earliest due time of any domain, or zero if none is
	// scheduled; now minus it is the queue's lag.
	OldestDue(ctx context.Context) (time.Time, error)
	// Events lists the domain's events, newest first, and their total: at most
	// about MaxDomainEvents, the newest.
	Events(ctx context.Context, projectID int64, domainID string, p Page) ([]Event, int, error)

	// CreateWebhook stores a webhook endpoint of a project, unless the project
	// has max webhooks already (when max > 0): then it returns
	// ErrTooManyWebhooks. The count and the insert are one atomic step, so
	// concurrent calls, from any number of replicas, never exceed max.
	CreateWebhook(ctx context.Context, w Webhook, max int) error
	// Webhooks lists a project's webhooks, oldest first.
	Webhooks(ctx context.Context, projectID int64) ([]Webhook, error)
	// DeleteWebhook removes a project's webhook and its deliveries.
	DeleteWebhook(ctx context.Context, projectID int64, id string) error
	// ClaimDeliveries claims up to limit (below 0: no bound) pending deliveries
	// due at now by moving their due time to now+lease, so that a Deliverer that
	// dies mid-attempt loses its claims when the lease runs out. It claims
	// fairly across endpoints: it never lets a webhook have
	// more than perEndpoint deliveries in flight (claimed, with the lease not yet
	// run out, and no attempt recorded), counting those claimed before; it hands
	// out every webhook's most overdue delivery before any webhook's second; and
	// it skips webhooks that are parked at now. Concurrent claims, from any
	// number of replicas, never claim one delivery twice nor together exceed
	// perEndpoint for a webhook. A perEndpoint below 1 means 1.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit, perEndpoint int) ([]Delivery, error)
	// RecordAttempt stores one delivery attempt and the delivery's new state, and
	// what the attempt says of the endpoint, in one transaction. A delivered
	// attempt resets the webhook's Failures and unparks it. A failed one (the
	// new state is not delivered) adds one to Failures and parks the webhook
	// until parkedUntil, unless it is parked longer already; every pending
	// delivery of the webhook that is not in flight is then due no earlier than
	// the end of the parking, which is what lets claims skip a parked
	// endpoint's backlog through the due index alone. A zero parkedUntil parks
	// nothing. It returns ErrNotFound if the delivery is gone.
	RecordAttempt(ctx context.Context, a Attempt, next DeliveryState, parkedUntil time.Time) error
	// ExpireDeliveries marks failed, without an attempt, the pending deliveries
	// not in flight that were created giveUpAfter or longer before now and
	// whose webhook is parked at now: a parked endpoint's deliveries end when
	// the retry window does, as any others do, rather than when the parking
	// does. It returns how many it marked.
	ExpireDeliveries(ctx context.Context, now time.Time, giveUpAfter time.Duration) (int, error)
	// Deliveries lists a project's webhook's deliveries, newest first, with their
	// attempts, and their total.
	Deliveries(ctx context.Context, projectID int64, webhookID string, p Page) ([]Delivery, int, error)
	// AcquireCheck takes the lease on checking the domain for owner, until
	// now+lease, unless another owner holds one that has not ended. It reports
	// whether owner holds the lease: one check per domain at a time across
	// replicas.
	AcquireCheck(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error)
	// AcquireChecks is AcquireCheck of many domains in one write: it takes the
	// lease on checking each of ids that no other owner holds, and returns those
	// owner holds now, in no particular order.
	AcquireChecks(ctx context.Context, ids []string, owner string, now time.Time, lease time.Duration) ([]string, error)
	// ReleaseCheck ends owner's lease on checking the domain, if owner holds it.
	ReleaseCheck(ctx context.Context, id, owner string) error
	// SealedDKIMKey returns the domain's sealed DKIM private key.
	SealedDKIMKey(ctx context.Context, id string) ([]byte, error)
	// SigningKeys returns, across projects, the domains named in names (every
	// domain when names is nil) whose DKIM record verified at its last definite
	// check, ordered by name and then most recently checked first.
	SigningKeys(ctx context.Context, names []string) ([]SigningKey, error)

	// Close releases the store's connections.
	Close() error
}

// NewID returns prefix followed by 24 random lowercase hex characters.
func NewID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// NewTimeID returns prefix followed by 24 lowercase hex characters: t's Unix
// milliseconds in the first 12, then 12 random ones (48 bits, as UUIDv7 has
// its time first, RFC 9562 §5.7). It names rows that are only ever added, such
// as events: their ids come in about the order they are written, so a
// database's index of them grows at its end instead of at a random page per
// row, which would cost a page written per event at each commit.
func NewTimeID(prefix string, t time.Time) (string, error) {
	var b [12]byte
	ms := uint64(max(t.UnixMilli(), 0))
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// Session is a dashboard sign-in. Only a hash of its token is stored, as with API
// keys, so a copy of the database signs nobody in.
type Session struct {
	Hash        [32]byte // SHA-256 of the session token
	APIKeyID    int64    // the key the customer signed in with
	ProjectID   int64
	ProjectName string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Sessions keeps dashboard sign-ins.
type Sessions interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns the session with the given hash, or ErrNotFound if
	// there is none, it has expired at now, or its API key has been revoked.
	SessionByHash(ctx context.Context, hash [32]byte, now time.Time) (Session, error)
	// DeleteSession ends a session; ending one that does not exist is no error.
	DeleteSession(ctx context.Context, hash [32]byte) error
}

// Inbound switches receiving on and off.
type Inbound interface {
	// SaveInbound stores d's inbound state: it adds or removes the inbound MX
	// record so the stored records match d's, and stores the inbound timestamps
	// and the schedule, in one transaction. It returns ErrNotFound if the project
	// has no such domain. Like FinishCheck it saves only over the version d was
	// read at, and returns ErrChanged otherwise; on success d.Version is the
	// stored one.
	SaveInbound(ctx context.Context, d *domain.Domain) error
}

// Deferrable marks ctx as the context of a write that no request waits on (the
// save of a scheduled check): a store may hold the write back a little to
// commit it together with others (see sqlstore's group commit), which costs the
// write latency and saves the database work. Writes without the mark, such as
// the save of a verify that a customer asked for, are never held back.
func Deferrable(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferrableKey{}, true)
}

// IsDeferrable reports whether ctx carries Deferrable's mark.
func IsDeferrable(ctx context.Context) bool {
	v, _ := ctx.Value(deferrableKey{}).(bool)
	return v
}

type deferrableKey struct{}
