package sqlstore

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	kflate "github.com/klauspost/compress/flate"

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
// keeps that rest compressed (PayloadCodec): DEFLATE (RFC 1951) with a preset
// dictionary of what the checks' events repeat, which makes a domain.verified
// event's 854 bytes about 60, and a domain.record.changed event's 332 about
// 40. The standard library's compressor clears half a megabyte of tables for
// every payload (40 µs); klauspost/compress's fastest level, which uses the
// dictionary too, takes 5 µs and writes the same format, which the standard
// library's decompressor reads.

// payloadPacked is the first byte of a packed payload: the version of
// payloadDict it was packed with. A new dictionary takes a new number, and
// the old one stays for the payloads packed with it.
const payloadPacked = 1

// payloadDict is the dictionary of version 1: the keys and values a check's
// events carry, most frequent last (DEFLATE finds the nearest match cheapest).
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

// PayloadCodec packs and unpacks payloads, reusing its compressors; it is safe
// for concurrent use.
type PayloadCodec struct {
	writers, readers sync.Pool
}

// NewPayloadCodec returns a codec.
func NewPayloadCodec() *PayloadCodec { return &PayloadCodec{} }

// Pack compresses text, a payload as storedPayload keeps it.
func (c *PayloadCodec) Pack(text []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(text)/4 + 16)
	buf.WriteByte(payloadPacked)
	w, _ := c.writers.Get().(*kflate.Writer)
	if w == nil {
		var err error
		if w, err = kflate.NewWriterDict(&buf, kflate.BestSpeed, []byte(payloadDict)); err != nil {
			return nil, fmt.Errorf("store: pack payload: %w", err)
		}
	} else {
		w.Reset(&buf)
	}
	defer c.writers.Put(w)
	if _, err := w.Write(text); err != nil {
		return nil, fmt.Errorf("store: pack payload: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("store: pack payload: %w", err)
	}
	return buf.Bytes(), nil
}

// Unpack is the inverse of Pack.
func (c *PayloadCodec) Unpack(packed []byte) (string, error) {
	if len(packed) == 0 || packed[0] != payloadPacked {
		return "", errors.New("store: packed payload of an unknown version")
	}
	src := bytes.NewReader(packed[1:])
	r, _ := c.readers.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReaderDict(src, []byte(payloadDict))
	} else if err := r.(flate.Resetter).Reset(src, []byte(payloadDict)); err != nil {
		return "", fmt.Errorf("store: unpack payload: %w", err)
	}
	defer c.readers.Put(r)
	var out bytes.Buffer
	out.Grow(8 * len(packed))
	n, err := out.ReadFrom(io.LimitReader(r, maxPayload+1))
	if err != nil {
		return "", fmt.Errorf("store: unpack payload: %w", err)
	}
	if n > maxPayload {
		return "", fmt.Errorf("store: unpack payload: more than %d bytes", maxPayload)
	}
	return out.String(), nil
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
