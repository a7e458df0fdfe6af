package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/publicaddr"
)

// The work budget of one check. Tenants run the name servers a check talks to, so
// every answer may be hostile: a referral with hundreds of name servers, glue that
// points into domaind's own network, name servers that only exist through each
// other. Like a recursive resolver, a check therefore has a budget for everything
// an answer can make it do, and a check that reaches one ends with a temporary
// problem (CodeBudget) instead of doing the work.
const (
	// maxNSNames bounds the name servers of one zone taken from a referral, after
	// duplicates are removed. Thirteen is what fits a classic 512-byte referral and
	// what the root and the largest TLDs use.
	maxNSNames = 13
	// maxAddrsPerNS bounds the addresses taken for one name server, after
	// duplicates are removed.
	maxAddrsPerNS = 4
	// maxZoneServers bounds the server addresses kept for one zone, and so the
	// servers asked for one record and the entries of its propagation view. They
	// are chosen one address per name server first, so that every name server
	// is asked before any is asked twice.
	maxZoneServers = 8
	// maxNSLookups bounds the name servers without glue whose addresses one
	// referral may cause domaind to look up. NXNSAttack (Shafir, Afek and
	// Bremler-Barr, 2020) amplifies through resolvers that look up every one of
	// a referral's glueless names; BIND 9.16.3 (CVE-2020-8616) and Unbound 1.10.1
	// (CVE-2020-12662) answered by bounding those fetches per referral.
	maxNSLookups = 3
	// maxCheckNSLookups bounds those lookups across one check.
	maxCheckNSLookups = 24
	// maxCheckReferrals bounds the delegations one check follows. Unbound allows
	// 130 for one question (MAX_REFERRAL_COUNT in iterator/iterator.h); a check
	// shares the zones it found between its questions, so it needs far fewer.
	maxCheckReferrals = 100
	// maxCheckCNAMEs bounds the CNAMEs one check follows across zones; one record
	// follows at most maxCNAMEs, as Unbound restarts a question at most 8 times
	// (MAX_RESTART_COUNT).
	maxCheckCNAMEs = 64
	// maxCheckQueries bounds the queries one check sends, to authoritative
	// servers and resolvers alike. Unbound sends at most 32 for one question
	// (MAX_SENT_COUNT); a check asks a few dozen questions, each of every server
	// of a zone, and an SPF evaluation up to spfMaxQueries more.
	maxCheckQueries = 1000
	// maxCheckInFlight bounds the queries of one check waiting for an answer at
	// once. Each holds at most one answer (64 KiB read, maxMsgRRs records
	// parsed), so this bounds the memory a check needs for answers it has not
	// reduced yet.
	maxCheckInFlight = 16
	// maxAnswerRRs bounds the records of the asked type one answer may hold for a
	// check; an answer with more is not used (a temporary failure), since no
	// record domaind checks needs more and keeping only some could change the
	// verdict.
	maxAnswerRRs = 64
	// maxCheckKept bounds the bytes of records one check keeps from its answers
	// (the records of the asked types, as reduced for the checks).
	maxCheckKept = 4 << 20

	// DefaultServerConcurrency is the default bound on the queries in flight to
	// one authoritative server address across a Checker.
	DefaultServerConcurrency = 8
)

// Reasons a query was not sent or an answer not used. Each is temporary: it says
// nothing about whether a record exists.
var (
	// errBudget means the check reached one of its bounds.
	errBudget = errors.New("dns: check budget exceeded")
	// errPrivate means a server learned from DNS has an address that is not
	// public, and Config.AllowPrivate is off.
	errPrivate = errors.New("dns: private address not queried")
	// errLoop means a CNAME chain or the name servers of a delegation loop.
	errLoop = errors.New("dns: loop")
	// errBusy means an authoritative server had as many queries of domaind's in
	// flight as Config.ServerConcurrency allows, for longer than a query timeout.
	errBusy = errors.New("dns: server busy")
)

// budget counts the work of one check. Its counters only grow; spend fails once
// a counter would pass its bound.
type budget struct {
	queries   atomic.Int64
	referrals atomic.Int64
	nsLookups atomic.Int64
	cnames    atomic.Int64
	kept      atomic.Int64
	inFlight  chan struct{}
	// peakInFlight is the most queries of the check in flight at once.
	peakInFlight atomic.Int64
}

func newBudget() *budget {
	return &budget{inFlight: make(chan struct{}, maxCheckInFlight)}
}

// spend adds n to counter and fails with errBudget when that passes limit.
func spend(counter *atomic.Int64, n, limit int64, what string) error {
	if counter.Add(n) > limit {
		return fmt.Errorf("%w: more than %d %s", errBudget, limit, what)
	}
	return nil
}

// send reserves one query of the budget and a place among the check's queries in
// flight; release gives the place back.
func (b *budget) send(ctx context.Context) (release func(), err error) {
	if err := spend(&b.queries, 1, maxCheckQueries, "DNS queries for one check"); err != nil {
		return nil, err
	}
	select {
	case b.inFlight <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting to send: %w", ErrTimeout, ctx.Err())
	}
	n := int64(len(b.inFlight))
	for {
		p := b.peakInFlight.Load()
		if n <= p || b.peakInFlight.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { <-b.inFlight }, nil
}

// keep charges the records an answer keeps for the check to its budget.
func (b *budget) keep(rrs []dns.RR) error {
	n := 0
	for _, rr := range rrs {
		n += rrSize(rr)
	}
	return spend(&b.kept, int64(n), maxCheckKept, "bytes of DNS records kept for one check")
}

// rrSize estimates the bytes a parsed record holds: its strings and a fixed
// overhead for the structures around them.
func rrSize(rr dns.RR) int {
	n := 64 + len(rr.Header().Name)
	switch rr := rr.(type) {
	case *dns.TXT:
		for _, s := range rr.Txt {
			n += 16 + len(s)
		}
	case *dns.MX:
		n += len(rr.Mx)
	case *dns.CNAME:
		n += len(rr.Target)
	case *dns.NS:
		n += len(rr.Ns)
	case *dns.A:
		n += len(rr.A)
	case *dns.AAAA:
		n += len(rr.AAAA)
	default:
		n += int(rr.Header().Rdlength)
	}
	return n
}

// serverSlots bounds the queries in flight to each authoritative server across a
// Checker, so that one tenant's slow or silent name server cannot hold every
// worker of the verifier: its checks wait for one of its few places, and time out
// there, while checks of domains on other servers go on.
type serverSlots struct {
	mu    sync.Mutex
	limit int
	m     map[string]*serverSlot
	// peak is the most queries in flight to any one server at once.
	peak atomic.Int64
	// busy counts queries given up because their server stayed full.
	busy atomic.Int64
}

type serverSlot struct {
	sem  chan struct{}
	refs int // queries holding or waiting for a place; the entry goes at zero
}

// acquire waits at most wait for a place among server's queries in flight. It
// fails with errBusy when none came free in that time. The wait is bounded by one
// query timeout: a server that keeps its places that long is one whose answers
// would time out anyway, and a check that gives up ends and backs off instead of
// holding its worker.
func (s *serverSlots) acquire(ctx context.Context, server string, wait time.Duration) (func(), error) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]*serverSlot)
	}
	slot := s.m[server]
	if slot == nil {
		slot = &serverSlot{sem: make(chan struct{}, s.limit)}
		s.m[server] = slot
	}
	slot.refs++
	s.mu.Unlock()

	done := func() {
		s.mu.Lock()
		slot.refs--
		if slot.refs == 0 {
			delete(s.m, server)
		}
		s.mu.Unlock()
	}
	var err error
	select {
	case slot.sem <- struct{}{}:
	default:
		t := time.NewTimer(wait)
		select {
		case slot.sem <- struct{}{}:
		case <-t.C:
			s.busy.Add(1)
			err = fmt.Errorf("%w: %s already has %d queries of domaind's waiting for an answer", errBusy, server, s.limit)
		case <-ctx.Done():
			err = fmt.Errorf("%w: waiting for %s: %w", ErrTimeout, server, ctx.Err())
		}
		t.Stop()
	}
	if err != nil {
		done()
		return nil, err
	}
	n := int64(len(slot.sem))
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() {
		<-slot.sem
		done()
	}, nil
}

// privateReason says why server (host:port) must not be queried: a reason when
// its address is not public, unless it is one the operator configured or
// AllowPrivate is set; "" when it may be queried.
func (c *Checker) privateReason(server string) string {
	if c.cfg.AllowPrivate {
		return ""
	}
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return "not an address"
	}
	if c.trusted[host] {
		return ""
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "not an IP address"
	}
	return publicaddr.Reason(addr)
}
