// Package domain holds the sending domain, its DNS records and the rules that turn the
// results of a DNS check into the domain's state. It does no I/O, so the rules can be
// tested exhaustively and shared by the API, the background verifier and the CLI.
package domain

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Status is a domain's overall verification status, as the v1 API reports it.
type Status string

// The three statuses of the v1 API. The set is fixed so that AutoSend clients never
// meet a value they do not know.
const (
	StatusPendingConfiguration Status = "PENDING_CONFIGURATION"
	StatusPending              Status = "PENDING"
	StatusVerified             Status = "VERIFIED"
)

// RecordKey names one of the records a domain publishes. A domain has at most one
// record per key.
type RecordKey string

// The records domaind asks a customer to publish.
const (
	KeyOwnership   RecordKey = "ownership"
	KeyDKIM        RecordKey = "dkim"
	KeyMailFromMX  RecordKey = "mailfrom_mx"
	KeyMailFromSPF RecordKey = "mailfrom_spf"
	KeyDMARC       RecordKey = "dmarc"
	KeyInboundMX   RecordKey = "inbound_mx"
)

// SendingKeys lists the records every sending domain has, in the order they are shown.
var SendingKeys = []RecordKey{KeyOwnership, KeyDKIM, KeyMailFromMX, KeyMailFromSPF, KeyDMARC}

// Role returns the record's name in the v2 API, webhooks and the check command:
// ownership, dkim, mail_from_mx, mail_from_spf, dmarc or inbound_mx.
func (k RecordKey) Role() string {
	switch k {
	case KeyMailFromMX:
		return "mail_from_mx"
	case KeyMailFromSPF:
		return "mail_from_spf"
	}
	return string(k)
}

// Purpose is the one sentence that tells the customer what a record with the
// key is for; PurposeOf, which the store uses, adds the records of rotation.
func (k RecordKey) Purpose() string {
	switch k {
	case KeyOwnership:
		return "Proves that you own the domain."
	case KeyDKIM:
		return "DKIM public key that receivers use to check the signature on your mail."
	case KeyMailFromMX:
		return "Custom MAIL FROM domain: receives bounces and complaints."
	case KeyMailFromSPF:
		return "SPF for the MAIL FROM domain: authorizes the platform's servers to send."
	case KeyDMARC:
		return "DMARC policy: tells receivers what to do with mail that fails SPF and DKIM."
	case KeyInboundMX:
		return "Inbound MX: routes mail for the domain to the platform."
	}
	return ""
}

// Required reports whether a record must verify before the domain may send.
// MAIL FROM and DMARC are recommended only, as with AutoSend and SES.
func (k RecordKey) Required() bool {
	return k == KeyOwnership || k == KeyDKIM
}

// CheckStatus is the outcome of the latest look at one record.
type CheckStatus string

// The outcomes of a record check.
const (
	// CheckUnchecked means the record has not been looked at yet.
	CheckUnchecked CheckStatus = "unchecked"
	// CheckVerified means DNS publishes the expected value.
	CheckVerified CheckStatus = "verified"
	// CheckMissing means DNS definitely has no such record (NXDOMAIN or no data).
	CheckMissing CheckStatus = "missing"
	// CheckMismatch means DNS has a record at the name, but not the expected one.
	CheckMismatch CheckStatus = "mismatch"
	// CheckTemporaryFailure means DNS could not give a definite answer (timeout,
	// SERVFAIL); such a result never changes what is known about the record.
	CheckTemporaryFailure CheckStatus = "temporary_failure"
)

// Definite reports whether the outcome is a definite answer from DNS.
func (s CheckStatus) Definite() bool {
	return s == CheckVerified || s == CheckMissing || s == CheckMismatch
}

// ProblemCode names a kind of problem with a record, such as NOT_FOUND. The
// codes are stable, since clients match on them; package dnscheck defines them,
// where the problems are found.
type ProblemCode string

// Problem is one thing wrong with a record, with a fix the customer can act on.
type Problem struct {
	// Code is a stable upper-case identifier such as NOT_FOUND.
	Code ProblemCode `json:"code"`
	// Message is one plain English sentence saying what to change.
	Message string `json:"message"`
}

// Role says which kind of DNS server a Sighting comes from.
type Role string

// The roles of the servers a check asks.
const (
	// RoleAuthoritative is a server of the zone that holds the record; it answers
	// from the zone itself, never from a cache.
	RoleAuthoritative Role = "authoritative"
	// RoleResolver is a configured recursive resolver; it may answer from a cache.
	RoleResolver Role = "resolver"
)

// Sighting is what one DNS server said of a record during a check: the
// propagation view that tells a customer whether a fix is published and only
// cached elsewhere.
type Sighting struct {
	Server string      `json:"server"` // host:port
	Role   Role        `json:"role"`
	Zone   string      `json:"zone,omitempty"` // the zone an authoritative server was asked for
	Status CheckStatus `json:"status"`         // what this server's answer alone means
	Values []string    `json:"values"`         // the values it returned
	Error  string      `json:"error,omitempty"`
}

// Record is one DNS record the customer publishes, and what domaind last saw of it.
type Record struct {
	Key      RecordKey
	Name     string // fully qualified, lower case, no trailing dot
	Type     string // "TXT", "MX", or "CNAME" (the DKIM selectors of cname mode)
	Value    string
	Priority uint16 // MX only
	Purpose  string

	// Verified is the record's flag as reported: it follows definite answers and
	// keeps its value through temporary failures.
	Verified bool
	// Status, Found and Problems describe the latest look at the record.
	Status      CheckStatus
	Found       []string
	Problems    []Problem
	Propagation []Sighting
	// Failures counts consecutive definite failures since the record last verified.
	Failures  int
	CheckedAt time.Time // zero until the first check

	CreatedAt time.Time
	UpdatedAt time.Time
}

// ShownStatus is the record's status as every front end shows it: a record
// that no check has looked at yet (a status of "") is unchecked.
func (r *Record) ShownStatus() CheckStatus {
	if r.Status == "" {
		return CheckUnchecked
	}
	return r.Status
}

// ShownPriority is the record's priority as front ends show it: only an MX
// record has one, so ok is false for any other.
func (r *Record) ShownPriority() (priority uint16, ok bool) {
	return r.Priority, r.Type == "MX"
}

// Domain is a sending domain of one project.
type Domain struct {
	ID        string // 24 lowercase hex characters
	ProjectID int64
	Name      string // normalized, see NormalizeName
	Region    string

	Status            Status
	OwnershipVerified bool
	DKIMEnabled       bool
	MailFromEnabled   bool
	DMARCEnabled      bool

	// Records holds the domain's records in display order.
	Records []Record

	CreatedAt     time.Time
	LastCheckedAt time.Time // equals CreatedAt until the first check
	VerifiedAt    time.Time // zero until first verified

	InboundEnabledAt  time.Time // zero while receiving is off
	InboundVerifiedAt time.Time // zero until the inbound MX is seen

	// The automatic re-check schedule (see Recheck).
	NextCheckAt     time.Time // zero: no automatic check is due
	CheckAttempt    int       // index into Recheck.Steps
	WindowStartedAt time.Time // start of the current verification window
	FailedAt        time.Time // set when automatic checks gave up

	// CheckingUntil is when the lease of a running check ends; zero or past when
	// no check runs, on any replica.
	CheckingUntil time.Time

	// Version is the store's count of the writes to the domain that change what
	// a check reads of it (not the checks' leases). A check's save is refused
	// when the domain's version is no longer the one the check read.
	Version int64
}

// Clone returns a copy of d that shares nothing with it that a check changes:
// its records and their found values, problems and sightings are copied.
func (d *Domain) Clone() *Domain {
	c := *d
	c.Records = slices.Clone(d.Records)
	for i := range c.Records {
		r := &c.Records[i]
		r.Found, r.Problems, r.Propagation = slices.Clone(r.Found), slices.Clone(r.Problems), slices.Clone(r.Propagation)
		for j := range r.Propagation {
			r.Propagation[j].Values = slices.Clone(r.Propagation[j].Values)
		}
	}
	return &c
}

// Record returns the domain's record with the given key, or nil.
func (d *Domain) Record(k RecordKey) *Record {
	for i := range d.Records {
		if d.Records[i].Key == k {
			return &d.Records[i]
		}
	}
	return nil
}

// NewID returns a fresh 24-character lowercase hex identifier. Like a MongoDB
// ObjectID (which AutoSend's ids are), it starts with the creation time in seconds,
// so ids sort roughly by age; the other 8 bytes come from crypto/rand.
func NewID(now time.Time) (string, error) {
	var b [12]byte
	s := uint32(now.Unix())
	b[0], b[1], b[2], b[3] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
	if _, err := rand.Read(b[4:]); err != nil {
		return "", fmt.Errorf("domain: new id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidID reports whether s has the form of a domain id: 24 lowercase hex characters.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Forms of the generated records that several packages write and must write
// alike.
const (
	// DKIMRSAPrefix starts every DKIM key record domaind generates, before
	// the base64 key: p= is the one tag receivers require (RFC 6376 section
	// 3.6.1); v= and k= are there because every panel's examples carry them.
	// The store keeps a record that starts so without its prefix (package
	// sqlstore), so the generator, the checker and the store use this one.
	DKIMRSAPrefix = "v=DKIM1; k=rsa; p="
	// MXPriority is the preference of the MX records domaind generates, the
	// MAIL FROM domain's and the inbound one.
	MXPriority = 10
)
