// Package signing hands the platform's mail signers the DKIM keys domaind made. It
// decides which key signs a message (the From domain's, or its closest parent's,
// whose DKIM record receivers can find), opens sealed keys once and keeps them, and
// fixes how domaind signs, so that the milter and the key export agree.
package signing

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
)

// Source lists the domains whose DKIM record verified; store.Store is one.
type Source interface {
	SigningKeys(ctx context.Context, names []string) ([]store.SigningKey, error)
}

// Key is a DKIM private key and where its public half is published.
type Key struct {
	DomainID  string
	ProjectID int64
	Domain    string // d=
	Selector  string // s=
	Private   *rsa.PrivateKey
}

// maxParents bounds how many names For asks about: the From domain and its
// parents, closest first. Real sending domains are a few labels deep; a From
// header with a hundred labels must not become a hundred-name query.
const maxParents = 8

// maxOpened bounds the opened keys kept in memory (about 2 KiB each for RSA-2048).
const maxOpened = 10000

// Keys finds and opens signing keys. It is safe for concurrent use.
type Keys struct {
	src    Source
	sealer *records.Sealer

	mu sync.Mutex
	// opened holds unsealed keys by domain id, with a digest of the sealed bytes
	// they came from, so that a replaced key is opened afresh. Entries of domains
	// that stop signing are dropped by the next All; at most maxOpened are kept.
	opened map[string]openedKey
}

type openedKey struct {
	sealed [32]byte
	key    *rsa.PrivateKey
}

// New returns Keys that list domains from src and open their keys with sealer.
func New(src Source, sealer *records.Sealer) *Keys {
	return &Keys{src: src, sealer: sealer, opened: make(map[string]openedKey)}
}

// ErrNoKey is returned by For when neither the name nor any parent of it has a
// DKIM record that verified at its last check.
var ErrNoKey = errors.New("signing: no verified DKIM key for the domain")

// Candidates returns the names whose key may sign mail from name: name itself and
// its parents, closest first, down to two labels and at most maxParents of them.
// name is lower-cased and loses one trailing dot, as From domains are compared.
func Candidates(name string) []string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var out []string
	for name != "" && strings.Contains(name, ".") && len(out) < maxParents {
		out = append(out, name)
		_, name, _ = strings.Cut(name, ".")
	}
	return out
}

// For returns the key that signs mail whose RFC 5322 From domain is name: the key
// of the closest of name and its parents whose DKIM record verified at the last
// check. A parent's key gives d=<parent>, which DMARC's relaxed alignment accepts
// (RFC 7489 section 3.1.1). When two projects have verified the same name, the one
// checked most recently wins: receivers find one key at a selector, and the latest
// check to verify is the one that saw it.
func (k *Keys) For(ctx context.Context, name string) (Key, error) {
	names := Candidates(name)
	if len(names) == 0 {
		return Key{}, ErrNoKey
	}
	rows, err := k.src.SigningKeys(ctx, names)
	if err != nil {
		return Key{}, fmt.Errorf("signing: keys for %s: %w", name, err)
	}
	for _, n := range names {
		// Rows come ordered by name and then most recently checked first.
		i := slices.IndexFunc(rows, func(r store.SigningKey) bool { return r.Domain == n })
		if i >= 0 {
			return k.open(rows[i])
		}
	}
	return Key{}, ErrNoKey
}

// All returns one key per domain name that may sign now, by name, choosing among
// projects as For does. It also forgets opened keys of domains that no longer sign.
func (k *Keys) All(ctx context.Context) ([]Key, error) {
	rows, err := k.src.SigningKeys(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("signing: keys: %w", err)
	}
	var out []Key
	keep := make(map[string]bool, len(rows))
	for i, r := range rows {
		if i > 0 && rows[i-1].Domain == r.Domain {
			continue
		}
		key, err := k.open(r)
		if err != nil {
			return nil, err
		}
		keep[r.DomainID] = true
		out = append(out, key)
	}
	k.mu.Lock()
	for id := range k.opened {
		if !keep[id] {
			delete(k.opened, id)
		}
	}
	k.mu.Unlock()
	return out, nil
}

// open unseals a row's key, or returns the one opened before from the same bytes.
func (k *Keys) open(r store.SigningKey) (Key, error) {
	key := Key{DomainID: r.DomainID, ProjectID: r.ProjectID, Domain: r.Domain, Selector: r.Selector}
	sum := sha256.Sum256(r.Sealed)
	k.mu.Lock()
	o, ok := k.opened[r.DomainID]
	k.mu.Unlock()
	if ok && o.sealed == sum {
		key.Private = o.key
		return key, nil
	}
	stored, err := k.sealer.Open(r.Sealed, r.DomainID)
	if err != nil {
		return Key{}, fmt.Errorf("signing: key of %s: %w", r.Domain, err)
	}
	priv, err := records.ParseStoredKey(stored)
	clear(stored)
	if err != nil {
		return Key{}, fmt.Errorf("signing: key of %s: %w", r.Domain, err)
	}
	k.mu.Lock()
	if len(k.opened) >= maxOpened {
		// The milter only ever adds to the cache (All prunes it; For cannot
		// tell a domain that stopped signing from one that sent no mail), so
		// past the bound one entry, whichever the map gives first, makes room:
		// at worst a key is opened again.
		for id := range k.opened {
			delete(k.opened, id)
			break
		}
	}
	k.opened[r.DomainID] = openedKey{sealed: sum, key: priv}
	k.mu.Unlock()
	key.Private = priv
	return key, nil
}

// signedHeaders are the header fields domaind signs when a message has them: RFC
// 6376 section 5.4.1's list, plus the list and MIME fields OpenDKIM signs by
// default. Received and Return-Path are left out: they change in transit.
var signedHeaders = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID",
	"In-Reply-To", "References", "Sender", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
}

// HeaderKeys returns the h= list for a message whose header field names are
// present (any case, repeats allowed): every present field of signedHeaders, as
// many times as it occurs, and From once more than it occurs, so that a From
// added in transit breaks the signature (over-signing, RFC 6376 section 8.15).
func HeaderKeys(present []string) []string {
	count := make(map[string]int, len(present))
	for _, p := range present {
		count[strings.ToLower(p)]++
	}
	var out []string
	for _, h := range signedHeaders {
		n := count[strings.ToLower(h)]
		if h == "From" {
			n++
		}
		for range n {
			out = append(out, h)
		}
	}
	return out
}

// Options returns how domaind signs with key a message whose header field names
// are present: rsa-sha256 (RFC 8301), relaxed/relaxed, d= and s= from the key,
// no i= (it defaults to @d=), and HeaderKeys' h=.
func Options(key Key, present []string) *dkim.SignOptions {
	return &dkim.SignOptions{
		Domain:                 key.Domain,
		Selector:               key.Selector,
		Signer:                 key.Private,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             HeaderKeys(present),
	}
}
