package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/webhook"
)

// The JSON types of events and webhooks, under /api/v2.

// v2Webhook is a webhook endpoint as lists show it:
//
//	id         "wh_" and 24 lowercase hex characters
//	url        the normalized URL
//	events     the event types it receives; [] means every type but
//	           domain.status.changed
//	createdAt  RFC 3339 UTC with milliseconds
//
// The signing secret is not among them: it is shown once, when the webhook is
// created (v2NewWebhook).
type v2Webhook struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	CreatedAt string   `json:"createdAt"`
}

// v2NewWebhook is a webhook just created, with its signing secret.
type v2NewWebhook struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret"`
	CreatedAt string   `json:"createdAt"`
}

type v2WebhookList struct {
	Data []v2Webhook `json:"data"`
}

// v2Delivery is one event on its way to one webhook:
//
//	id             "msg_" and 24 hex characters, the webhook-id header the
//	               endpoint receives, the same on every attempt
//	eventId        the event's id
//	eventType      the event's type
//	status         pending, delivered or failed
//	nextAttemptAt  when it is attempted next, or null unless pending
//	createdAt      when the event happened
//	attempts       oldest first (v2Attempt)
type v2Delivery struct {
	ID            string      `json:"id"`
	EventID       string      `json:"eventId"`
	EventType     string      `json:"eventType"`
	Status        string      `json:"status"`
	NextAttemptAt *string     `json:"nextAttemptAt"`
	CreatedAt     string      `json:"createdAt"`
	Attempts      []v2Attempt `json:"attempts"`
}

// v2Attempt is one try at delivering: statusCode is null when no answer came
// (the connection failed or timed out), error is null when the endpoint
// answered 2xx.
type v2Attempt struct {
	At         string  `json:"at"`
	StatusCode *int    `json:"statusCode"`
	Error      *string `json:"error"`
	DurationMS int64   `json:"durationMs"`
}

type v2DeliveryList struct {
	Data       []v2Delivery `json:"data"`
	Pagination v2Pagination `json:"pagination"`
}

// v2Event is one of a domain's events. Data is the "data" object of the body
// webhooks received for it, as it was stored then.
type v2Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

type v2EventList struct {
	Data       []v2Event    `json:"data"`
	Pagination v2Pagination `json:"pagination"`
}

func toV2Webhook(w store.Webhook) v2Webhook {
	return v2Webhook{ID: w.ID, URL: w.URL, Events: nonNil(w.Events), CreatedAt: timestamp(w.CreatedAt)}
}

func toV2Delivery(d store.Delivery) v2Delivery {
	out := v2Delivery{
		ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
		CreatedAt: timestamp(d.CreatedAt), Attempts: make([]v2Attempt, len(d.Attempts)),
	}
	if d.Status == store.DeliveryPending {
		out.NextAttemptAt = optTimestamp(d.NextAttemptAt)
	}
	for i, a := range d.Attempts {
		out.Attempts[i] = v2Attempt{At: timestamp(a.At), DurationMS: a.Duration.Milliseconds()}
		if a.StatusCode != 0 {
			code := a.StatusCode
			out.Attempts[i].StatusCode = &code
		}
		if a.Error != "" {
			msg := a.Error
			out.Attempts[i].Error = &msg
		}
	}
	return out
}

func toV2Event(e store.Event) v2Event {
	var p struct {
		Data json.RawMessage `json:"data"`
	}
	// Payloads are written by verify and never malformed; an empty object
	// stands in should one ever be.
	if err := json.Unmarshal(e.Payload, &p); err != nil || len(p.Data) == 0 {
		p.Data = json.RawMessage(`{}`)
	}
	return v2Event{ID: e.ID, Type: e.Type, CreatedAt: timestamp(e.CreatedAt), Data: p.Data}
}

// v2Page reads the limit and offset query parameters as v2 lists take them,
// answering 400 itself and returning false when one is not acceptable.
func v2Page(w http.ResponseWriter, r *http.Request) (store.Page, bool) {
	limit, ok := queryInt(w, r, "limit", v2DefaultLimit, 1, v2MaxLimit, "a whole number from 1 to 100")
	if !ok {
		return store.Page{}, false
	}
	offset, ok := queryInt(w, r, "offset", 0, 0, math.MaxInt32, "a whole number of 0 or more")
	if !ok {
		return store.Page{}, false
	}
	return store.Page{Limit: limit, Offset: offset}, true
}

func pagination(p store.Page, n, total int) v2Pagination {
	return v2Pagination{Limit: p.Limit, Offset: p.Offset, Total: total, HasMore: p.Offset+n < total}
}

func (s *Server) v2DomainEvents(w http.ResponseWriter, r *http.Request) error {
	page, ok := v2Page(w, r)
	if !ok {
		return nil
	}
	// Events of an unknown domain would be an empty list; a 404 says more.
	d, err := s.callerDomain(w, r)
	if d == nil {
		return err
	}
	projectID, id := d.ProjectID, d.ID
	evs, total, err := s.cfg.Store.Events(r.Context(), projectID, id, page)
	if err != nil {
		return err
	}
	out := v2EventList{Data: make([]v2Event, len(evs)), Pagination: pagination(page, len(evs), total)}
	for i, e := range evs {
		out.Data[i] = toV2Event(e)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// webhookLookupTimeout bounds resolving a webhook URL's host at registration.
const webhookLookupTimeout = 5 * time.Second

func (s *Server) v2CreateWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		URL    json.RawMessage `json:"url"`
		Events json.RawMessage `json:"events"`
	}
	if !decodeBody(w, r, &req, "url and events") {
		return nil
	}
	var problems []FieldError
	events, fe := parseWebhookEvents(req.Events)
	if fe != nil {
		problems = append(problems, *fe)
	}
	var rawURL string
	switch {
	case isAbsent(req.URL):
		problems = append(problems, FieldError{Field: "url", Message: `url is required, e.g. {"url": "https://example.com/webhooks"}.`})
	case json.Unmarshal(req.URL, &rawURL) != nil:
		problems = append(problems, FieldError{Field: "url", Message: "url must be a string."})
	default:
		ctx, cancel := context.WithTimeout(r.Context(), webhookLookupTimeout)
		normalized, err := webhook.CheckURL(ctx, rawURL, s.cfg.WebhookAllowPrivate, nil)
		cancel()
		var ue *webhook.URLError
		switch {
		case errors.As(err, &ue):
			problems = append(problems, FieldError{Field: "url", Message: ue.Message})
		case err != nil:
			return err
		}
		rawURL = normalized
	}
	if len(problems) > 0 {
		writeValidation(w, problems...)
		return nil
	}

	id, err := store.NewID("wh_")
	if err != nil {
		return err
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	// Sealed with the webhook id as additional data, as DKIM keys are with the
	// domain id: a sealed secret copied onto another webhook does not open.
	sealed, err := s.cfg.Sealer.Seal([]byte(secret), id)
	if err != nil {
		return err
	}
	c := callerOf(r.Context())
	wh := store.Webhook{
		ID: id, ProjectID: c.projectID, URL: rawURL, Events: events, SealedSecret: sealed,
		CreatedAt: s.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	maxHooks := s.cfg.MaxWebhooks
	if maxHooks <= 0 {
		maxHooks = webhook.DefaultMaxWebhooks
	}
	// The store counts and inserts in one step, so concurrent registrations
	// cannot together pass the cap.
	err = s.cfg.Store.CreateWebhook(r.Context(), wh, maxHooks)
	if errors.Is(err, store.ErrTooManyWebhooks) {
		writeValidation(w, FieldError{Field: "url", Message: fmt.Sprintf(
			"This project already has %d webhooks, the most it may have; delete one before adding another.", maxHooks)})
		return nil
	}
	if err != nil {
		return err
	}
	s.cfg.Log.Info("webhook added", "id", id, "project", c.projectID, "url", rawURL)
	writeJSON(w, http.StatusCreated, successData{Success: true, Data: v2NewWebhook{
		ID: id, URL: rawURL, Events: nonNil(events), Secret: secret, CreatedAt: timestamp(wh.CreatedAt),
	}})
	return nil
}

// isAbsent reports whether a field was left out of a body or given as null.
func isAbsent(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// parseWebhookEvents reads the events of a new webhook: left out (or null) means
// every type; otherwise a non-empty list of known types, each once.
func parseWebhookEvents(raw json.RawMessage) ([]string, *FieldError) {
	if isAbsent(raw) {
		return nil, nil
	}
	known := strings.Join(store.EventTypes, ", ")
	var events []string
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, &FieldError{Field: "events", Message: `events must be an array of event types, e.g. ["domain.verified"].`}
	}
	if len(events) == 0 {
		return nil, &FieldError{Field: "events", Message: "events must name at least one event type; leave it out to receive them all."}
	}
	for i, e := range events {
		if !slices.Contains(store.EventTypes, e) {
			return nil, &FieldError{Field: "events", Message: fmt.Sprintf("events[%d] %q is not an event type; use %s.", i, truncateRunes(e, 64), known)}
		}
		if slices.Contains(events[:i], e) {
			return nil, &FieldError{Field: "events", Message: fmt.Sprintf("events[%d] %q is listed twice.", i, e)}
		}
	}
	return events, nil
}

func (s *Server) v2ListWebhooks(w http.ResponseWriter, r *http.Request) error {
	whs, err := s.cfg.Store.Webhooks(r.Context(), callerOf(r.Context()).projectID)
	if err != nil {
		return err
	}
	out := v2WebhookList{Data: make([]v2Webhook, len(whs))}
	for i, wh := range whs {
		out.Data[i] = toV2Webhook(wh)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// webhookID returns the request's webhook id, answering 400 itself if it is malformed.
func webhookID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("webhookId")
	hex, ok := strings.CutPrefix(id, "wh_")
	if !ok || len(hex) != 24 || strings.Trim(hex, "0123456789abcdef") != "" {
		writeValidation(w, FieldError{Field: "webhookId", Message: "webhookId must be wh_ followed by 24 lowercase hexadecimal characters."})
		return "", false
	}
	return id, true
}

func writeWebhookNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, codeNotFound, "No webhook with this id exists in this project.")
}

func (s *Server) v2DeleteWebhook(w http.ResponseWriter, r *http.Request) error {
	id, ok := webhookID(w, r)
	if !ok {
		return nil
	}
	c := callerOf(r.Context())
	err := s.cfg.Store.DeleteWebhook(r.Context(), c.projectID, id)
	if errors.Is(err, store.ErrNotFound) {
		writeWebhookNotFound(w)
		return nil
	}
	if err != nil {
		return err
	}
	s.cfg.Log.Info("webhook deleted", "id", id, "project", c.projectID)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) v2WebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	id, ok := webhookID(w, r)
	if !ok {
		return nil
	}
	page, ok := v2Page(w, r)
	if !ok {
		return nil
	}
	projectID := callerOf(r.Context()).projectID
	// Deliveries of an unknown webhook would be an empty list; a 404 says more.
	whs, err := s.cfg.Store.Webhooks(r.Context(), projectID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(whs, func(wh store.Webhook) bool { return wh.ID == id }) {
		writeWebhookNotFound(w)
		return nil
	}
	ds, total, err := s.cfg.Store.Deliveries(r.Context(), projectID, id, page)
	if err != nil {
		return err
	}
	out := v2DeliveryList{Data: make([]v2Delivery, len(ds)), Pagination: pagination(page, len(ds), total)}
	for i, d := range ds {
		out.Data[i] = toV2Delivery(d)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
