package sqlstore

import (
	"bytes"
	"compress/flate"
	"strings"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

func testEvent(payload string) store.Event {
	return store.Event{ID: "evt_0123456789abcdef01234567", DomainID: "6b0c53e2001d7d69fb39add5", Type: "domain.verified",
		CreatedAt: time.UnixMilli(1_795_970_018_605).UTC(), Payload: []byte(payload)}
}

// TestPayloadRoundTrip checks that every payload reads back byte for byte
// through its stored form and its packing, and that the start the row gives
// is left out where the payload has it.
func TestPayloadRoundTrip(t *testing.T) {
	e := testEvent("")
	start := payloadStart(&e)
	tests := []struct {
		payload string
		kept    string // the stored form
	}{
		{start + `"domain":"example.com"}}`, `"domain":"example.com"}}`},
		{start + `{"x":1}}}`, start + `{"x":1}}}`},
		{start + `=}}`, start + `=}}`},
		{start, start},
		{`{"type":"other"}`, `{"type":"other"}`},
		{`=x`, `==x`},
		{` {}`, `= {}`},
		{``, `=`},
		{strings.Replace(start, "2026", "2025", 1) + `"domain":"x"}}`, strings.Replace(start, "2026", "2025", 1) + `"domain":"x"}}`},
	}
	c := NewPayloadCodec()
	for _, tt := range tests {
		e := testEvent(tt.payload)
		kept := storedPayload(&e)
		if string(kept) != tt.kept {
			t.Errorf("storedPayload(%q) = %q, want %q", tt.payload, kept, tt.kept)
		}
		packed, err := c.Pack(kept)
		if err != nil {
			t.Fatal(err)
		}
		text, err := c.Unpack(packed)
		if err != nil || text != string(kept) {
			t.Errorf("Unpack(Pack(%q)) = %q, %v", kept, text, err)
		}
		if got := payloadOf(&e, text); string(got) != tt.payload {
			t.Errorf("payloadOf(storedPayload(%q)) = %q", tt.payload, got)
		}
	}
}

func TestUnpackRejects(t *testing.T) {
	c := NewPayloadCodec()
	var big bytes.Buffer
	big.WriteByte(payloadPacked)
	w, _ := flate.NewWriterDict(&big, flate.BestCompression, []byte(payloadDict))
	w.Write(bytes.Repeat([]byte("a"), maxPayload+1))
	w.Close()
	for name, packed := range map[string][]byte{
		"empty":           nil,
		"unknown version": {2, 0},
		"not deflate":     {payloadPacked, 0xff, 0xff, 0xff},
		"too large":       big.Bytes(),
	} {
		if text, err := c.Unpack(packed); err == nil {
			t.Errorf("%s: Unpack = %d bytes, want an error", name, len(text))
		}
	}
}

// FuzzPayload checks that any payload of any event reads back as it was.
func FuzzPayload(f *testing.F) {
	e := testEvent("")
	f.Add(payloadStart(&e) + `"domain":"example.com"}}`)
	f.Add(`={"x":1}`)
	f.Add(``)
	c := NewPayloadCodec()
	f.Fuzz(func(t *testing.T, payload string) {
		e := testEvent(payload)
		packed, err := c.Pack(storedPayload(&e))
		if err != nil {
			t.Fatal(err)
		}
		text, err := c.Unpack(packed)
		if err != nil {
			t.Fatal(err)
		}
		if got := payloadOf(&e, text); string(got) != payload {
			t.Fatalf("read back %q, want %q", got, payload)
		}
	})
}

// FuzzUnpack checks that unpacking bytes that are no packed payload fails or
// returns at most maxPayload bytes, never panics.
func FuzzUnpack(f *testing.F) {
	c := NewPayloadCodec()
	good, _ := c.Pack([]byte(`"domain":"example.com"}}`))
	f.Add(good)
	f.Add([]byte{payloadPacked})
	f.Fuzz(func(t *testing.T, packed []byte) {
		if text, err := c.Unpack(packed); err == nil && len(text) > maxPayload {
			t.Fatalf("unpacked %d bytes", len(text))
		}
	})
}

// TestStoredValue checks which values are kept as bytes, and that every value
// reads back as it was.
func TestStoredValue(t *testing.T) {
	tests := []struct {
		value  string
		binary bool // kept as bytes where the dialect allows
	}{
		{"v=DKIM1; k=rsa; p=TWFu", true},
		{"v=DKIM1; k=rsa; p=TWFuTWE=", false}, // padded
		{"v=DKIM1; k=rsa; p=", false},
		{"v=DKIM1; k=rsa; p=TWF", false},   // not a multiple of four
		{"v=DKIM1; k=rsa; p=TW!u", false},  // not base64
		{"v=DKIM1; k=rsa;  p=TWFu", false}, // another form
		{"v=DKIM1; p=TWFu", false},
		{"v=spf1 include:amazonses.com ~all", false},
		{"", false},
	}
	for _, tt := range tests {
		for _, dialect := range []bool{true, false} {
			kept := storedValue(tt.value, dialect)
			if _, isBytes := kept.([]byte); isBytes != (tt.binary && dialect) {
				t.Errorf("storedValue(%q, %v) = %T", tt.value, dialect, kept)
			}
			if got, err := valueOf(kept); err != nil || got != tt.value {
				t.Errorf("valueOf(storedValue(%q, %v)) = %q, %v", tt.value, dialect, got, err)
			}
		}
	}
}
