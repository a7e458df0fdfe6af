package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/domains"
	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/jsonresp"
)

// The v2 JSON types: domaind's own per-record view, modelled on inbound.new's DNS
// records API. Field names are the contract's and exist only here, so that the
// storage tags of the domain package never leak into the wire format.

// v2Domain is a domain as the v2 list shows it:
//
//	id                      24 lowercase hex, as in v1
//	domain                  the normalized name
//	region                  the region key
//	verificationStatus      the v1 enum: PENDING_CONFIGURATION, PENDING or VERIFIED
//	ownershipVerified, dkimEnabled, mailFromEnabled, dmarcEnabled
//	                        the v1 flags
//	canSend                 verificationStatus is VERIFIED
//	verificationInProgress  a check of the domain is running
//	createdAt               RFC 3339 UTC with milliseconds
//	lastCheckedAt           the same, or null until the first check (unlike v1,
//	                        which repeats createdAt)
//	verifiedAt              the same, or null until first verified (v1 leaves it out)
type v2Domain struct {
	ID                     string  `json:"id"`
	Domain                 string  `json:"domain"`
	Region                 string  `json:"region"`
	VerificationStatus     string  `json:"verificationStatus"`
	OwnershipVerified      bool    `json:"ownershipVerified"`
	DKIMEnabled            bool    `json:"dkimEnabled"`
	MailFromEnabled        bool    `json:"mailFromEnabled"`
	DMARCEnabled           bool    `json:"dmarcEnabled"`
	CanSend                bool    `json:"canSend"`
	CanReceive             bool    `json:"canReceive"`
	VerificationInProgress bool    `json:"verificationInProgress"`
	CreatedAt              string  `json:"createdAt"`
	LastCheckedAt          *string `json:"lastCheckedAt"`
	VerifiedAt             *string `json:"verifiedAt"`
	// State is the richer state (see domain.Domain.State); VerificationFailedAt is
	// set when automatic checks gave up, with FailureReason saying why and what to
	// do; NextCheckAt is when the next automatic check is due, null when none is.
	State                string  `json:"state"`
	VerificationFailedAt *string `json:"verificationFailedAt"`
	FailureReason        *string `json:"failureReason"`
	NextCheckAt          *string `json:"nextCheckAt"`
}

// v2DomainWithRecords is the single-domain view: every v2Domain field and records.
type v2DomainWithRecords struct {
	v2Domain
	Records []v2Record `json:"records"`
}

// v2Record is one record and its latest check. Its fields are:
//
//	id           <domainId>-<type>, stable for the record's life
//	domainId     the domain's id
//	recordType   the DNS type, "TXT" or "MX"
//	type         the record's role (see v2RecordType)
//	name, value  what to publish; priority is a number for MX and null for TXT
//	purpose      one sentence on what the record is for
//	isRequired   the record must be published: ownership and DKIM before sending,
//	             the inbound MX before receiving, and during a key rotation the next
//	             key's record (domain.Need.MustPublish)
//	isVerified   the record's flag, which keeps its value through temporary failures
//	lastChecked  RFC 3339 UTC with milliseconds, or null until checked
//	status       unchecked, verified, missing, mismatch or temporary_failure
//	found        the values DNS returned at the latest check, [] when none
//	problems     [{code, message}], [] when none
//	propagation  domaind's extension: what each server asked said (domain.Sighting)
//	createdAt, updatedAt
type v2Record struct {
	ID          string  `json:"id"`
	DomainID    string  `json:"domainId"`
	RecordType  string  `json:"recordType"`
	Type        string  `json:"type"`
	Name        string  `json:"name"`
	Value       string  `json:"value"`
	Priority    *uint16 `json:"priority"`
	Purpose     string  `json:"purpose"`
	IsRequired  bool    `json:"isRequired"`
	IsVerified  bool    `json:"isVerified"`
	LastChecked *string `json:"lastChecked"`
	// status, found, problems and propagation, as domaind check --json shows them
	domain.CheckView
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

type v2Pagination struct {
	Limit   int  `json:"limit"`
	Offset  int  `json:"offset"`
	Total   int  `json:"total"`
	HasMore bool `json:"hasMore"`
	// NextCursor, passed as ?cursor=, continues the list after this page however
	// many domains are added meanwhile; absent on the last page, and on the
	// lists that page by offset only (events, deliveries).
	NextCursor *string `json:"nextCursor,omitempty"`
}

// encodeCursor and decodeCursor make a Position opaque: base64url of
// "<created ms>:<id>". It only positions a list within the caller's own project,
// so it needs no signature.
func encodeCursor(d *domain.Domain) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(d.CreatedAt.UnixMilli(), 10) + ":" + d.ID))
}

func decodeCursor(s string) (*domains.Position, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	msStr, id, ok := strings.Cut(string(b), ":")
	ms, err := strconv.ParseInt(msStr, 10, 64)
	if !ok || err != nil || ms < 0 || !domain.ValidID(id) {
		return nil, false
	}
	return &domains.Position{CreatedAt: time.UnixMilli(ms).UTC(), ID: id}, true
}

// v2List is a page of a list: domains, a domain's events, a webhook's deliveries.
type v2List[V any] struct {
	Data       []V          `json:"data"`
	Pagination v2Pagination `json:"pagination"`
}

type v2One struct {
	Data v2DomainWithRecords `json:"data"`
}

type v2RecordList struct {
	DomainID string     `json:"domainId"`
	Domain   string     `json:"domain"`
	Records  []v2Record `json:"records"`
}

// v2 page sizes: inbound.new's defaults.
const (
	v2DefaultLimit = 20
	v2MaxLimit     = 100
)

func toV2Domain(d *domain.Domain, inProgress bool) v2Domain {
	out := v2Domain{
		ID:                     d.ID,
		Domain:                 d.Name,
		Region:                 d.Region,
		VerificationStatus:     string(d.Status),
		OwnershipVerified:      d.OwnershipVerified,
		DKIMEnabled:            d.DKIMEnabled,
		MailFromEnabled:        d.MailFromEnabled,
		DMARCEnabled:           d.DMARCEnabled,
		CanSend:                d.CanSend(),
		CanReceive:             d.CanReceive(),
		VerificationInProgress: inProgress,
		CreatedAt:              domain.Timestamp(d.CreatedAt),
		VerifiedAt:             optTimestamp(d.VerifiedAt),
		State:                  string(d.State()),
		VerificationFailedAt:   optTimestamp(d.FailedAt),
		NextCheckAt:            optTimestamp(d.NextCheckAt),
	}
	if reason := d.FailureReason("call verify"); reason != "" {
		out.FailureReason = &reason
	}
	if d.EverChecked() {
		out.LastCheckedAt = optTimestamp(d.LastCheckedAt)
	}
	return out
}

func toV2Records(d *domain.Domain) []v2Record {
	out := make([]v2Record, len(d.Records))
	for i := range d.Records {
		out[i] = toV2Record(d.ID, &d.Records[i])
	}
	return out
}

func toV2Record(domainID string, r *domain.Record) v2Record {
	typ := r.Key.Role()
	out := v2Record{
		ID:          domainID + "-" + typ,
		DomainID:    domainID,
		RecordType:  r.Type,
		Type:        typ,
		Name:        r.Name,
		Value:       r.Value,
		Purpose:     r.Purpose,
		IsRequired:  r.Need().MustPublish(),
		IsVerified:  r.Verified,
		LastChecked: optTimestamp(r.CheckedAt),
		CheckView: domain.ViewCheck(domain.Observation{
			Status: r.ShownStatus(), Found: r.Found, Problems: r.Problems, Propagation: r.Propagation,
		}),
		CreatedAt: domain.Timestamp(r.CreatedAt),
		UpdatedAt: domain.Timestamp(r.UpdatedAt),
	}
	if p, ok := r.ShownPriority(); ok {
		out.Priority = &p
	}
	return out
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// queryInt parses the query parameter name as a whole number from lo to hi, or
// returns def when it is absent. It answers 400 itself and returns false when the
// value is not acceptable.
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, lo, hi int, rule string) (int, bool) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, true
	}
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < lo || n > hi {
		writeValidation(w, FieldError{Field: name, Message: name + " must be " + rule + "."})
		return 0, false
	}
	return n, true
}

func (s *Server) v2ListDomains(w http.ResponseWriter, r *http.Request) error {
	page, ok := v2Page(w, r)
	if !ok {
		return nil
	}
	limit, offset := page.Limit, page.Offset
	if q := r.URL.Query(); q.Has("cursor") {
		after, ok := decodeCursor(q.Get("cursor"))
		switch {
		case !ok:
			writeValidation(w, FieldError{Field: "cursor", Message: "cursor must be a nextCursor value this API returned."})
			return nil
		case offset > 0:
			writeValidation(w, FieldError{Field: "offset", Message: "use either cursor or offset, not both."})
			return nil
		}
		// One more than asked tells whether another page follows.
		page = domains.Page{Limit: limit + 1, After: after}
	}
	ds, total, err := s.cfg.Domains.List(r.Context(), callerOf(r.Context()).projectID, page)
	if err != nil {
		return err
	}
	hasMore := offset+len(ds) < total
	if page.After != nil {
		hasMore = len(ds) > limit
		ds = ds[:min(len(ds), limit)]
	}
	out := v2List[v2Domain]{
		Data:       make([]v2Domain, len(ds)),
		Pagination: v2Pagination{Limit: limit, Offset: offset, Total: total, HasMore: hasMore},
	}
	if hasMore && len(ds) > 0 {
		c := encodeCursor(ds[len(ds)-1])
		out.Pagination.NextCursor = &c
	}
	for i, d := range ds {
		out.Data[i] = toV2Domain(d, s.cfg.Domains.Checking(d))
	}
	jsonresp.Write(w, http.StatusOK, out)
	return nil
}

// parseCheck reads the check query parameter: absent means false.
func parseCheck(w http.ResponseWriter, r *http.Request) (check, ok bool) {
	q := r.URL.Query()
	if !q.Has("check") {
		return false, true
	}
	switch q.Get("check") {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	writeValidation(w, FieldError{Field: "check", Message: "check must be true, false, 1 or 0."})
	return false, false
}

func (s *Server) v2GetDomain(w http.ResponseWriter, r *http.Request) error {
	id, ok := domainID(w, r)
	if !ok {
		return nil
	}
	check, ok := parseCheck(w, r)
	if !ok {
		return nil
	}
	projectID := callerOf(r.Context()).projectID
	var d *domain.Domain
	inProgress := false
	if check {
		out, err := s.cfg.Domains.Verify(r.Context(), projectID, id)
		switch {
		case fault.CodeOf(err) == fault.TooSoon:
			// A GET reads; it never answers 429. The domain was checked moments
			// ago, so the stored state is as fresh as a check would make it.
		case err != nil:
			return err
		default:
			d, inProgress = out.Domain, out.InProgress
		}
	}
	if d == nil {
		var err error
		if d, err = s.callerDomain(w, r); d == nil {
			return err
		}
		inProgress = s.cfg.Domains.Checking(d)
	}
	jsonresp.Write(w, http.StatusOK, v2One{Data: v2DomainWithRecords{
		v2Domain: toV2Domain(d, inProgress),
		Records:  toV2Records(d),
	}})
	return nil
}

func (s *Server) v2DNSRecords(w http.ResponseWriter, r *http.Request) error {
	d, err := s.callerDomain(w, r)
	if d == nil {
		return err
	}
	jsonresp.Write(w, http.StatusOK, v2RecordList{DomainID: d.ID, Domain: d.Name, Records: toV2Records(d)})
	return nil
}
