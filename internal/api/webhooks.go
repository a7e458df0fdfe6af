package api

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/jsonresp"
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

// v2Event is one of a domain's events. Data is the "data" object of the body
// webhooks received for it, as it was stored then.
type v2Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

func toV2Webhook(w webhook.Endpoint) v2Webhook {
	return v2Webhook{ID: w.ID, URL: w.URL, Events: nonNil(w.Events), CreatedAt: domain.Timestamp(w.CreatedAt)}
}

func toV2Delivery(d webhook.Delivery) v2Delivery {
	out := v2Delivery{
		ID: d.ID, EventID: d.EventID, EventType: string(d.EventType), Status: d.Status,
		CreatedAt: domain.Timestamp(d.CreatedAt), Attempts: make([]v2Attempt, len(d.Attempts)),
	}
	if d.Status == webhook.DeliveryPending {
		out.NextAttemptAt = optTimestamp(d.NextAttemptAt)
	}
	for i, a := range d.Attempts {
		out.Attempts[i] = v2Attempt{At: domain.Timestamp(a.At), DurationMS: a.Duration.Milliseconds()}
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

func toV2Event(e domains.Event) v2Event {
	var p domain.Envelope[json.RawMessage]
	// Payloads are written by verify and the rotator and never malformed; an
	// empty object stands in should one ever be.
	if err := json.Unmarshal(e.Payload, &p); err != nil || len(p.Data) == 0 {
		p.Data = json.RawMessage(`{}`)
	}
	return v2Event{ID: e.ID, Type: string(e.Type), CreatedAt: domain.Timestamp(e.CreatedAt), Data: p.Data}
}

// v2Page reads the limit and offset query parameters as v2 lists take them,
// answering 400 itself and returning false when one is not acceptable.
func v2Page(w http.ResponseWriter, r *http.Request) (domains.Page, bool) {
	limit, ok := queryInt(w, r, "limit", v2DefaultLimit, 1, v2MaxLimit, "a whole number from 1 to "+strconv.Itoa(v2MaxLimit))
	if !ok {
		return domains.Page{}, false
	}
	offset, ok := queryInt(w, r, "offset", 0, 0, math.MaxInt32, "a whole number of 0 or more")
	if !ok {
		return domains.Page{}, false
	}
	return domains.Page{Limit: limit, Offset: offset}, true
}

func pagination(p domains.Page, n, total int) v2Pagination {
	return v2Pagination{Limit: p.Limit, Offset: p.Offset, Total: total, HasMore: p.Offset+n < total}
}

// writePage answers 200 with one page of a list, by offset (events, deliveries): the
// items, each as view shows it, and where the page stands among total.
func writePage[T, V any](w http.ResponseWriter, p domains.Page, items []T, total int, view func(T) V) {
	out := v2List[V]{Data: make([]V, len(items)), Pagination: pagination(p, len(items), total)}
	for i, it := range items {
		out.Data[i] = view(it)
	}
	jsonresp.Write(w, http.StatusOK, out)
}

func (s *Server) v2DomainEvents(w http.ResponseWriter, r *http.Request) error {
	return writeChildPage(w, r, domainID, s.cfg.Domains.Events, toV2Event)
}

// writeChildPage answers with one page of what list holds under the thing the
// path names (a domain's events, a webhook's deliveries), each as view shows
// it; parseID reads that thing's id from the path. The path is checked before
// the query.
func writeChildPage[T, V any](w http.ResponseWriter, r *http.Request,
	parseID func(http.ResponseWriter, *http.Request) (string, bool),
	list func(ctx context.Context, projectID int64, id string, p domains.Page) ([]T, int, error),
	view func(T) V,
) error {
	id, ok := parseID(w, r)
	if !ok {
		return nil
	}
	page, ok := v2Page(w, r)
	if !ok {
		return nil
	}
	items, total, err := list(r.Context(), callerOf(r.Context()).projectID, id, page)
	if err != nil {
		return err
	}
	writePage(w, page, items, total, view)
	return nil
}

func (s *Server) v2CreateWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		URL    json.RawMessage `json:"url"`
		Events json.RawMessage `json:"events"`
	}
	if !decodeBody(w, r, &req, "url and events") {
		return nil
	}
	// The body's shape is checked here; what its values mean, by the service.
	var problems []FieldError
	var events []string
	if !isAbsent(req.Events) && json.Unmarshal(req.Events, &events) != nil {
		problems = append(problems, FieldError{Field: "events", Message: `events must be an array of event types, e.g. ["domain.verified"].`})
	}
	var rawURL string
	switch {
	case isAbsent(req.URL):
		problems = append(problems, FieldError{Field: "url", Message: `url is required, e.g. {"url": "https://example.com/webhooks"}.`})
	case json.Unmarshal(req.URL, &rawURL) != nil:
		problems = append(problems, FieldError{Field: "url", Message: "url must be a string."})
	}
	if len(problems) > 0 {
		// The events, if an array, are judged all the same, so that one answer
		// names every field at fault.
		if p := webhook.CheckEvents(events); p != nil && problems[0].Field != "events" {
			problems = append([]FieldError{FieldError(*p)}, problems...)
		}
		writeValidation(w, problems...)
		return nil
	}
	c := callerOf(r.Context())
	wh, err := s.cfg.Webhooks.Register(r.Context(), c.projectID, rawURL, events)
	if err != nil {
		return err
	}
	jsonresp.Write(w, http.StatusCreated, successData{Success: true, Data: v2NewWebhook{
		ID: wh.ID, URL: wh.URL, Events: nonNil(wh.Events), Secret: wh.Secret, CreatedAt: domain.Timestamp(wh.CreatedAt),
	}})
	return nil
}

// isAbsent reports whether a field was left out of a body or given as null.
func isAbsent(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

func (s *Server) v2ListWebhooks(w http.ResponseWriter, r *http.Request) error {
	whs, err := s.cfg.Webhooks.List(r.Context(), callerOf(r.Context()).projectID)
	if err != nil {
		return err
	}
	out := v2WebhookList{Data: make([]v2Webhook, len(whs))}
	for i, wh := range whs {
		out.Data[i] = toV2Webhook(wh)
	}
	jsonresp.Write(w, http.StatusOK, out)
	return nil
}

// webhookID returns the request's webhook id, answering 400 itself if it is malformed.
func webhookID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return pathID(w, r, "webhookId", webhook.ValidID, "webhookId must be "+webhook.IDPrefix+" followed by 24 lowercase hexadecimal characters.")
}

func (s *Server) v2DeleteWebhook(w http.ResponseWriter, r *http.Request) error {
	id, ok := webhookID(w, r)
	if !ok {
		return nil
	}
	if err := s.cfg.Webhooks.Delete(r.Context(), callerOf(r.Context()).projectID, id); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) v2WebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	return writeChildPage(w, r, webhookID, s.cfg.Webhooks.Deliveries, toV2Delivery)
}
