package sqlstore

import (
	"bytes"
	"compress/flate"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

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
	// What the bound refuses, in both forms: a DEFLATE stream that inflates
	// past it, and an S2 block whose header says it would.
	var big bytes.Buffer
	big.WriteByte(payloadPacked)
	w, _ := flate.NewWriterDict(&big, flate.BestCompression, []byte(payloadDict))
	w.Write(bytes.Repeat([]byte("a"), maxPayload+1))
	w.Close()
	bigS2 := append([]byte{payloadS2}, s2.Encode(nil, bytes.Repeat([]byte("a"), maxPayload+1))...)
	for name, packed := range map[string][]byte{
		"empty":           nil,
		"unknown version": {9, 0},
		"not deflate":     {payloadPacked, 0xff, 0xff, 0xff},
		"not s2":          {payloadS2, 0x05, 0xff, 0xff},
		"s2, short":       {checksS2, 0x40, 0x00},
		"too large":       big.Bytes(),
		"too large, s2":   bigS2,
	} {
		if text, err := c.Unpack(packed); err == nil {
			t.Errorf("%s: Unpack = %d bytes, want an error", name, len(text))
		}
	}
}

// TestUnpackStored checks that what was packed in each form ever written
// reads back: DEFLATE (1, 2), which the store wrote before S2 and the
// migrations still write, and S2 (3, 4). The packed files were written by the
// code of their time (1 and 2 by 8b6fcc5's Pack and PackChecks), so this
// fails if a dictionary changes under rows already stored.
func TestUnpackStored(t *testing.T) {
	c := NewPayloadCodec()
	for _, tt := range []struct {
		packed, text string
		deflate      func([]byte) ([]byte, error)
	}{
		{"events-verified.packed1", "events-verified.txt", c.Deflate},
		{"checks-verified.packed2", "checks-verified.json", c.DeflateChecks},
		{"events-verified.packed3", "events-verified.txt", nil},
		{"checks-verified.packed4", "checks-verified.json", nil},
	} {
		packed, err := os.ReadFile("testdata/" + tt.packed)
		if err != nil {
			t.Fatal(err)
		}
		text, err := os.ReadFile("testdata/" + tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Unpack(packed); err != nil || got != string(text) {
			t.Errorf("Unpack of %s = %.40q, %v", tt.packed, got, err)
		}
		if tt.deflate == nil {
			continue
		}
		// What the migrations write now is the same form, byte for byte.
		if again, err := tt.deflate(text); err != nil || !bytes.Equal(again, packed) {
			t.Errorf("%s deflated anew differs from %s (%v)", tt.text, tt.packed, err)
		}
	}
}

// TestPackSize checks that the dictionaries find most of what a verified
// domain's check stores: a packing that lost them would double the bytes a
// checked domain takes.
func TestPackSize(t *testing.T) {
	c := NewPayloadCodec()
	for _, tt := range []struct {
		file string
		pack func([]byte) ([]byte, error)
		most int
	}{
		{"testdata/events-verified.txt", c.Pack, 300},
		{"testdata/checks-verified.json", c.PackChecks, 250},
	} {
		text, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		packed, err := tt.pack(text)
		if err != nil {
			t.Fatal(err)
		}
		if len(packed) > tt.most {
			t.Errorf("%s (%d bytes) packs into %d, want at most %d", tt.file, len(text), len(packed), tt.most)
		}
		if got, err := c.Unpack(packed); err != nil || got != string(text) {
			t.Errorf("%s does not read back: %v", tt.file, err)
		}
	}
}

// BenchmarkPack is what a verified domain's check packs: its six events, and
// its five records' checks.
func BenchmarkPack(b *testing.B) {
	c := NewPayloadCodec()
	for _, tt := range []struct {
		name string
		file string
		pack func([]byte) ([]byte, error)
	}{
		{"events", "testdata/events-verified.txt", c.Pack},
		{"checks", "testdata/checks-verified.json", c.PackChecks},
	} {
		text, err := os.ReadFile(tt.file)
		if err != nil {
			b.Fatal(err)
		}
		packed, _ := tt.pack(text)
		b.Run(tt.name+"/pack", func(b *testing.B) {
			for b.Loop() {
				tt.pack(text)
			}
			b.ReportMetric(float64(len(packed)), "bytes")
		})
		b.Run(tt.name+"/unpack", func(b *testing.B) {
			for b.Loop() {
				c.Unpack(packed)
			}
		})
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
	checks, _ := c.PackChecks([]byte(`[{"h":"0123456789abcdef","k":"dkim"}]`))
	f.Add(checks)
	f.Add([]byte{payloadPacked})
	f.Add([]byte{checksPacked})
	f.Fuzz(func(t *testing.T, packed []byte) {
		most := maxPayload
		if len(packed) > 0 && (packed[0] == checksS2 || packed[0] == checksPacked) {
			most = maxChecks
		}
		if text, err := c.Unpack(packed); err == nil && len(text) > most {
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

// TestEventGroup checks that a group's events read back whole and in their
// order, whatever form their payloads are kept in, and that an event holding
// a separator is refused rather than stored so that it reads back as two.
func TestEventGroup(t *testing.T) {
	e := testEvent("")
	start := payloadStart(&e)
	var events []store.Event
	for i, payload := range []string{start + `"domain":"example.com"}}`, `{"type":"other"}`, `=x`, ``, start} {
		e := testEvent(payload)
		e.ID = fmt.Sprintf("evt_%d", i)
		e.CreatedAt = e.CreatedAt.Add(time.Duration(i) * time.Millisecond)
		events = append(events, e)
	}
	var text []byte
	for i := range events {
		var err error
		if text, err = appendGroupEvent(text, events[i].ID, string(events[i].Type), millis(events[i].CreatedAt), storedPayload(&events[i])); err != nil {
			t.Fatal(err)
		}
	}
	got, err := parseEventGroup(string(text), 7, e.DomainID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("%d events read back, want %d", len(got), len(events))
	}
	for i, g := range got {
		w := events[i]
		if g.ID != w.ID || g.Type != w.Type || !g.CreatedAt.Equal(w.CreatedAt) || string(g.Payload) != string(w.Payload) ||
			g.ProjectID != 7 || g.DomainID != w.DomainID {
			t.Errorf("event %d read back as %+v, want %+v", i, g, w)
		}
	}

	for _, bad := range []struct{ id, typ, payload string }{
		{"evt_\x1e", "domain.verified", `{}`},
		{"evt_1", "domain\x1fverified", `{}`},
		{"evt_1", "domain.verified", "{\"a\":\"\x1e\"}"},
		{"evt_1", "domain.verified", "{\"a\":\"\x1f\"}"},
	} {
		if _, err := appendGroupEvent(nil, bad.id, bad.typ, 1, []byte(bad.payload)); err == nil {
			t.Errorf("event %q %q %q with a separator was taken", bad.id, bad.typ, bad.payload)
		}
	}
	for _, bad := range []string{"", "evt_1\x1fdomain.verified\x1f1", "evt_1\x1ft\x1fnot a number\x1f{}", "a\x1fb\x1f1\x1f{}\x1e"} {
		if _, err := splitEventGroup(bad); err == nil {
			t.Errorf("group text %q read without an error", bad)
		}
	}
}

// FuzzEventGroup checks that any group text either fails to read or reads
// back as events that write the same text again.
func FuzzEventGroup(f *testing.F) {
	f.Add("evt_1\x1fdomain.verified\x1f1795970018605\x1f\"domain\":\"x\"}}")
	f.Add("evt_1\x1fa\x1f1\x1f{}\x1eevt_2\x1fb\x1f-2\x1f=x")
	f.Add("\x1f\x1f\x1f")
	f.Fuzz(func(t *testing.T, text string) {
		fields, err := splitEventGroup(text)
		if err != nil {
			return
		}
		var again []byte
		for _, f := range fields {
			if again, err = appendGroupEvent(again, f.id, f.typ, f.created, []byte(f.stored)); err != nil {
				t.Fatalf("%q read as %+v, which cannot be written: %v", text, fields, err)
			}
		}
		// A created_at written as "+1" or "01" reads as 1 and writes as "1":
		// the same events, not the same text.
		back, err := splitEventGroup(string(again))
		if err != nil || !slices.Equal(back, fields) {
			t.Fatalf("%q read as %+v, written as %q, read again as %+v (%v)", text, fields, again, back, err)
		}
	})
}
