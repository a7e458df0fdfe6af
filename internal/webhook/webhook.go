// Package webhook delivers domain events to the endpoints projects register. It
// signs each request as the Standard Webhooks specification says
// (https://www.standardwebhooks.com), keeps webhooks off the operator's own network,
// and works through the outbox in the database: a delivery is written in the same
// transaction as its event, so none is lost when the process stops, and each is
// retried with backoff until the endpoint accepts it or the retry window closes.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/idna"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/publicaddr"
	"github.com/domaind/domaind/internal/records"
	"github.com/domaind/domaind/internal/store"
)

// secretPrefix starts every signing secret, as in the Standard Webhooks libraries.
const secretPrefix = "whsec_"

// secretBytes is the size of a new signing secret's key: the specification asks for
// between 24 and 64 bytes.
const secretBytes = 24

// NewSecret returns a fresh signing secret: "whsec_" and the standard base64 of 24
// random bytes.
func NewSecret() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// secretKey returns the HMAC key of a secret: the base64-decoded part after
// "whsec_". The prefix may be left out, as the reference libraries allow.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook: secret is not whsec_ followed by base64: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhook: secret is empty")
	}
	return key, nil
}

// mac returns the raw HMAC-SHA256 of "{msgID}.{unix seconds}.{body}".
func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, unix, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the webhook-signature header value for a message: "v1," and the
// standard base64 of the HMAC-SHA256, keyed with the secret's decoded bytes, of
// "{msgID}.{ts in unix seconds}.{body}".
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

// ErrInvalidSignature is returned by VerifySignature when no signature of the
// request matches, or a header it needs is missing or malformed.
var ErrInvalidSignature = errors.New("webhook: invalid signature")

// VerifySignature checks a received request as a receiver would: its webhook-id,
// webhook-timestamp and webhook-signature headers against body and secret. The
// signature header may hold several space-separated signatures; one valid "v1"
// signature is enough. When tolerance is positive, a timestamp further than that
// from now is refused too, which is what stops a recorded request being replayed.
func VerifySignature(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: webhook-id, webhook-timestamp and webhook-signature are all required", ErrInvalidSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not a whole number of seconds", ErrInvalidSignature, tsText)
	}
	if tolerance > 0 {
		if off := now.Sub(time.Unix(ts, 0)); off > tolerance || off < -tolerance {
			return fmt.Errorf("%w: webhook-timestamp is %s away from now, more than %s", ErrInvalidSignature, off, tolerance)
		}
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// MaxURLLength is the longest webhook URL accepted, in bytes.
const MaxURLLength = 2048

// URLError is why CheckURL refused a URL. Its message is one plain sentence that
// names the rule, fit to show the user who registered the URL; Err, when set, is
// the underlying cause, for logs.
type URLError struct {
	Message string
	Err     error
}

func (e *URLError) Error() string { return e.Message }

func (e *URLError) Unwrap() error { return e.Err }

func urlError(format string, args ...any) error {
	return &URLError{Message: fmt.Sprintf(format, args...)}
}

// CheckURL checks a webhook URL and returns it normalized (scheme and host in lower
// case, an international host name in its ASCII form). The URL must be absolute
// http or https, https unless allowPrivate, without a user name or password or a
// fragment, and at most MaxURLLength bytes long. Unless allowPrivate, its host must
// resolve, through lookup, only to public addresses: not loopback, private
// (RFC 1918, fc00::/7), link-local, unspecified, multicast, carrier-grade NAT, or
// IPv4-mapped forms of those. A nil lookup uses net.DefaultResolver. A refusal is a
// *URLError.
func CheckURL(ctx context.Context, raw string, allowPrivate bool, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", urlError("url must not be empty.")
	}
	if len(raw) > MaxURLLength {
		return "", urlError("url must be at most %d characters long.", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return "", urlError("url must be an absolute http or https URL, such as https://example.com/webhooks.")
	}
	if u.Scheme != "https" && !allowPrivate {
		return "", urlError("url must use https.")
	}
	if u.User != nil {
		return "", urlError("url must not contain a user name or password.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", urlError("url must not contain a fragment (the part after #).")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", urlError("url's port must be a number from 1 to 65535.")
		}
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	addr, err := netip.ParseAddr(host)
	literal := err == nil
	switch {
	case literal && addr.Zone() != "":
		return "", urlError("url's host must not be an IPv6 address with a zone.")
	case literal:
		host = addr.String()
	default:
		ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(host, "."))
		if err != nil || ascii == "" {
			return "", &URLError{Message: "url's host is not a valid host name.", Err: err}
		}
		host = ascii
	}
	switch {
	case port != "":
		u.Host = net.JoinHostPort(host, port)
	case addr.Is6():
		u.Host = "[" + host + "]"
	default:
		u.Host = host
	}
	normalized := u.String()
	if len(normalized) > MaxURLLength {
		return "", urlError("url must be at most %d characters long.", MaxURLLength)
	}
	if allowPrivate {
		return normalized, nil
	}

	addrs := []netip.Addr{addr}
	if !literal {
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		addrs, err = lookup(ctx, host)
		if err != nil {
			return "", &URLError{Message: fmt.Sprintf("url's host %s could not be resolved; check the name.", host), Err: err}
		}
		if len(addrs) == 0 {
			return "", urlError("url's host %s has no addresses.", host)
		}
	}
	// Every address must be public: a name with one public and one private address
	// would let the connection go wherever the dialer picks.
	for _, a := range addrs {
		if why := publicaddr.Reason(a); why != "" {
			if literal {
				return "", urlError("url's host %s is %s; webhooks may only be sent to public addresses.", a, why)
			}
			return "", urlError("url's host %s resolves to %s, %s; webhooks may only be sent to public addresses.", host, a, why)
		}
	}
	return normalized, nil
}

// ErrRefusedAddress is wrapped by the error a client from NewClient returns when a
// connection would go to an address webhooks may not reach.
var ErrRefusedAddress = errors.New("webhook: address refused")

// refuseControl is a net.Dialer Control function. It runs after name resolution,
// on the very address being connected to, so a host name that resolved to a public
// address at registration and to a private one now (DNS rebinding) is still
// refused.
func refuseControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address and port", ErrRefusedAddress, address)
	}
	if why := publicaddr.Reason(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is %s, and webhooks may only be sent to public addresses", ErrRefusedAddress, ap.Addr(), why)
	}
	return nil
}

// Timeouts of the client NewClient returns. They are short because a webhook
// endpoint is anyone's server: one that accepts connections and never answers
// would otherwise hold a delivery slot for as long as a patient client waits.
const (
	// DefaultTimeout bounds a whole request, from connecting to reading the
	// answer's headers and (the bounded part of) its body.
	DefaultTimeout = 10 * time.Second
	// ConnectTimeout bounds connecting and, separately, the TLS handshake.
	ConnectTimeout = 5 * time.Second
)

// NewClient returns the HTTP client that sends webhooks. Unless allowPrivate, it
// refuses to connect to any address CheckURL refuses, checked at connect time. It
// follows no redirects: a 3xx answer comes back as it is and counts as a failed
// attempt, since following one would leave the URL the project registered. It
// uses no proxy, since a proxy would connect on its behalf past the check.
// timeout bounds each whole request; 0 means DefaultTimeout. Connecting and the
// TLS handshake are each bounded by ConnectTimeout, or timeout if shorter.
func NewClient(allowPrivate bool, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	connect := min(ConnectTimeout, timeout)
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = refuseControl
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   connect,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Observer is told the outcome of every delivery attempt, for metrics;
// *metrics.Metrics is one.
type Observer interface {
	Delivery(outcome string)
}

// The outcomes of an attempt, as an Observer hears them.
const (
	// OutcomeDelivered: the endpoint answered 2xx.
	OutcomeDelivered = "delivered"
	// OutcomeRetry: the attempt failed and another is scheduled.
	OutcomeRetry = "retry"
	// OutcomeFailed: the attempt failed and the retry window has closed.
	OutcomeFailed = "failed"
)

// Defaults of a Deliverer's zero fields.
const (
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultInterval    = time.Second
	DefaultBatch       = 32
	DefaultLease       = time.Minute
	// DefaultConcurrency is more than DefaultMaxWebhooks endpoints with
	// DefaultEndpointConcurrency each can hold: a project whose every endpoint
	// hangs cannot take all the slots from the others.
	DefaultConcurrency = 32
	// DefaultEndpointConcurrency is how many deliveries one endpoint has in
	// flight at most.
	DefaultEndpointConcurrency = 1
	// DefaultParkBase and DefaultParkMax bound how long an endpoint is parked
	// after consecutive failures: DefaultParkBase after the first, twice as long
	// after each further one, never longer than DefaultParkMax.
	DefaultParkBase = 5 * time.Second
	DefaultParkMax  = time.Hour
	// DefaultMaxWebhooks is how many webhooks a project may have; AWS SES,
	// Resend and SendGrid allow a handful too.
	DefaultMaxWebhooks = 10
)

// DefaultBackoff returns the default retry schedule: 5s, 30s, 2m, 5m, 15m, 30m,
// 1h, 2h, 4h, 8h.
func DefaultBackoff() []time.Duration {
	return []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute,
		15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}
}

// maxErrorText bounds the error text stored with an attempt.
const maxErrorText = 500

// userAgent is sent with every delivery.
const userAgent = "domaind"

// Deliverer sends pending deliveries from the outbox. Several Deliverers, in one
// process or several, may work on the same store: each claims deliveries for a
// lease before sending them, so a delivery goes to one of them at a time, and one
// whose Deliverer died goes to another once the lease runs out. Delivery is at
// least once: an endpoint may see a message again (with the same webhook-id) if
// the process stops between its answer and the recording of it.
//
// Delivery is fair to the projects behind the endpoints. An endpoint has at most
// EndpointConcurrency deliveries in flight, across all Deliverers; claims hand out
// every endpoint's oldest due delivery before any endpoint's second, so no
// backlog takes the slots; and an endpoint that keeps failing is parked for
// longer and longer (ParkBase, doubling, up to ParkMax), during which none of its
// deliveries is claimed, so a dead endpoint costs one short attempt now and then
// rather than a slot per delivery. A delivered attempt ends the parking.
//
// Set the fields before the first call and do not change them afterwards. Store
// and Sealer are required; the other fields have defaults.
type Deliverer struct {
	Store store.Store
	// Sealer opens the webhooks' signing secrets, which are sealed with the
	// webhook id as additional data.
	Sealer *records.Sealer
	// Client sends the requests; nil means NewClient(false, 0), which refuses
	// non-public addresses and gives up on an endpoint after DefaultTimeout.
	Client *http.Client
	// Now is the clock; nil means time.Now. Attempt durations are measured with
	// the real clock all the same.
	Now func() time.Time
	Log *slog.Logger
	// Observer, if set, is told the outcome of every attempt.
	Observer Observer
	// Backoff is the retry schedule: a delivery created at T is attempted at T,
	// then at T+Backoff[0], T+Backoff[0]+Backoff[1] and so on, the last step
	// repeating. A delivery attempted late is next attempted at the first point
	// of that schedule after the failed attempt. nil means DefaultBackoff().
	Backoff []time.Duration
	// GiveUpAfter is how long after its creation a delivery is retried; the
	// first attempt that fails at or after that marks it failed. 0 means 24h.
	GiveUpAfter time.Duration
	// Interval is how long Run waits when nothing was due; 0 means 1s.
	Interval time.Duration
	// Batch is how many deliveries one round claims at most; 0 means 32.
	Batch int
	// Lease is how long a claim lasts; an attempt is cut off at half of it, so
	// that it ends, and is recorded, before another Deliverer may claim the
	// delivery. 0 means 1m.
	Lease time.Duration
	// Concurrency is how many attempts run at once; 0 means 32. Run claims
	// again whenever one ends, so a slot never waits for a slow attempt's
	// batch-mates.
	Concurrency int
	// EndpointConcurrency is how many deliveries one endpoint may have in
	// flight; 0 means 1.
	EndpointConcurrency int
	// ParkBase is how long an endpoint is parked after a failed attempt when it
	// had not failed before; each further consecutive failure doubles it, up to
	// ParkMax. 0 means 5s and 1h.
	ParkBase, ParkMax time.Duration

	clientOnce    sync.Once
	defaultClient *http.Client
}

// settings are a Deliverer's fields with the defaults filled in.
type settings struct {
	now         func() time.Time
	client      *http.Client
	log         *slog.Logger
	backoff     []time.Duration
	giveUpAfter time.Duration
	interval    time.Duration
	batch       int
	lease       time.Duration
	concurrency int
	perEndpoint int
	parkBase    time.Duration
	parkMax     time.Duration
}

func (d *Deliverer) settings() settings {
	s := settings{
		now: d.Now, client: d.Client, log: d.Log, backoff: d.Backoff, giveUpAfter: d.GiveUpAfter,
		interval: d.Interval, batch: d.Batch, lease: d.Lease, concurrency: d.Concurrency,
		perEndpoint: d.EndpointConcurrency, parkBase: d.ParkBase, parkMax: d.ParkMax,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		d.clientOnce.Do(func() { d.defaultClient = NewClient(false, 0) })
		s.client = d.defaultClient
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if len(s.backoff) == 0 {
		s.backoff = DefaultBackoff()
	}
	s.giveUpAfter = orDefault(s.giveUpAfter, DefaultGiveUpAfter)
	s.interval = orDefault(s.interval, DefaultInterval)
	s.batch = orDefault(s.batch, DefaultBatch)
	s.lease = orDefault(s.lease, DefaultLease)
	s.concurrency = orDefault(s.concurrency, DefaultConcurrency)
	s.perEndpoint = orDefault(s.perEndpoint, DefaultEndpointConcurrency)
	s.parkBase = orDefault(s.parkBase, DefaultParkBase)
	s.parkMax = orDefault(s.parkMax, DefaultParkMax)
	s.parkMax = max(s.parkMax, s.parkBase)
	return s
}

// orDefault returns v, or def when v is not positive: a Deliverer's zero
// setting (and a nonsensical negative one) means the default.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// parkFor returns how long an endpoint that had failed failures times in a row
// is parked after failing once more: base, doubled for each earlier failure, at
// most maxPark.
func parkFor(base, maxPark time.Duration, failures int) time.Duration {
	d := base
	for range max(failures, 0) {
		if d >= maxPark/2 {
			return maxPark
		}
		d *= 2
	}
	return min(d, maxPark)
}

// Run delivers until ctx is done, waits for the attempts under way to end, and
// returns nil. It keeps up to Concurrency attempts running: it claims as many
// deliveries as there are free slots, at once again when an attempt ends or a
// claim filled every free slot, and after Interval otherwise. So one slow
// endpoint holds one slot for one attempt, never a batch's worth of slots. Every
// Interval it also expires the deliveries of parked endpoints whose retry window
// has closed. The error of a round (a store that is briefly unavailable) is
// logged and the next round tries again.
func (d *Deliverer) Run(ctx context.Context) error {
	s := d.settings()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.concurrency) // one token per running attempt
	ended := make(chan struct{}, 1)             // an attempt ended: claim again
	timer := time.NewTimer(0)
	defer timer.Stop()
	var expired time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-ended:
		}
		if now := time.Now(); now.Sub(expired) >= s.interval {
			expired = now
			if err := d.expire(ctx, s); err != nil && ctx.Err() == nil {
				s.log.Error("webhook deliveries", "err", err)
			}
		}
		// Only this loop takes slots, so at least this many stay free.
		free := min(s.concurrency-len(slots), s.batch)
		if free == 0 {
			timer.Reset(s.interval) // an ending attempt wakes the loop first
			continue
		}
		due, err := d.Store.ClaimDeliveries(ctx, s.now(), s.lease, free, s.perEndpoint)
		if err != nil && ctx.Err() == nil {
			s.log.Error("webhook deliveries", "err", fmt.Errorf("webhook: claim deliveries: %w", err))
		}
		for _, del := range due {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() {
					<-slots
					select {
					case ended <- struct{}{}:
					default: // the loop is already due to claim
					}
				}()
				if err := d.deliver(ctx, s, del); err != nil && ctx.Err() == nil {
					s.log.Error("webhook deliveries", "err", err)
				}
			})
		}
		wait := s.interval
		if err == nil && len(due) == free {
			wait = 0 // there may be more due
		}
		timer.Reset(wait)
	}
}

// RunOnce expires what has expired, claims the deliveries due now, up to Batch,
// attempts each, and records every attempt and the delivery's new state. It
// returns how many it claimed.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	s := d.settings()
	if err := d.expire(ctx, s); err != nil {
		return 0, err
	}
	return d.runOnce(ctx, s)
}

// expire marks failed the deliveries of parked endpoints whose retry window has
// closed: they would otherwise wait for the parking to end.
func (d *Deliverer) expire(ctx context.Context, s settings) error {
	n, err := d.Store.ExpireDeliveries(ctx, s.now(), s.giveUpAfter)
	if err != nil {
		return fmt.Errorf("webhook: expire deliveries: %w", err)
	}
	if n > 0 {
		s.log.Info("webhook deliveries of parked endpoints expired", "count", n)
		if d.Observer != nil {
			for range n {
				d.Observer.Delivery(OutcomeFailed)
			}
		}
	}
	return nil
}

func (d *Deliverer) runOnce(ctx context.Context, s settings) (int, error) {
	due, err := d.Store.ClaimDeliveries(ctx, s.now(), s.lease, s.batch, s.perEndpoint)
	if err != nil {
		return 0, fmt.Errorf("webhook: claim deliveries: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, s.concurrency)
	)
	for _, del := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.deliver(ctx, s, del); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// deliver makes one attempt at a claimed delivery and records it.
func (d *Deliverer) deliver(ctx context.Context, s settings, del store.Delivery) error {
	at := s.now()
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, s.lease/2)
	code, sendErr := d.send(actx, s, del, at)
	cancel()
	took := time.Since(start)
	if sendErr != nil && ctx.Err() != nil {
		// Shutting down cut the attempt short; it says nothing of the endpoint.
		// The delivery stays claimed and is attempted again when the lease runs
		// out, after a restart or by another Deliverer.
		return nil
	}

	a := store.Attempt{DeliveryID: del.ID, At: at, StatusCode: code, Duration: took}
	next, outcome := store.DeliveryState{Status: store.DeliveryDelivered}, OutcomeDelivered
	var parkedUntil time.Time
	if sendErr != nil {
		a.Error = truncate(sendErr.Error(), maxErrorText)
		now := s.now()
		next, outcome = nextState(s.backoff, s.giveUpAfter, del.CreatedAt, now)
		// The endpoint failed once more than it had when this was claimed.
		parkedUntil = now.Add(parkFor(s.parkBase, s.parkMax, del.EndpointFailures))
	}
	// A finished attempt is recorded even while shutting down: recording it is
	// what keeps the endpoint from receiving the message again.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	err := d.Store.RecordAttempt(rctx, a, next, parkedUntil)
	if d.Observer != nil {
		d.Observer.Delivery(outcome)
	}
	log := s.log.With("delivery", del.ID, "webhook", del.WebhookID, "event", del.EventID, "outcome", outcome)
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.Info("webhook deleted during delivery")
		return nil
	case err != nil:
		return fmt.Errorf("webhook: record attempt of %s: %w", del.ID, err)
	case sendErr != nil:
		log.Info("webhook delivery failed", "status", code, "err", a.Error, "next", next.NextAttemptAt)
	default:
		log.Debug("webhook delivered", "status", code, "took", took)
	}
	return nil
}

// send posts the delivery's payload, signed, and returns the status code of the
// answer (0 without one) and an error unless it was 2xx.
func (d *Deliverer) send(ctx context.Context, s settings, del store.Delivery, at time.Time) (int, error) {
	secret, err := d.Sealer.Open(del.SealedSecret, del.WebhookID)
	if err != nil {
		s.log.Error("webhook secret does not open; was the master key changed?", "webhook", del.WebhookID, "err", err)
		return 0, errors.New("the webhook's signing secret could not be read on our side")
	}
	sig, err := Sign(string(secret), del.ID, at, del.Payload)
	clear(secret)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Payload))
	if err != nil {
		return 0, fmt.Errorf("the webhook URL is not usable: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("webhook-id", del.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", sig)

	resp, err := s.client.Do(req)
	if err != nil {
		// The URL is the project's own; the cause is what tells them something.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	// Reading (a bounded part of) the body lets the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return resp.StatusCode, fmt.Errorf("the endpoint answered %s; redirects are not followed", resp.Status)
	}
	return resp.StatusCode, fmt.Errorf("the endpoint answered %s", resp.Status)
}

// nextState returns the state of a delivery created at created whose attempt
// failed at now, and the attempt's outcome: failed at or past the retry window's
// end, else pending until the first point of the backoff schedule after now, or
// the window's end if that comes first.
func nextState(backoff []time.Duration, giveUpAfter time.Duration, created, now time.Time) (store.DeliveryState, string) {
	deadline := created.Add(giveUpAfter)
	if !now.Before(deadline) {
		return store.DeliveryState{Status: store.DeliveryFailed}, OutcomeFailed
	}
	next := created
	for _, b := range backoff {
		next = next.Add(max(b, time.Millisecond))
		if next.After(now) {
			break
		}
	}
	if !next.After(now) {
		// Past the listed steps, the last one repeats: skip whole steps at once.
		last := max(backoff[len(backoff)-1], time.Millisecond)
		next = next.Add((now.Sub(next)/last + 1) * last)
	}
	if next.After(deadline) {
		next = deadline
	}
	return store.DeliveryState{Status: store.DeliveryPending, NextAttemptAt: next}, OutcomeRetry
}

// truncate shortens s to at most n bytes, "…" included, and makes it valid
// UTF-8, for storage.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return domain.TruncateBytes(s, n-len("…"))
}
