package sqlstore

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	kflate "github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/s2"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// An event's payload, the exact JSON its webhooks receive, starts with what
// the event's row already holds: {"type":"<type>","timestamp":"<created_at>",
// "data":{"eventId":"<id>","domainId":"<domain_id>", (the Standard Webhooks
// layout that package verify and the rotation worker write). The payload
// column keeps only the rest, and reads put the start back from the row, so
// about 130 bytes of each event's are not stored twice. A payload that does
// not start so is kept whole; migration 00011 makes the same choice in SQL.

// payloadStart is the start of e's payload that its row gives.
func payloadStart(e *store.Event) string { return string(appendPayloadStart(nil, e)) }

// appendPayloadStart appends payloadStart(e) to b.
func appendPayloadStart(b []byte, e *store.Event) []byte {
	b = append(append(append(b, `{"type":"`...), e.Type...), `","timestamp":"`...)
	b = e.CreatedAt.UTC().AppendFormat(b, domain.TimeLayout)
	b = append(append(append(b, `","data":{"eventId":"`...), e.ID...), `","domainId":"`...)
	return append(append(b, e.DomainID...), `",`...)
}

// storedPayload is how e's payload is kept: less payloadStart where it starts
// with it; else whole, marked with a leading "=" unless it starts with "{".
// So a kept payload starting with "{" is whole, one starting with "=" is whole
// after the mark, and any other is the rest after payloadStart. It shares
// e.Payload's bytes where it can.
func storedPayload(e *store.Event) []byte {
	p := e.Payload
	// The start is built on the stack: a check saves several events, and each
	// would otherwise cost a copy of its payload and of its start.
	var buf [192]byte
	if rest, ok := bytes.CutPrefix(p, appendPayloadStart(buf[:0], e)); ok && len(rest) > 0 && rest[0] != '{' && rest[0] != '=' {
		return rest
	}
	if len(p) > 0 && p[0] == '{' {
		return p
	}
	return append([]byte("="), p...)
}

// payloadOf is the inverse of storedPayload, for the event e read from its row.
func payloadOf(e *store.Event, stored string) []byte {
	switch {
	case strings.HasPrefix(stored, "{"):
		return []byte(stored)
	case strings.HasPrefix(stored, "="):
		return []byte(stored[1:])
	}
	return []byte(payloadStart(e) + stored)
}

// Where the dialect keeps bytes in a text column (SQLite), the payload column
// keeps that rest compressed (PayloadCodec), with a preset dictionary of what
// the checks' events repeat. A check's save packs two texts (its events and
// its records' checks) of one to three kilobytes each, so what costs is the
// setting up of each compression, not its rate. DEFLATE (RFC 1951) at
// klauspost/compress's fastest level spent most of its 7-8 µs a text building
// Huffman tables, and packing was 6.7% of a background check's CPU. S2, from
// the same module, has no entropy coding: with the same dictionary it packs a
// text in under 2 µs and unpacks it in a fraction of one, for about 20% more
// bytes (a domain.verified check's six events take 269 bytes, not 223). What
// DEFLATE packed before stays readable.

// The first byte of a packed text names how it was packed: its compressor,
// and the dictionary and its version. A new dictionary takes a new number,
// and the old ones stay for what was packed with them. Pack and PackChecks
// write the S2 forms, Deflate and DeflateChecks (the migrations') the DEFLATE
// ones; Unpack reads all four.
const (
	payloadPacked = 1 // DEFLATE with payloadDict: events' payloads and groups
	checksPacked  = 2 // DEFLATE with checksDict: domains' checks
	payloadS2     = 3 // S2 with payloadDict
	checksS2      = 4 // S2 with checksDict
)

// payloadDict is the dictionary of versions 1 and 3: the keys and values a
// check's events carry, most frequent last (nearer matches cost fewer bits).
const payloadDict = `"domain":"","verificationStatus":"PENDING_CONFIGURATION","previousStatus":"FAILED",` +
	`"reason":"","mode":"txt","state":"idle","selector":"autosend","nextSelector":"","previousSelector":"",` +
	`"verificationStatus":"VERIFIED","previousStatus":"PENDING_CONFIGURATION","ownershipVerified":true,` +
	`"dkimEnabled":true,"mailFromEnabled":true,"dmarcEnabled":true,"records":[` +
	`{"type":"ownership","name":"_autosend-verify.","recordType":"TXT","isVerified":true,"status":"verified","problems":[]},` +
	`{"type":"dkim","name":"autosend._domainkey.","recordType":"TXT","isVerified":true,"status":"verified","problems":[]},` +
	`{"type":"mail_from_mx","name":"mail.","recordType":"MX","isVerified":true,"status":"verified","problems":[]},` +
	`{"type":"mail_from_spf","name":"mail.","recordType":"TXT","isVerified":true,"status":"verified","problems":[]},` +
	`{"type":"dmarc","name":"_dmarc.","recordType":"TXT","isVerified":true,"status":"verified","problems":[]}]}}`

// maxPayload bounds what unpacking a payload may make, against a packed
// payload that is not one of ours.
const maxPayload = 1 << 20

// maxChecks bounds what unpacking a domain's checks may make. It is above the
// most checks may keep (see dnscheck's maxSightings): for each of at most nine
// records, 16 servers' 16 values and 16 found values of 2,048 bytes each,
// every byte of which JSON may write as six (\u0000), about 30 MB. Anything
// larger is not one of ours.
const maxChecks = 64 << 20

// PayloadCodec packs and unpacks payloads, and the domains' checks (see
// checks.go); it is safe for concurrent use. The first byte of what it packs
// names the compressor and the dictionary, so Unpack reads any of them.
type PayloadCodec struct {
	events, checks dictCodec
}

// NewPayloadCodec returns a codec.
func NewPayloadCodec() *PayloadCodec {
	return &PayloadCodec{
		events: newDictCodec(payloadS2, payloadPacked, payloadDict, maxPayload),
		checks: newDictCodec(checksS2, checksPacked, checksDict, maxChecks),
	}
}

// Pack compresses text, a payload as storedPayload keeps it.
func (c *PayloadCodec) Pack(text []byte) ([]byte, error) { return c.events.pack(text) }

// PackChecks compresses text, a domain's checks column as JSON.
func (c *PayloadCodec) PackChecks(text []byte) ([]byte, error) { return c.checks.pack(text) }

// Deflate and DeflateChecks compress as Pack and PackChecks did before S2,
// for the migrations' SQL functions (see package sqlite): a migration writes
// what the code of its schema version reads, and the code of versions before
// S2 reads only DEFLATE, which a Down leaves behind for it.
func (c *PayloadCodec) Deflate(text []byte) ([]byte, error) { return c.events.deflate(text) }

// DeflateChecks is Deflate for a domain's checks column.
func (c *PayloadCodec) DeflateChecks(text []byte) ([]byte, error) { return c.checks.deflate(text) }

// Unpack is the inverse of Pack, PackChecks, Deflate and DeflateChecks.
func (c *PayloadCodec) Unpack(packed []byte) (string, error) {
	if len(packed) > 0 && (packed[0] == checksS2 || packed[0] == checksPacked) {
		return c.checks.unpack(packed)
	}
	return c.events.unpack(packed)
}

// dictCodec packs with S2 and one preset dictionary, and unpacks what it
// packed or what DEFLATE packed with the same dictionary before, at most max
// bytes.
type dictCodec struct {
	version   byte // the first byte of what pack writes
	deflated  byte // the first byte of what DEFLATE packed
	s2        *s2.Dict
	dict      []byte // for DEFLATE
	max       int
	scratch   buffers
	deflaters sync.Pool
	inflaters sync.Pool
}

func newDictCodec(version, deflated byte, dict string, max int) dictCodec {
	// The dictionary's repeat offset starts at its first byte: the texts
	// start with no match in it that S2 could take as a repeat.
	d := s2.NewDict(append([]byte{0}, dict...))
	if d == nil {
		panic(fmt.Sprintf("store: dictionary %d is no S2 dictionary", version))
	}
	return dictCodec{version: version, deflated: deflated, s2: d, dict: []byte(dict), max: max}
}

func (c *dictCodec) pack(text []byte) ([]byte, error) {
	n := s2.MaxEncodedLen(len(text))
	if n < 0 {
		return nil, fmt.Errorf("store: pack: %d bytes: %w", len(text), s2.ErrTooLarge)
	}
	// S2 wants room for the text uncompressed; what it writes is a fifth of
	// that, which is all that is kept.
	scratch := c.scratch.get(n)
	defer c.scratch.put(scratch)
	enc := c.s2.Encode((*scratch)[:n], text)
	out := make([]byte, 1+len(enc))
	out[0] = c.version
	copy(out[1:], enc)
	return out, nil
}

func (c *dictCodec) deflate(text []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(text)/4 + 16)
	buf.WriteByte(c.deflated)
	w, _ := c.deflaters.Get().(*kflate.Writer)
	if w == nil {
		var err error
		if w, err = kflate.NewWriterDict(&buf, kflate.BestSpeed, c.dict); err != nil {
			return nil, fmt.Errorf("store: pack: %w", err)
		}
	} else {
		w.Reset(&buf)
	}
	defer c.deflaters.Put(w)
	if _, err := w.Write(text); err != nil {
		return nil, fmt.Errorf("store: pack: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("store: pack: %w", err)
	}
	return buf.Bytes(), nil
}

func (c *dictCodec) unpack(packed []byte) (string, error) {
	if len(packed) > 0 && packed[0] == c.version {
		return c.unpackS2(packed[1:])
	}
	if len(packed) > 0 && packed[0] == c.deflated {
		return c.inflate(packed[1:])
	}
	return "", errors.New("store: packed text of an unknown version")
}

func (c *dictCodec) unpackS2(src []byte) (string, error) {
	// The length comes first, so a text past the bound is refused before
	// anything is made for it.
	n, err := s2.DecodedLen(src)
	if err != nil {
		return "", fmt.Errorf("store: unpack: %w", err)
	}
	if n > c.max {
		return "", fmt.Errorf("store: unpack: more than %d bytes", c.max)
	}
	out, err := c.s2.Decode(make([]byte, n), src)
	if err != nil {
		return "", fmt.Errorf("store: unpack: %w", err)
	}
	return string(out), nil
}

func (c *dictCodec) inflate(src []byte) (string, error) {
	r, _ := c.inflaters.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReaderDict(bytes.NewReader(src), c.dict)
	} else if err := r.(flate.Resetter).Reset(bytes.NewReader(src), c.dict); err != nil {
		return "", fmt.Errorf("store: unpack: %w", err)
	}
	defer c.inflaters.Put(r)
	var out bytes.Buffer
	out.Grow(min(8*len(src), c.max+1))
	n, err := out.ReadFrom(io.LimitReader(r, int64(c.max)+1))
	if err != nil {
		return "", fmt.Errorf("store: unpack: %w", err)
	}
	if n > int64(c.max) {
		return "", fmt.Errorf("store: unpack: more than %d bytes", c.max)
	}
	return out.String(), nil
}

// buffers is a pool of byte slices for texts that live only until they are
// packed or copied, so that every save does not allocate and clear its own.
type buffers struct{ pool sync.Pool }

// maxPooled is the largest slice buffers keeps: a rare large text is left to
// the collector rather than held.
const maxPooled = 64 << 10

// get returns an empty slice with room for n bytes.
func (b *buffers) get(n int) *[]byte {
	p, _ := b.pool.Get().(*[]byte)
	if p == nil {
		p = new([]byte)
	}
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	*p = (*p)[:0]
	return p
}

// put gives p back, once nothing refers to its bytes.
func (b *buffers) put(p *[]byte) {
	if cap(*p) <= maxPooled {
		b.pool.Put(p)
	}
}

// payloadArg is the payload column's value for the stored form text.
func (s *Store) payloadArg(text []byte) (any, error) {
	if !s.d.BinaryValues() {
		return string(text), nil
	}
	return s.payloads.Pack(text)
}

// payloadText is the stored form of a payload column's value as scanned.
func (s *Store) payloadText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return s.payloads.Unpack(v)
	}
	return "", fmt.Errorf("store: payload of type %T", v)
}

// A domain's events are kept in groups: one row of event_groups holds the
// events that one write adds to one domain, oldest first. A check that
// verifies a domain raises six, and one row is packed once and inserted once
// into the table and its index, where six rows cost six of each: the events
// were the largest part of a check's save. Events are only ever read by
// domain, newest first (Events), and pruned by domain, oldest first, so no
// read needs a row of its own.
//
// A group's text is its events, separated by eventSep; each event is its id,
// type, created_at (milliseconds, in decimal) and payload as storedPayload
// keeps it, separated by fieldSep. JSON never holds either character
// unescaped, nor do the ids and types the service makes; an event that does
// is refused rather than stored so that it would read back as two. The body
// column keeps the text, packed where the dialect keeps bytes (as a payload
// was, see PayloadCodec).
const (
	eventSep = '\x1e' // ASCII RS
	fieldSep = '\x1f' // ASCII US
)

// eventGroup is one row of event_groups to insert.
type eventGroup struct {
	projectID int64
	domainID  string
	events    int
	text      *[]byte // the group's text, while it is made (from Store.texts)
	body      any     // the body column's value: text, packed where the dialect keeps bytes
}

// eventGroups groups events by domain, in the order each domain first
// appears, keeping their order within each.
func (s *Store) eventGroups(events []store.Event) ([]eventGroup, error) {
	type owner struct {
		project int64
		domain  string
	}
	var (
		groups []eventGroup
		index  = map[owner]int{}
	)
	// Room for every event's text, which one group holds in the usual case,
	// rather than growing it once per event.
	size := 0
	for i := range events {
		size += len(events[i].Payload) + len(events[i].ID) + len(events[i].Type) + 24
	}
	for i := range events {
		e := &events[i]
		g, ok := index[owner{e.ProjectID, e.DomainID}]
		if !ok {
			g = len(groups)
			index[owner{e.ProjectID, e.DomainID}] = g
			groups = append(groups, eventGroup{projectID: e.ProjectID, domainID: e.DomainID, text: s.texts.get(size)})
		}
		text, err := appendGroupEvent(*groups[g].text, e.ID, string(e.Type), millis(e.CreatedAt), storedPayload(e))
		if err != nil {
			return nil, err
		}
		*groups[g].text = text
		groups[g].events++
	}
	// The body is made from the text, packed or copied into a string, so the
	// text's buffer serves the next save.
	for g := range groups {
		body, err := s.payloadArg(*groups[g].text)
		if err != nil {
			return nil, err
		}
		s.texts.put(groups[g].text)
		groups[g].text, groups[g].body = nil, body
	}
	return groups, nil
}

// appendGroupEvent appends to the group text b the event of the fields given,
// its payload as storedPayload keeps it.
func appendGroupEvent(b []byte, id, typ string, created int64, stored []byte) ([]byte, error) {
	const seps = string(eventSep) + string(fieldSep)
	if strings.ContainsAny(id, seps) || strings.ContainsAny(typ, seps) || bytes.ContainsAny(stored, seps) {
		return nil, fmt.Errorf("store: event %q holds a control character (RS or US)", id)
	}
	if len(b) > 0 {
		b = append(b, eventSep)
	}
	b = append(append(append(b, id...), fieldSep), typ...)
	b = strconv.AppendInt(append(b, fieldSep), created, 10)
	return append(append(b, fieldSep), stored...), nil
}

// groupFields is an event of a group's text, as appendGroupEvent wrote it.
type groupFields struct {
	id, typ string
	created int64
	stored  string
}

// splitEventGroup is the inverse of appendGroupEvent over a whole group.
func splitEventGroup(text string) ([]groupFields, error) {
	var out []groupFields
	for ev := range strings.SplitSeq(text, string(eventSep)) {
		f := strings.Split(ev, string(fieldSep))
		if len(f) != 4 {
			return nil, fmt.Errorf("store: an event of a group has %d fields, not 4", len(f))
		}
		created, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("store: event %q: created_at: %w", f[0], err)
		}
		out = append(out, groupFields{id: f[0], typ: f[1], created: created, stored: f[3]})
	}
	return out, nil
}

// parseEventGroup reads the events of a group of the project's domain from
// the group's text.
func parseEventGroup(text string, projectID int64, domainID string) ([]store.Event, error) {
	fields, err := splitEventGroup(text)
	if err != nil {
		return nil, err
	}
	events := make([]store.Event, len(fields))
	for i, f := range fields {
		e := &events[i]
		e.ID, e.ProjectID, e.DomainID, e.Type, e.CreatedAt = f.id, projectID, domainID, domain.EventType(f.typ), fromMillis(f.created)
		e.Payload = payloadOf(e, f.stored)
	}
	return events, nil
}

// EventGroupOf is the text of a group of the one event of the fields given,
// its payload as storedPayload keeps it, for SQLite's migration 00014, which
// packs it as the store does.
func EventGroupOf(id, typ string, created int64, stored string) (string, error) {
	b, err := appendGroupEvent(nil, id, typ, created, []byte(stored))
	return string(b), err
}

// EventGroupJSON lists the events of a group's text as a JSON array of
// [id, type, created_at, stored payload] arrays, for the Down of SQLite's
// migration 00014, which reads it with json_each.
func EventGroupJSON(text string) (string, error) {
	fields, err := splitEventGroup(text)
	if err != nil {
		return "", err
	}
	rows := make([][4]any, len(fields))
	for i, f := range fields {
		rows[i] = [4]any{f.id, f.typ, f.created, f.stored}
	}
	b, err := json.Marshal(rows)
	return string(b), err
}
