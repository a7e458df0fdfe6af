package milter_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/domaind/domaind/internal/milter"
	"github.com/domaind/domaind/internal/signing"
	"github.com/domaind/domaind/internal/testenv"
)

// counter is an Observer that counts results, as /metrics does.
type counter struct{ testenv.Counter }

func (c *counter) MilterMessage(r string) { c.Add(r) }

func (c *counter) MilterSessions(int) {}

func (c *counter) get(r milter.Result) int { return c.Get(string(r)) }

// keys is a KeySource with one key, for example.com; a lookup of a failing
// domain fails as an unreachable database would.
type keys struct{ key signing.Key }

func (k keys) For(_ context.Context, name string) (signing.Key, error) {
	for _, c := range signing.Candidates(name) {
		switch c {
		case k.key.Domain:
			return k.key, nil
		case "failing.example":
			return signing.Key{}, errors.New("store: connection refused")
		}
	}
	return signing.Key{}, signing.ErrNoKey
}

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	return k
}()

// fixture is a milter server on loopback with the test key.
type fixture struct {
	t    *testing.T
	srv  *milter.Server
	addr string
	obs  *counter
}

func start(t *testing.T, cfg milter.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, obs: &counter{}}
	if cfg.Keys == nil {
		cfg.Keys = keys{signing.Key{Domain: "example.com", Selector: "s1", Private: testKey}}
	}
	cfg.Observer = f.obs
	f.srv = milter.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != milter.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return f
}

// session opens a client session as Postfix would: offering every action and
// protocol step.
func (f *fixture) session() *gomilter.ClientSession {
	f.t.Helper()
	c := gomilter.NewClientWithOptions("tcp", f.addr, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader,
	})
	s, err := c.Session()
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

type result struct {
	action  gomilter.ActionCode
	mods    []gomilter.ModifyAction
	message []byte // the message as the MTA would deliver it: signature first
}

// send passes one message through s, header fields in order, then the body in
// chunks.
func send(t *testing.T, s *gomilter.ClientSession, header [][2]string, body io.Reader) result {
	t.Helper()
	var msg bytes.Buffer
	for _, h := range header {
		act, err := s.HeaderField(h[0], h[1])
		if err != nil {
			t.Fatal(err)
		}
		if act.Code != gomilter.ActContinue {
			return result{action: act.Code}
		}
		msg.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	act, err := s.HeaderEnd()
	if err != nil {
		t.Fatal(err)
	}
	if act.Code != gomilter.ActContinue {
		return result{action: act.Code}
	}
	// Keep at most the first MiB of the body for verification; large bodies
	// are checked against their own hash elsewhere.
	keep := &limited{w: &msg, n: 1 << 20}
	mods, act, err := s.BodyReadFrom(io.TeeReader(body, keep))
	if err != nil {
		t.Fatal(err)
	}
	r := result{action: act.Code, mods: mods}
	for _, m := range mods {
		if m.Code == gomilter.ActInsertHeader && m.HeaderName == "DKIM-Signature" {
			r.message = append([]byte("DKIM-Signature: "+strings.ReplaceAll(m.HeaderValue, "\n", "\r\n")+"\r\n"), msg.Bytes()...)
		}
	}
	return r
}

type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// verifySig checks a signed message with go-msgauth's verifier against the test
// key's record, and returns the signature's tags.
func verifySig(t *testing.T, msg []byte) *dkim.Verification {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&testKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "s1._domainkey.example.com" {
				return nil, errors.New("no such name " + name)
			}
			return []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)}, nil
		},
	})
	if err != nil || len(vs) != 1 {
		t.Fatalf("verify: %v, %d signatures", err, len(vs))
	}
	if vs[0].Err != nil {
		t.Fatalf("signature does not verify: %v\n%s", vs[0].Err, msg)
	}
	return vs[0]
}

func TestSigns(t *testing.T) {
	f := start(t, milter.Config{})
	s := f.session()
	header := [][2]string{
		{"Received", "from client by mta; Mon, 1 Jan 2026 00:00:00 +0000"},
		{"From", "Alice <alice@example.com>"},
		{"To", "bob@example.org"},
		{"cc", "carol@example.org,\n\tdave@example.org"},
		{"Subject", "Hello   there"},
		{"Date", "Mon, 1 Jan 2026 00:00:00 +0000"},
		{"X-Mailer", "test"},
		{"Message-ID", "<1@example.com>"},
	}
	r := send(t, s, header, strings.NewReader("Hello  world \r\n\r\n\r\n"))
	if r.action != gomilter.ActAccept || r.message == nil {
		t.Fatalf("action %c, modifications %+v; want the signature inserted and accept", r.action, r.mods)
	}
	if len(r.mods) != 1 || r.mods[0].HeaderIndex != 0 {
		t.Errorf("modifications %+v, want one insert at index 0", r.mods)
	}
	v := verifySig(t, r.message)
	if v.Domain != "example.com" {
		t.Errorf("d=%s", v.Domain)
	}
	// Signed: the fields of signing.HeaderKeys that are present, From once more;
	// not Received or X-Mailer.
	want := "From:From:Subject:Date:To:Cc:Message-ID"
	if !strings.Contains(strings.Join(strings.Fields(string(r.message)), ""), "h="+want+";") {
		t.Errorf("signature does not sign h=%s:\n%s", want, r.message)
	}
	for _, tag := range []string{"a=rsa-sha256;", "c=relaxed/relaxed;", "s=s1;", "d=example.com;"} {
		if !bytes.Contains(r.message, []byte(tag)) {
			t.Errorf("signature lacks %s:\n%s", tag, r.message)
		}
	}

	// The next message of the connection is handled afresh; so is one after an
	// abort.
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeaderField("From", "x@example.net"); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	r = send(t, s, [][2]string{{"From", "a@sub.example.com"}, {"Subject", "2"}}, strings.NewReader("two\r\n"))
	if r.message == nil {
		t.Fatalf("second message: action %c, no signature", r.action)
	}
	verifySig(t, r.message)
	if got := f.obs.get(milter.ResultSigned); got != 2 {
		t.Errorf("counted %d signed, want 2", got)
	}
}

// TestBadInput: messages domaind does not sign pass on unsigned (accept, so that
// the MTA does not send the body) and are counted by reason; a key that cannot
// be looked up defers the message.
func TestBadInput(t *testing.T) {
	f := start(t, milter.Config{})
	many := make([][2]string, 1001)
	for i := range many {
		many[i] = [2]string{"X-Filler", "x"}
	}
	for _, tc := range []struct {
		name   string
		header [][2]string
		action gomilter.ActionCode
		result milter.Result
	}{
		{"no From", [][2]string{{"To", "b@example.org"}, {"Subject", "x"}}, gomilter.ActAccept, milter.ResultNoFrom},
		{"two From fields", [][2]string{{"From", "a@example.com"}, {"FROM", "b@example.com"}}, gomilter.ActAccept, milter.ResultMultipleFrom},
		{"authors in two domains", [][2]string{{"From", "a@example.com, b@example.org"}, {"Sender", "a@example.com"}}, gomilter.ActAccept, milter.ResultMultipleFrom},
		{"unparseable From", [][2]string{{"From", "<<<@@@"}}, gomilter.ActAccept, milter.ResultBadFrom},
		{"empty From", [][2]string{{"From", ""}}, gomilter.ActAccept, milter.ResultBadFrom},
		{"address literal", [][2]string{{"From", "a@[127.0.0.1]"}}, gomilter.ActAccept, milter.ResultBadFrom},
		{"unverified domain", [][2]string{{"From", "a@example.org"}}, gomilter.ActAccept, milter.ResultNoKey},
		{"store unreachable", [][2]string{{"From", "a@failing.example"}}, gomilter.ActTempFail, milter.ResultTempFail},
		{"too many header fields", append([][2]string{{"From", "a@example.com"}}, many...), gomilter.ActAccept, milter.ResultTooLarge},
		{"header section too large", [][2]string{{"From", "a@example.com"}, {"X-Big", strings.Repeat("x", 600<<10)}, {"X-Big", strings.Repeat("x", 600<<10)}}, gomilter.ActAccept, milter.ResultTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.obs.get(tc.result)
			r := send(t, f.session(), tc.header, strings.NewReader("body\r\n"))
			if r.action != tc.action || r.message != nil {
				t.Errorf("action %c, signed %v; want %c unsigned", r.action, r.message != nil, tc.action)
			}
			if f.obs.get(tc.result) != before+1 {
				t.Errorf("%s not counted", tc.result)
			}
		})
	}

	t.Run("uppercase and trailing dot", func(t *testing.T) {
		r := send(t, f.session(), [][2]string{{"From", "Alice <alice@EXAMPLE.Com.>"}}, strings.NewReader("hi\r\n"))
		if r.message == nil {
			t.Fatalf("action %c, not signed", r.action)
		}
		if v := verifySig(t, r.message); v.Domain != "example.com" {
			t.Errorf("d=%s, want example.com", v.Domain)
		}
	})

	t.Run("a megabyte of blank lines", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader("text\r\n"), bytes.NewReader(bytes.Repeat([]byte("\r\n"), 600<<10)), strings.NewReader("more\r\n"))
		r := send(t, f.session(), [][2]string{{"From", "a@example.com"}}, body)
		if r.action != gomilter.ActAccept || r.message != nil {
			t.Errorf("action %c, signed %v; want accept unsigned", r.action, r.message != nil)
		}
		if f.obs.get(milter.ResultTooLarge) != 3 {
			t.Errorf("too_large counted %d times, want 3", f.obs.get(milter.ResultTooLarge))
		}
	})
}

// TestLargeBody signs a body of 24 MiB, streamed, and checks that the server's
// heap did not grow by anything like the body's size meanwhile.
func TestLargeBody(t *testing.T) {
	f := start(t, milter.Config{})
	s := f.session()
	for _, h := range [][2]string{{"From", "a@example.com"}, {"Subject", "big"}} {
		if _, err := s.HeaderField(h[0], h[1]); err != nil {
			t.Fatal(err)
		}
	}
	if act, err := s.HeaderEnd(); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("EOH: %v %v", act, err)
	}
	line := []byte(strings.Repeat("0123456789abcdef", 4) + "\r\n")
	chunk := bytes.Repeat(line, gomilter.MaxBodyChunk/len(line))
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const size = 24 << 20
	for sent := 0; sent < size; sent += len(chunk) {
		if act, err := s.BodyChunk(chunk); err != nil || act.Code != gomilter.ActContinue {
			t.Fatalf("body: %v %v", act, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&during)
	if grew := int64(during.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Errorf("heap grew by %d MiB while streaming a %d MiB body", grew>>20, size>>20)
	}
	mods, act, err := s.End()
	if err != nil || act.Code != gomilter.ActAccept || len(mods) != 1 {
		t.Fatalf("end: %v %+v %v", act, mods, err)
	}
	// The body hash must be that of the whole body, relaxed-canonicalized (it
	// has no trailing spaces or blank lines, so it is the body as sent).
	h := sha256Repeat(chunk, (size+len(chunk)-1)/len(chunk))
	if !strings.Contains(mods[0].HeaderValue, "bh="+h+";") {
		t.Errorf("body hash is not the whole body's (%s): %s", h, mods[0].HeaderValue)
	}
}

func sha256Repeat(chunk []byte, n int) string {
	h := sha256.New()
	for range n {
		h.Write(chunk)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// TestHostileClient sends what no MTA would: the server closes the connection,
// stays up and serves the next client.
func TestHostileClient(t *testing.T) {
	f := start(t, milter.Config{IdleTimeout: 300 * time.Millisecond})
	packet := func(code byte, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
		return append(append(b, code), data...)
	}
	optneg := packet('O', binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 6), 0x1ff), 0))
	garbage := make([]byte, 4096)
	rand.Read(garbage)
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"random bytes", garbage},
		{"zero length", []byte{0, 0, 0, 0}},
		{"length beyond the bound", []byte{0x7f, 0xff, 0xff, 0xff, 'B'}},
		{"truncated packet, then silence", slices.Concat(optneg, []byte{0, 0, 0, 100, 'B', 'x'})},
		{"unknown command", slices.Concat(optneg, packet('Z', nil))},
		{"connect without its fields", slices.Concat(optneg, packet('C', []byte("host\x004")))},
		{"body and end before any header", slices.Concat(optneg, packet('B', []byte("x")), packet('E', nil))},
		{"header of three strings", slices.Concat(optneg, packet('L', []byte("From\x00a@example.com\x00extra\x00")))},
		{"end of header, twice", slices.Concat(optneg, packet('L', []byte("From\x00a@example.com\x00")), packet('N', nil), packet('N', nil), packet('B', []byte("x")), packet('E', nil), packet('E', nil))},
		{"only negotiation, then silence", optneg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			// The server answers what it can, then closes the connection: on
			// the error, or at the idle deadline.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server did not close the connection")
			}
		})
	}
	// Still serving.
	r := send(t, f.session(), [][2]string{{"From", "a@example.com"}}, strings.NewReader("hi\r\n"))
	if r.message == nil {
		t.Fatalf("after hostile clients: action %c, not signed", r.action)
	}
	verifySig(t, r.message)
}

// TestMaxConns: a connection beyond the bound waits unanswered until another
// ends.
func TestMaxConns(t *testing.T) {
	f := start(t, milter.Config{MaxConns: 1})
	first := f.session()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := binary.BigEndian.AppendUint32(nil, 13)
	b = append(b, 'O')
	b = binary.BigEndian.AppendUint32(b, 6)
	b = binary.BigEndian.AppendUint32(b, 0x1ff)
	b = binary.BigEndian.AppendUint32(b, 0)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("the second connection was answered (%d bytes) while the first is open", n)
	}
	first.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 4+13)); err != nil {
		t.Fatalf("the second connection was not answered after the first closed: %v", err)
	}
}

// TestShutdown: an idle connection is closed at once; one in the middle of a
// message finishes it first.
func TestShutdown(t *testing.T) {
	f := start(t, milter.Config{})
	idle := f.session()
	busy := f.session()
	if _, err := busy.HeaderField("From", "a@example.com"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(ctx) }()
	// Wait (bounded) until Shutdown has begun: it closes the listener first.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts 5s after Shutdown began")
		}
		runtime.Gosched()
	}
	// The idle connection is closed, or refuses to begin a message: either way
	// a new message on it fails.
	if _, err := idle.HeaderField("From", "a@example.com"); err == nil {
		if _, err := idle.HeaderEnd(); err == nil {
			t.Error("the idle connection still serves after Shutdown")
		}
	}
	if act, err := busy.HeaderEnd(); err != nil || act.Code != gomilter.ActContinue {
		t.Fatalf("EOH during shutdown: %v %v", act, err)
	}
	if _, err := busy.BodyChunk([]byte("hi\r\n")); err != nil {
		t.Fatal(err)
	}
	mods, act, err := busy.End()
	if err != nil || act.Code != gomilter.ActAccept || len(mods) != 1 {
		t.Fatalf("the message in progress did not finish signed: %v %+v %v", act, mods, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
