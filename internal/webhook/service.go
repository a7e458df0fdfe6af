package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
)

// IDPrefix starts every webhook id, before 24 lowercase hex characters.
const IDPrefix = "wh_"

// ValidID reports whether s has the form of a webhook id: IDPrefix and a
// domain id's 24 lowercase hex characters.
func ValidID(s string) bool {
	hex, ok := strings.CutPrefix(s, IDPrefix)
	return ok && domain.ValidID(hex)
}

// Endpoint, Delivery and Page are the store's, named here so that front ends
// need not import the store.
type (
	Endpoint = store.Webhook
	Delivery = store.Delivery
	Page     = store.Page
)

// DeliveryPending is the status of a delivery still to be attempted.
const DeliveryPending = store.DeliveryPending

// lookupTimeout bounds resolving a webhook URL's host at registration.
const lookupTimeout = 5 * time.Second

// Service registers, lists and removes a project's webhooks; it is what the
// API calls. Failures a customer can act on are *fault.Error.
type Service struct {
	Store  store.Store
	Sealer *records.Sealer
	// AllowPrivate lets webhook URLs use plain http and reach loopback,
	// private and link-local addresses, as tests need.
	AllowPrivate bool
	// Max is how many webhooks a project may have; 0 means DefaultMaxWebhooks.
	Max int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Registered is a webhook just created, with its signing secret, shown once.
type Registered struct {
	Endpoint
	Secret string
}

// CheckEvents checks the event types of a new webhook: nil means every type;
// otherwise a non-empty list of known types, each once. It returns the problem,
// or nil.
func CheckEvents(events []string) *fault.Detail {
	if events == nil {
		return nil
	}
	if len(events) == 0 {
		return &fault.Detail{Field: "events", Message: "events must name at least one event type; leave it out to receive them all."}
	}
	for i, e := range events {
		if !domain.KnownEventType(e) {
			return &fault.Detail{Field: "events", Message: fmt.Sprintf("events[%d] %q is not an event type; use %s.",
				i, domain.Truncate(e, 64), eventTypeList())}
		}
		if slices.Contains(events[:i], e) {
			return &fault.Detail{Field: "events", Message: fmt.Sprintf("events[%d] %q is listed twice.", i, e)}
		}
	}
	return nil
}

// Register adds a webhook for the project at rawURL receiving events (nil: all
// but domain.status.changed). A bad URL or event list, or a project at its
// limit, is fault.Invalid with a detail for each field at fault.
func (s *Service) Register(ctx context.Context, projectID int64, rawURL string, events []string) (Registered, error) {
	var problems []fault.Detail
	if p := CheckEvents(events); p != nil {
		problems = append(problems, *p)
	}
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	normalized, err := CheckURL(lctx, rawURL, s.AllowPrivate, nil)
	cancel()
	var ue *URLError
	switch {
	case errors.As(err, &ue):
		problems = append(problems, fault.Detail{Field: "url", Message: ue.Message})
	case err != nil:
		return Registered{}, err
	}
	if len(problems) > 0 {
		return Registered{}, &fault.Error{Code: fault.Invalid, Message: problems[0].Message, Details: problems}
	}
	id, err := store.NewID(IDPrefix)
	if err != nil {
		return Registered{}, err
	}
	secret, err := NewSecret()
	if err != nil {
		return Registered{}, err
	}
	// Sealed with the webhook id as additional data, as DKIM keys are with the
	// domain id: a sealed secret copied onto another webhook does not open.
	sealed, err := s.Sealer.Seal([]byte(secret), id)
	if err != nil {
		return Registered{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	wh := Endpoint{
		ID: id, ProjectID: projectID, URL: normalized, Events: events, SealedSecret: sealed,
		CreatedAt: domain.NowMillis(now()),
	}
	maxHooks := s.Max
	if maxHooks <= 0 {
		maxHooks = DefaultMaxWebhooks
	}
	// The store counts and inserts in one step, so concurrent registrations
	// cannot together pass the cap.
	err = s.Store.CreateWebhook(ctx, wh, maxHooks)
	if errors.Is(err, store.ErrTooManyWebhooks) {
		return Registered{}, fault.Invalidf("url", fmt.Sprintf(
			"This project already has %d webhooks, the most it may have; delete one before adding another.", maxHooks))
	}
	if err != nil {
		return Registered{}, err
	}
	s.log().Info("webhook added", "id", id, "project", projectID, "url", normalized)
	return Registered{Endpoint: wh, Secret: secret}, nil
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFoundf("webhook", "No webhook with this id exists in this project.", err)
	}
	return err
}

// List returns the project's webhooks, oldest first.
func (s *Service) List(ctx context.Context, projectID int64) ([]Endpoint, error) {
	return s.Store.Webhooks(ctx, projectID)
}

// Delete removes the project's webhook and its deliveries.
func (s *Service) Delete(ctx context.Context, projectID int64, id string) error {
	if err := s.Store.DeleteWebhook(ctx, projectID, id); err != nil {
		return notFound(err)
	}
	s.log().Info("webhook deleted", "id", id, "project", projectID)
	return nil
}

// Deliveries lists the project's webhook's deliveries, newest first, and their
// total. Deliveries of an unknown webhook would be an empty list; NotFound says
// more.
func (s *Service) Deliveries(ctx context.Context, projectID int64, id string, p Page) ([]Delivery, int, error) {
	whs, err := s.Store.Webhooks(ctx, projectID)
	if err != nil {
		return nil, 0, err
	}
	if !slices.ContainsFunc(whs, func(wh Endpoint) bool { return wh.ID == id }) {
		return nil, 0, notFound(store.ErrNotFound)
	}
	return s.Store.Deliveries(ctx, projectID, id, p)
}

// eventTypeList is every event type, for a message that lists them.
func eventTypeList() string {
	names := make([]string, len(domain.EventTypes))
	for i, t := range domain.EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
