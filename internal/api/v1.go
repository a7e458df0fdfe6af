package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/jsonresp"
)

// The v1 JSON types. Field names are the contract's and exist only here.

type v1Record struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Type     string  `json:"type"`
	Purpose  string  `json:"purpose"`
	Priority *uint16 `json:"priority,omitempty"`
}

type v1DNSRecords struct {
	Ownership v1Record   `json:"ownership"`
	DKIM      v1Record   `json:"dkim"`
	MailFrom  []v1Record `json:"mailFrom"`
	DMARC     v1Record   `json:"dmarc"`
	InboundMX *v1Record  `json:"inboundMx,omitempty"`
	// The records of a DKIM key rotation, as additional keys AutoSend clients
	// ignore (CONTRACT.md): dkim stays the record the customer must have now.
	DKIMNext     *v1Record `json:"dkimNext,omitempty"`     // txt mode: the next key, to publish now
	DKIMPrevious *v1Record `json:"dkimPrevious,omitempty"` // txt mode: the key before, until retired
	DKIM2        *v1Record `json:"dkim2,omitempty"`        // cname mode: the other selector's CNAME
}

type v1Domain struct {
	ID                      string       `json:"id"`
	DomainName              string       `json:"domainName"`
	VerificationStatus      string       `json:"verificationStatus"`
	OwnershipVerified       bool         `json:"ownershipVerified"`
	DKIMEnabled             bool         `json:"dkimEnabled"`
	MailFromEnabled         bool         `json:"mailFromEnabled"`
	DMARCEnabled            bool         `json:"dmarcEnabled"`
	DNSRecords              v1DNSRecords `json:"dnsRecords"`
	CreatedAt               string       `json:"createdAt"`
	LastCheckedAt           string       `json:"lastCheckedAt"`
	VerifiedAt              *string      `json:"verifiedAt,omitempty"`
	RegionKey               string       `json:"regionKey"`
	VerificationInProgress  bool         `json:"verificationInProgress"`
	InboundEnabledAt        *string      `json:"inboundEnabledAt"`
	InboundDomainVerifiedAt *string      `json:"inboundDomainVerifiedAt"`
}

// v1Unchecked names a record that DNS could not answer for during a verify.
type v1Unchecked struct {
	Record  string `json:"record"`
	Name    string `json:"name"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type v1VerifyData struct {
	Domain                 v1Domain `json:"domain"`
	VerificationInProgress bool     `json:"verificationInProgress"`
	OwnershipVerified      bool     `json:"ownershipVerified"`
	VerificationStatus     string   `json:"verificationStatus"`
	DKIMEnabled            bool     `json:"dkimEnabled"`
	MailFromEnabled        bool     `json:"mailFromEnabled"`
	DMARCEnabled           bool     `json:"dmarcEnabled"`
	// UncheckedRecords is domaind's addition: the records whose check failed
	// temporarily (timeout, SERVFAIL) and so kept their previous state. It is left
	// out when empty, so AutoSend's shape is unchanged in the common case.
	UncheckedRecords []v1Unchecked `json:"uncheckedRecords,omitempty"`
}

type successData struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

type successMessage struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// optTimestamp is t as the contract writes times (domain.Timestamp), or null
// when t is zero.
func optTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := domain.Timestamp(t)
	return &s
}

func toV1Record(r *domain.Record) v1Record {
	out := v1Record{Name: r.Name, Value: r.Value, Type: r.Type, Purpose: r.Purpose}
	if p, ok := r.ShownPriority(); ok {
		out.Priority = &p
	}
	return out
}

// optV1Record is toV1Record for the records a domain may not have, which the
// contract leaves out when they are absent.
func optV1Record(r *domain.Record) *v1Record {
	rec := toV1Record(r)
	return &rec
}

// toV1Domain builds the contract's Domain from a domain; inProgress says whether a
// check of it is running.
func toV1Domain(d *domain.Domain, inProgress bool) v1Domain {
	out := v1Domain{
		ID:                      d.ID,
		DomainName:              d.Name,
		VerificationStatus:      string(d.Status),
		OwnershipVerified:       d.OwnershipVerified,
		DKIMEnabled:             d.DKIMEnabled,
		MailFromEnabled:         d.MailFromEnabled,
		DMARCEnabled:            d.DMARCEnabled,
		CreatedAt:               domain.Timestamp(d.CreatedAt),
		LastCheckedAt:           domain.Timestamp(d.LastCheckedAt),
		VerifiedAt:              optTimestamp(d.VerifiedAt),
		RegionKey:               d.Region,
		VerificationInProgress:  inProgress,
		InboundEnabledAt:        optTimestamp(d.InboundEnabledAt),
		InboundDomainVerifiedAt: optTimestamp(d.InboundVerifiedAt),
	}
	out.DNSRecords.MailFrom = []v1Record{}
	for i := range d.Records {
		r := &d.Records[i]
		switch r.Key {
		case domain.KeyOwnership:
			out.DNSRecords.Ownership = toV1Record(r)
		case domain.KeyDKIM:
			out.DNSRecords.DKIM = toV1Record(r)
		case domain.KeyMailFromMX, domain.KeyMailFromSPF:
			out.DNSRecords.MailFrom = append(out.DNSRecords.MailFrom, toV1Record(r))
		case domain.KeyDMARC:
			out.DNSRecords.DMARC = toV1Record(r)
		case domain.KeyInboundMX:
			out.DNSRecords.InboundMX = optV1Record(r)
		case domain.KeyDKIMNext:
			out.DNSRecords.DKIMNext = optV1Record(r)
		case domain.KeyDKIMPrevious:
			out.DNSRecords.DKIMPrevious = optV1Record(r)
		case domain.KeyDKIM2:
			out.DNSRecords.DKIM2 = optV1Record(r)
		}
	}
	return out
}

// addDomainRequest is the body of POST /v1/domains. Pointers tell a missing field
// from an empty one.
type addDomainRequest struct {
	Domain    *string `json:"domain"`
	RegionKey *string `json:"regionKey"`
}

func (s *Server) addDomain(w http.ResponseWriter, r *http.Request) error {
	var req addDomainRequest
	if !decodeBody(w, r, &req, "domain and regionKey") {
		return nil
	}
	if req.Domain == nil {
		writeValidation(w, FieldError{Field: "domain", Message: "domain is required, e.g. {\"domain\": \"example.com\"}."})
		return nil
	}
	region := ""
	if req.RegionKey != nil {
		region = *req.RegionKey
	}
	d, err := s.cfg.Domains.Add(r.Context(), callerOf(r.Context()).projectID, *req.Domain, region)
	if err != nil {
		return err
	}
	jsonresp.Write(w, http.StatusCreated, successData{Success: true, Data: toV1Domain(d, false)})
	return nil
}

// decodeBody decodes a JSON object into v, answering the error itself and
// returning false when the body is not acceptable; fields names the fields the
// body takes (e.g. "domain and regionKey"), for the error about another.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, fields string) bool {
	body, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "The request body is larger than 1 MiB.")
		return false
	}
	if err != nil {
		writeValidation(w, FieldError{Field: "body", Message: "The request body could not be read."})
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeValidation(w, FieldError{Field: "body", Message: "The request body must be a JSON object."})
		return false
	}
	if dup := duplicateName(body); dup != "" {
		writeValidation(w, FieldError{Field: domain.Truncate(dup, 64), Message: fmt.Sprintf("%q appears more than once in one object; give each field once.", domain.Truncate(dup, 64))})
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	// Unknown fields are refused: a misspelt "region" silently falling back to
	// the default region is worse than an error naming it.
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeValidation(w, decodeError(err, fields))
		return false
	}
	if dec.More() {
		writeValidation(w, FieldError{Field: "body", Message: "The request body must hold one JSON object and nothing after it."})
		return false
	}
	return true
}

// duplicateName returns the first member name that appears twice in one object of
// the JSON document, or "" when there is none (or the document is not valid JSON,
// which decoding then reports). encoding/json keeps the last of two members with
// one name, so {"domain":"a.com","domain":"b.com"} would mean whatever the last
// parser in a chain of proxies thinks; RFC 8259 section 4 leaves such objects'
// meaning unpredictable, so they are refused. Names are compared as encoding/json
// matches them to fields: without regard to case.
func duplicateName(body []byte) string {
	type frame struct {
		object, wantName bool
		seen             map[string]bool
	}
	var stack []*frame
	// value notes that a value ended (or began, for a nested object or array): in
	// an object, a name comes next.
	value := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantName = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				value()
				stack = append(stack, &frame{object: t == '{', wantName: t == '{', seen: map[string]bool{}})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantName {
				top := stack[n-1]
				// Upper then lower case folds the way encoding/json matches names
				// (the Kelvin sign and the long s included).
				folded := strings.ToLower(strings.ToUpper(t))
				if top.seen[folded] {
					return t
				}
				top.seen[folded] = true
				top.wantName = false
				continue
			}
		}
		value()
	}
}

func decodeError(err error, fields string) FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return FieldError{Field: "body", Message: "The request body must be a JSON object."}
		}
		return FieldError{Field: typeErr.Field, Message: fmt.Sprintf("%s must be a %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return FieldError{Field: "body", Message: "The request body is not valid JSON."}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return FieldError{Field: domain.Truncate(f, 64), Message: fmt.Sprintf("%q is not a known field; the body takes %s.", domain.Truncate(f, 64), fields)}
	}
	return FieldError{Field: "body", Message: "The request body is not valid JSON."}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "ptr", "string":
		return "string"
	case "struct", "map":
		return "object"
	}
	return goKind
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) error {
	var page domains.Page
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" || q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeValidation(w, FieldError{Field: "limit", Message: "limit must be a whole number from 1 to 1000."})
			return nil
		}
		page.Limit = n
	}
	if v := q.Get("offset"); v != "" || q.Has("offset") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeValidation(w, FieldError{Field: "offset", Message: "offset must be a whole number of 0 or more."})
			return nil
		}
		page.Offset = n
	}
	ds, _, err := s.cfg.Domains.List(r.Context(), callerOf(r.Context()).projectID, page)
	if err != nil {
		return err
	}
	out := make([]v1Domain, len(ds))
	for i, d := range ds {
		out[i] = toV1Domain(d, s.cfg.Domains.Checking(d))
	}
	jsonresp.Write(w, http.StatusOK, successData{Success: true, Data: map[string]any{"domains": out}})
	return nil
}

// domainID returns the request's domain id, answering 400 itself if it is malformed.
func domainID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return pathID(w, r, "domainId", domain.ValidID, "domainId must be 24 lowercase hexadecimal characters.")
}

// pathID returns the request's path value name, answering 400 itself, with
// message, when valid says it is malformed: an id that cannot exist is the
// caller's mistake to name, not a 404 to hide.
func pathID(w http.ResponseWriter, r *http.Request, name string, valid func(string) bool, message string) (string, bool) {
	id := r.PathValue(name)
	if !valid(id) {
		writeValidation(w, FieldError{Field: name, Message: message})
		return "", false
	}
	return id, true
}

// callerDomain loads the domain the request's path names, of the caller's project.
// When it answers the request itself (a malformed id) it returns nil and no
// error; an error (a fault such as NotFound, or an internal one) is for the
// caller to return.
func (s *Server) callerDomain(w http.ResponseWriter, r *http.Request) (*domain.Domain, error) {
	id, ok := domainID(w, r)
	if !ok {
		return nil, nil
	}
	return s.cfg.Domains.Get(r.Context(), callerOf(r.Context()).projectID, id)
}

func (s *Server) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	id, ok := domainID(w, r)
	if !ok {
		return nil
	}
	if err := s.cfg.Domains.Delete(r.Context(), callerOf(r.Context()).projectID, id); err != nil {
		return err
	}
	jsonresp.Write(w, http.StatusOK, successMessage{Success: true, Message: "Domain deleted successfully"})
	return nil
}

func (s *Server) verifyDomain(w http.ResponseWriter, r *http.Request) error {
	id, ok := domainID(w, r)
	if !ok {
		return nil
	}
	out, err := s.cfg.Domains.Verify(r.Context(), callerOf(r.Context()).projectID, id)
	if err != nil {
		return err
	}
	d := out.Domain
	data := v1VerifyData{
		Domain:                 toV1Domain(d, out.InProgress),
		VerificationInProgress: out.InProgress,
		OwnershipVerified:      d.OwnershipVerified,
		VerificationStatus:     string(d.Status),
		DKIMEnabled:            d.DKIMEnabled,
		MailFromEnabled:        d.MailFromEnabled,
		DMARCEnabled:           d.DMARCEnabled,
	}
	if !out.InProgress {
		for _, rec := range d.Records {
			if rec.Status == domain.CheckTemporaryFailure && len(rec.Problems) > 0 {
				data.UncheckedRecords = append(data.UncheckedRecords, v1Unchecked{
					Record: rec.Key.Role(), Name: rec.Name, Code: string(rec.Problems[0].Code), Message: rec.Problems[0].Message,
				})
			}
		}
	}
	jsonresp.Write(w, http.StatusOK, successMessage{Success: true, Message: "Domain verification status updated", Data: data})
	return nil
}
