package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/miekg/dns"

	"github.com/domaind/domaind/internal/app"
	"github.com/domaind/domaind/internal/apptest"
	"github.com/domaind/domaind/internal/dnstest/realdns"
	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/mailtest"
	"github.com/domaind/domaind/internal/milter"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/rotation"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/store"
	"github.com/domaind/domaind/internal/store/sqlite"
	"github.com/domaind/domaind/internal/testenv"
)

const (
	customer = "customer.example"
	opZone   = "dkim.platform.example"
	tsigName = "domaind-update"
)

var masterKey = bytes.Repeat([]byte{7}, 32)

// rootZone delegates the customer's zone to the servers at custIPs and the
// operator's key zone to the server at opIP.
func rootZone(rootIP, opIP string, custIPs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 3600\n. IN SOA a.root-servers.net. hostmaster.root-servers.net. 1 3600 600 86400 3600\n")
	fmt.Fprintf(&b, ". IN NS a.root-servers.net.\na.root-servers.net. IN A %s\n", rootIP)
	for i, ip := range custIPs {
		fmt.Fprintf(&b, "%s. IN NS ns%d.%s.\nns%d.%s. IN A %s\n", customer, i+1, customer, i+1, customer, ip)
	}
	if opIP != "" {
		fmt.Fprintf(&b, "%s. IN NS ns.%s.\nns.%s. IN A %s\n", opZone, opZone, opZone, opIP)
	}
	return b.String()
}

// customerZone is the customer's zone with serial, on the servers custIPs,
// holding the records given (as records.ZoneFile writes them).
func customerZone(serial int, recs []domain.Record, custIPs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 60\n@ 3600 IN SOA ns1 hostmaster %d 3600 600 86400 5\n", serial)
	for i, ip := range custIPs {
		fmt.Fprintf(&b, "@ IN NS ns%d\nns%d IN A %s\n", i+1, i+1, ip)
	}
	if len(recs) > 0 {
		z, err := records.ZoneFile(&domain.Domain{Name: customer, Records: recs})
		if err != nil {
			panic(err)
		}
		b.Write(z)
	}
	return b.String()
}

// rig is one platform under test: its store (which outlives the apps built on
// it, as a database outlives a crashed process), the app of the moment, a
// milter signing with the store's keys, and the test's clock.
type rig struct {
	t      *testing.T
	st     store.Store
	clock  *testenv.Clock
	cfg    app.Config
	app    *app.App
	milter string
	proj   int64
	id     string
}

// faultStore makes one chosen rotation write fail once, as a crash between
// a step's DNS work and its record would: the state stays as recorded.
type faultStore struct {
	store.Store
	mu       sync.Mutex
	failNext string // "switch" or "retire"
}

var errCrash = errors.New("crash before the step was recorded")

func (f *faultStore) take(what string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext == what {
		f.failNext = ""
		return true
	}
	return false
}

func (f *faultStore) SwitchRotation(ctx context.Context, r store.Rotation, now time.Time, ev []store.Event) error {
	if f.take("switch") {
		return errCrash
	}
	return f.Store.SwitchRotation(ctx, r, now, ev)
}

func (f *faultStore) RetireRotation(ctx context.Context, r store.Rotation, revoked *domain.Record, ev []store.Event) error {
	if f.take("retire") {
		return errCrash
	}
	return f.Store.RetireRotation(ctx, r, revoked, ev)
}

func newRig(t *testing.T, rootIP string, port int, dkim rotation.Config) *rig {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, st: st, clock: testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	r.cfg = apptest.Config(masterKey)
	r.cfg.Store = &faultStore{Store: st}
	r.cfg.DNS = apptest.AuthoritativeDNS([]string{rootIP}, port)
	r.cfg.Now = r.clock.Now
	r.cfg.VerifyMinInterval = 0
	r.cfg.NoScheduler, r.cfg.NoDeliverer, r.cfg.NoRotator = true, true, true
	r.cfg.RotationPoll, r.cfg.RotationRetryBase = time.Minute, time.Minute
	r.cfg.DKIM = dkim
	r.restart(dkim)

	// The milter reads keys from the store, as serve's does: a restarted app
	// changes nothing for it.
	srv := milter.New(milter.Config{Keys: signing.New(st, mustSealer(t)), Log: app.Discard(false, nil)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	r.milter = ln.Addr().String()
	p, err := st.EnsureProject(t.Context(), "p", r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.proj = p.ID
	return r
}

func mustSealer(t *testing.T) *records.Sealer {
	s, err := records.NewSealer(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// restart closes the app and builds a new one on the same store with dkim,
// as a crashed and restarted (or reconfigured) process is.
func (r *rig) restart(dkim rotation.Config) {
	r.t.Helper()
	if r.app != nil {
		r.app.Close()
	}
	r.cfg.DKIM = dkim
	r.app = apptest.New(r.t, r.cfg)
}

// crashNext makes the next write of what fail, as a crash would.
func (r *rig) crashNext(what string) {
	fs := r.cfg.Store.(*faultStore)
	fs.mu.Lock()
	fs.failNext = what
	fs.mu.Unlock()
}

// step runs the rotation worker once, as serve's does on its ticker.
func (r *rig) step() {
	r.app.RotationWorker().RunOnce(r.t.Context())
}

func (r *rig) rotation() store.Rotation {
	r.t.Helper()
	rot, err := r.st.Rotation(r.t.Context(), r.id)
	if err != nil {
		r.t.Fatal(err)
	}
	return rot
}

func (r *rig) domain() *domain.Domain {
	r.t.Helper()
	d, err := r.st.Domain(r.t.Context(), r.proj, r.id)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// sign passes a message through the milter and returns it with the header
// fields the milter added, or with none when it signed nothing.
func (r *rig) sign() []byte {
	r.t.Helper()
	s, err := gomilter.NewClientWithOptions("tcp", r.milter, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, ActionMask: gomilter.OptAddHeader,
	}).Session()
	if err != nil {
		r.t.Fatal(err)
	}
	defer s.Close()
	hdr := [][2]string{{"From", "a@" + customer}, {"To", "b@example.net"}, {"Subject", "rotation " + r.clock.Now().String()}, {"Message-ID", "<" + r.clock.Now().Format("150405.000") + "@" + customer + ">"}}
	for _, h := range hdr {
		if _, err := s.HeaderField(h[0], h[1]); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := s.HeaderEnd(); err != nil {
		r.t.Fatal(err)
	}
	body := "Hello.\r\n"
	if _, err := s.BodyChunk([]byte(body)); err != nil {
		r.t.Fatal(err)
	}
	mods, _, err := s.End()
	if err != nil {
		r.t.Fatal(err)
	}
	var msg bytes.Buffer
	for _, m := range mods {
		if m.Code == gomilter.ActAddHeader || m.Code == gomilter.ActInsertHeader {
			fmt.Fprintf(&msg, "%s: %s\r\n", m.HeaderName, m.HeaderValue)
		}
	}
	for _, h := range hdr {
		fmt.Fprintf(&msg, "%s: %s\r\n", h[0], h[1])
	}
	msg.WriteString("\r\n" + body)
	return msg.Bytes()
}

// verify checks with dkimpy, against the DNS server dnsAddr as it is now,
// that msg carries a valid signature by selector.
func (r *rig) verify(msg []byte, dnsAddr, selector string) {
	r.t.Helper()
	if !bytes.HasPrefix(msg, []byte("DKIM-Signature:")) {
		r.t.Fatalf("%s: the milter did not sign:\n%s", r.clock.Now(), msg)
	}
	res := mailtest.VerifyDKIM(r.t, msg, dnsAddr)
	if !res.OK || res.Selector != selector {
		m := new(dns.Msg)
		m.SetQuestion(selector+"._domainkey."+customer+".", dns.TypeTXT)
		resp, err := dns.Exchange(m, dnsAddr)
		r.t.Logf("%s answers for the key: %v (%v)", dnsAddr, resp, err)
		r.t.Fatalf("%s: dkimpy at %s: ok %v, selector %q (want %q), error %s\n%s", r.clock.Now(), dnsAddr, res.OK, res.Selector, selector, res.Error, strings.Join(res.Log, "\n"))
	}
}

// eventTypes lists the domain's rotation events, oldest first.
func (r *rig) eventTypes() []string {
	r.t.Helper()
	evs, _, err := r.st.Events(r.t.Context(), r.proj, r.id, store.Page{})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(string(evs[i].Type), "domain.dkim.") {
			out = append(out, string(evs[i].Type))
		}
	}
	return out
}

func (r *rig) wantState(want domain.RotationState) store.Rotation {
	r.t.Helper()
	rot := r.rotation()
	if rot.State != want {
		r.t.Fatalf("%s: rotation state %s (attempts %d, %s), want %s", r.clock.Now(), rot.State, rot.Attempts, rot.LastError, want)
	}
	return rot
}

// pick returns the domain's records with the keys given.
func pick(d *domain.Domain, keys ...domain.RecordKey) []domain.Record {
	var out []domain.Record
	for _, rec := range d.Records {
		if slices.Contains(keys, rec.Key) {
			out = append(out, rec)
		}
	}
	return out
}

// TestRotationTXT rotates a txt-mode domain whose zone has two authoritative
// servers (two Knots) with a compressed clock, the app crashing and
// restarting between every step: the new key signs only once both servers
// publish it, every message signed along the way verifies with dkimpy at
// both servers, and the old key is revoked after --dkim-retire-after.
func TestRotationTXT(t *testing.T) {
	root := realdns.StartKnot(t, "127.0.0.81", 0, map[string]string{".": rootZone("127.0.0.81", "", "127.0.0.82", "127.0.0.83")})
	port := root.Port()
	ips := []string{"127.0.0.82", "127.0.0.83"}
	ns := []*realdns.Knot{
		realdns.StartKnot(t, ips[0], port, map[string]string{customer: customerZone(1, nil, ips...)}),
		realdns.StartKnot(t, ips[1], port, map[string]string{customer: customerZone(1, nil, ips...)}),
	}
	serial := 1
	publish := func(servers []*realdns.Knot, recs []domain.Record) {
		t.Helper()
		serial++
		for _, k := range servers {
			if err := k.SetZone(t.Context(), customer, customerZone(serial, recs, ips...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := rotation.DefaultConfig()
	r := newRig(t, root.IP(), port, cfg)
	ctx := t.Context()

	d, err := r.app.Domains().Add(ctx, r.proj, customer, "")
	if err != nil {
		t.Fatal(err)
	}
	r.id = d.ID
	base := pick(d, domain.KeyOwnership, domain.KeyDKIM)
	publish(ns, base)
	if out, err := r.app.Domains().Verify(ctx, r.proj, d.ID); err != nil || !out.Domain.CanSend() {
		t.Fatalf("verify: %v %+v", err, out.Domain)
	}
	first := r.sign()
	for _, k := range ns {
		r.verify(first, k.Addr(), "autosend")
	}

	// Rotate now: the next key exists, the customer is shown it, nothing
	// signs with it.
	rot, err := r.app.Domains().RotateDKIM(ctx, r.proj, d.ID)
	if err != nil || rot.State != domain.RotationGenerated || rot.NextSelector != "autosend2" {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	if _, err := r.app.Domains().RotateDKIM(ctx, r.proj, d.ID); err == nil {
		t.Fatal("a second rotate-now while one runs succeeded")
	}
	next := r.domain().Record(domain.KeyDKIMNext)
	if next == nil || next.Name != "autosend2._domainkey."+customer {
		t.Fatalf("dkim_next record: %+v", next)
	}
	r.restart(cfg)
	r.step()
	r.wantState(domain.RotationGenerated)
	r.verify(r.sign(), ns[0].Addr(), "autosend")

	// Published on one of the two servers only: receivers asking the other
	// would not find it, so signing must not switch.
	publish(ns[:1], append(slices.Clone(base), *next))
	for range 3 {
		r.clock.Advance(2 * time.Minute)
		r.restart(cfg)
		r.step()
		r.wantState(domain.RotationGenerated)
		msg := r.sign()
		for _, k := range ns {
			r.verify(msg, k.Addr(), "autosend")
		}
	}

	// On both: the key is visible. A crash after that is recorded and before
	// the switch is recorded resumes at visible, once the claim's lease ends.
	publish(ns, append(slices.Clone(base), *next))
	r.clock.Advance(2 * time.Minute)
	r.crashNext("switch")
	r.step()
	r.wantState(domain.RotationVisible)
	r.verify(r.sign(), ns[1].Addr(), "autosend")
	r.restart(cfg)
	r.step() // the lease has not ended: nothing runs
	r.wantState(domain.RotationVisible)
	r.clock.Advance(3 * time.Minute)
	r.step()
	rot2 := r.wantState(domain.RotationSwitched)
	if rot2.CurrentSelector != "autosend2" || rot2.PrevSelector != "autosend" || !rot2.RetireAt.Equal(rot2.SwitchedAt.Add(7*24*time.Hour)) {
		t.Fatalf("after switch: %+v", rot2)
	}
	switched := r.sign()
	for _, k := range ns {
		r.verify(switched, k.Addr(), "autosend2")
		r.verify(first, k.Addr(), "autosend") // mail in transit still verifies
	}
	// `domaind dkim export` hands signers the new key from the switch on.
	keys, err := signing.New(r.st, mustSealer(t)).All(ctx)
	if err != nil || len(keys) != 1 || keys[0].Selector != "autosend2" {
		t.Fatalf("exported keys after the switch: %+v, %v", keys, err)
	}
	dd := r.domain()
	if cur, prev := dd.Record(domain.KeyDKIM), dd.Record(domain.KeyDKIMPrevious); cur == nil || cur.Name != next.Name || cur.Value != next.Value || !cur.Verified || prev == nil || prev.Name != "autosend._domainkey."+customer || dd.Record(domain.KeyDKIMNext) != nil {
		t.Fatalf("records after switch: %+v", dd.Records)
	}

	// Before the retire time nothing changes; after it, the old key is shown
	// revoked. A crash before the retirement is recorded repeats it.
	r.clock.Advance(6 * 24 * time.Hour)
	r.restart(cfg)
	r.step()
	r.wantState(domain.RotationSwitched)
	r.clock.Advance(24 * time.Hour)
	r.crashNext("retire")
	r.step()
	r.wantState(domain.RotationRetiring)
	r.restart(cfg)
	r.clock.Advance(3 * time.Minute)
	r.step()
	done := r.wantState(domain.RotationIdle)
	if done.StepAt != done.CurrentSince.Add(180*24*time.Hour) {
		t.Fatalf("next rotation due %s, want 180 days after %s", done.StepAt, done.CurrentSince)
	}
	prev := r.domain().Record(domain.KeyDKIMPrevious)
	if prev == nil || prev.Value != "v=DKIM1; p=" {
		t.Fatalf("previous record after retirement: %+v", prev)
	}
	publish(ns, append(pick(r.domain(), domain.KeyOwnership, domain.KeyDKIM), *prev))
	for _, k := range ns {
		r.verify(r.sign(), k.Addr(), "autosend2")
	}
	want := []string{"domain.dkim.rotation.started", "domain.dkim.rotation.waiting", "domain.dkim.rotation.visible",
		"domain.dkim.rotation.switched", "domain.dkim.rotation.retired"}
	if got := r.eventTypes(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestRotationCNAME runs cname mode against a real Knot that serves both the
// customer's zone and the operator's key zone, which domaind writes by RFC
// 2136 with TSIG: the first key signs only once published, a rotation whose
// updates fail (server down, wrong TSIG key) retries with back-off and never
// switches, and after the fix the rotation completes, then repeats by itself
// after --dkim-rotate-every, each message verifying with dkimpy through a
// resolver that follows the customer's CNAMEs.
// cnameEnv is cname mode's DNS: a root, one Knot serving the customer's zone
// and the operator's key zone (which takes TSIG-signed updates), and an
// Unbound that follows the customer's CNAMEs, as a receiver's resolver does.
type cnameEnv struct {
	root, srv *realdns.Knot
	resolver  *realdns.Unbound
	cfg       rotation.Config
	r         *rig
	d         *domain.Domain
}

// newCNAMEEnv starts the servers on 127.0.0.<net+1..3> and adds the domain;
// the customer publishes its ownership record and the CNAMEs of keys (once,
// never again) and the domain is verified.
func newCNAMEEnv(t *testing.T, net int, keys ...domain.RecordKey) *cnameEnv {
	ip := func(i int) string { return fmt.Sprintf("127.0.0.%d", net+i) }
	e := &cnameEnv{}
	e.root = realdns.StartKnot(t, ip(1), 0, map[string]string{".": rootZone(ip(1), ip(2), ip(2))})
	e.srv = realdns.StartKnotWithUpdates(t, ip(2), e.root.Port(), map[string]string{
		customer: customerZone(1, nil, ip(2)),
		opZone:   operatorZone(ip(2)),
	}, realdns.UpdateKey{Algorithm: "hmac-sha256", Name: tsigName, Secret: testSecret}, opZone)
	stub := fmt.Sprintf("%s@%d", e.srv.IP(), e.srv.Port())
	e.resolver = realdns.StartUnbound(t, ip(3), 0, map[string]string{customer: stub, opZone: stub})
	good, err := rotation.ParseTSIG("hmac-sha256:" + tsigName + ":" + testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = rotation.DefaultConfig()
	e.cfg.Mode, e.cfg.Zone, e.cfg.Server, e.cfg.TSIG = domain.DKIMModeCNAME, opZone, e.srv.Addr(), good
	e.r = newRig(t, e.root.IP(), e.root.Port(), e.cfg)
	ctx := t.Context()
	if e.d, err = e.r.app.Domains().Add(ctx, e.r.proj, customer, ""); err != nil {
		t.Fatal(err)
	}
	e.r.id = e.d.ID
	if err := e.srv.SetZone(ctx, customer, customerZone(2, pick(e.d, append(keys, domain.KeyOwnership)...), ip(2))); err != nil {
		t.Fatal(err)
	}
	if out, err := e.r.app.Domains().Verify(ctx, e.r.proj, e.d.ID); err != nil || !out.Domain.CanSend() {
		t.Fatalf("verify: %v %+v", err, out.Domain)
	}
	return e
}

// verify flushes the resolver first, so that dkimpy sees the DNS of the
// moment, and has it check msg's signature by selector.
func (e *cnameEnv) verify(t *testing.T, msg []byte, sel string) {
	t.Helper()
	if err := e.resolver.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.r.verify(msg, e.resolver.Addr(), sel)
}

func TestRotationCNAME(t *testing.T) {
	e := newCNAMEEnv(t, 90, domain.KeyDKIM, domain.KeyDKIM2)
	r, d, srv, cfg, ctx := e.r, e.d, e.srv, e.cfg, t.Context()
	c1, c2 := d.Record(domain.KeyDKIM), d.Record(domain.KeyDKIM2)
	if c1 == nil || c1.Type != "CNAME" || c1.Value != "autosend."+customer+"."+opZone || c2 == nil || c2.Name != "autosend2._domainkey."+customer {
		t.Fatalf("cname records: %+v", d.Records)
	}
	// The CNAMEs verify, but the key they lead to is not published yet:
	// nothing may be signed.
	if msg := r.sign(); bytes.HasPrefix(msg, []byte("DKIM-Signature:")) {
		t.Fatal("signed before the key was published in the operator's zone")
	}
	r.step()
	rot := r.wantState(domain.RotationIdle)
	if rot.CurrentVisibleAt.IsZero() {
		t.Fatalf("first key not recorded visible: %+v", rot)
	}
	e.verify(t, r.sign(), "autosend")

	// Rotate now with the update server down, then with a wrong TSIG key:
	// each failed update is recorded, retried after a growing back-off, and
	// signing stays on the current key.
	down := cfg
	down.Server = "127.0.0.94:" + fmt.Sprint(testenv.FreePort(t, "127.0.0.94"))
	r.restart(down)
	if _, err := r.app.Domains().RotateDKIM(ctx, r.proj, d.ID); err != nil {
		t.Fatal(err)
	}
	r.step()
	failed := r.wantState(domain.RotationGenerated)
	if failed.Attempts != 1 || failed.LastError == "" || !failed.StepAt.Equal(r.clock.Now().Truncate(time.Millisecond).Add(time.Minute)) {
		t.Fatalf("after a failed update: %+v", failed)
	}
	r.step() // not due yet
	if got := r.rotation().Attempts; got != 1 {
		t.Fatalf("retried before the back-off: attempts %d", got)
	}
	e.verify(t, r.sign(), "autosend")
	wrong := cfg
	wrong.TSIG, _ = rotation.ParseTSIG("hmac-sha256:" + tsigName + ":" + wrongSecret)
	r.restart(wrong)
	r.clock.Advance(time.Minute)
	r.step()
	failed = r.wantState(domain.RotationGenerated)
	if failed.Attempts != 2 || !failed.StepAt.Equal(r.clock.Now().Truncate(time.Millisecond).Add(2*time.Minute)) || !failed.PublishedAt.IsZero() {
		t.Fatalf("after the second failed update: %+v", failed)
	}
	if got := txtAt(t, srv.Addr(), "autosend2."+customer+"."+opZone); len(got) != 0 {
		t.Fatalf("a refused update published %q", got)
	}
	e.verify(t, r.sign(), "autosend")

	// Fixed: the next key is published, seen, and signs.
	r.restart(cfg)
	r.clock.Advance(2 * time.Minute)
	r.step()
	sw := r.wantState(domain.RotationSwitched)
	if sw.CurrentSelector != "autosend2" || sw.Attempts != 0 {
		t.Fatalf("after the fix: %+v", sw)
	}
	switched := r.sign()
	e.verify(t, switched, "autosend2")

	// After the retire time the old key is removed from the operator's zone;
	// a crash after the removal and before it is recorded removes it again.
	r.clock.Advance(7*24*time.Hour + time.Second)
	r.restart(cfg)
	r.crashNext("retire")
	r.step()
	r.wantState(domain.RotationRetiring)
	if got := txtAt(t, srv.Addr(), "autosend."+customer+"."+opZone); len(got) != 0 {
		t.Fatalf("retired key still published: %q", got)
	}
	e.verify(t, switched, "autosend2")
	r.restart(cfg)
	r.clock.Advance(3 * time.Minute)
	r.step()
	r.wantState(domain.RotationIdle)
	if got := txtAt(t, srv.Addr(), "autosend."+customer+"."+opZone); len(got) != 0 {
		t.Fatalf("retired key still published: %q", got)
	}
	e.verify(t, switched, "autosend2")

	// --dkim-rotate-every later, the next rotation needs no one: back to the
	// first selector, with a new key.
	r.clock.Advance(180 * 24 * time.Hour)
	r.restart(cfg)
	r.step()
	again := r.wantState(domain.RotationSwitched)
	if again.CurrentSelector != "autosend" || again.Reason != "scheduled" || again.CurrentValue == rot.CurrentValue {
		t.Fatalf("scheduled rotation: %+v", again)
	}
	e.verify(t, r.sign(), "autosend")
	if cur := r.domain().Record(domain.KeyDKIM); cur.Name != "autosend._domainkey."+customer || cur.Type != "CNAME" {
		t.Fatalf("dkim record after two rotations: %+v", cur)
	}

	want := []string{"domain.dkim.rotation.started", "domain.dkim.update_failed", "domain.dkim.update_failed",
		"domain.dkim.rotation.published", "domain.dkim.rotation.visible", "domain.dkim.rotation.switched", "domain.dkim.rotation.retired",
		"domain.dkim.rotation.started", "domain.dkim.rotation.published", "domain.dkim.rotation.visible", "domain.dkim.rotation.switched"}
	if got := r.eventTypes(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	// Every event's payload says which step it is.
	evs, _, _ := r.st.Events(ctx, r.proj, r.id, store.Page{Limit: 1})
	var p struct {
		Type string `json:"type"`
		Data struct {
			State, Selector, Mode string
		} `json:"data"`
	}
	if err := json.Unmarshal(evs[0].Payload, &p); err != nil || p.Type != "domain.dkim.rotation.switched" || p.Data.State != "switched" || p.Data.Selector != "autosend" || p.Data.Mode != "cname" {
		t.Fatalf("last event payload %s: %v", evs[0].Payload, err)
	}

	// Deleting the domain removes its keys from the operator's zone.
	for _, sel := range []string{"autosend", "autosend2"} {
		if got := txtAt(t, srv.Addr(), sel+"."+customer+"."+opZone); sel == "autosend" && len(got) != 1 {
			t.Fatalf("current key at %s before delete: %q", sel, got)
		}
	}
	if err := r.app.Domains().Delete(ctx, r.proj, r.id); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"autosend", "autosend2"} {
		if got := txtAt(t, srv.Addr(), sel+"."+customer+"."+opZone); len(got) != 0 {
			t.Fatalf("key at %s after the domain was deleted: %q", sel, got)
		}
	}
}

// TestRotationCNAMEWaitsForSecondCNAME: a customer who published only the
// first CNAME is reminded of the second, and signing never switches to a key
// receivers would not reach, however long the next key sits published in
// the operator's zone.
func TestRotationCNAMEWaitsForSecondCNAME(t *testing.T) {
	e := newCNAMEEnv(t, 100, domain.KeyDKIM)
	r, ctx := e.r, t.Context()
	r.step()
	r.wantState(domain.RotationIdle)
	if _, err := r.app.Domains().RotateDKIM(ctx, r.proj, r.id); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.step()
		rot := r.wantState(domain.RotationGenerated)
		if rot.PublishedAt.IsZero() {
			t.Fatalf("next key not published: %+v", rot)
		}
		e.verify(t, r.sign(), "autosend")
		r.clock.Advance(25 * time.Hour)
	}
	want := []string{"domain.dkim.rotation.started", "domain.dkim.rotation.published",
		"domain.dkim.rotation.waiting", "domain.dkim.rotation.waiting", "domain.dkim.rotation.waiting"}
	if got := r.eventTypes(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	evs, _, _ := r.st.Events(ctx, r.proj, r.id, store.Page{Limit: 1})
	if !strings.Contains(string(evs[0].Payload), `"record":{"name":"autosend2._domainkey.`+customer+`","type":"CNAME","value":"autosend2.`+customer+"."+opZone+`"}`) {
		t.Fatalf("waiting event does not name the CNAME to publish: %s", evs[0].Payload)
	}
}
