package dnscheck

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// dkimFixture reads a base64 key from testdata/dkim: rsa2048.spki (SubjectPublicKeyInfo),
// rsa1024.pkcs1 (PKCS#1), rsa512.spki (too short), p256.spki (ECDSA) and ed25519.raw.
func dkimFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "dkim", name+".b64"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dkimSpaced inserts a space every n characters, as DNS panels and zone files split keys.
func dkimSpaced(s string, n int) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), " ")
}

func TestParseDKIMKeyValid(t *testing.T) {
	rsa2048 := dkimFixture(t, "rsa2048.spki")
	rsa1024 := dkimFixture(t, "rsa1024.pkcs1")
	ed := dkimFixture(t, "ed25519.raw")
	tests := []struct {
		txt  string
		want DKIMKey
	}{
		{"v=DKIM1; k=rsa; p=" + rsa2048,
			DKIMKey{Version: "DKIM1", KeyType: "rsa", PublicKey: rsa2048, Services: []string{"*"}, KeyBits: 2048}},
		// Spaces inside p=, as when a long key is split, are removed.
		{"v=DKIM1; k=rsa; p=" + dkimSpaced(rsa2048, 64),
			DKIMKey{Version: "DKIM1", KeyType: "rsa", PublicKey: rsa2048, Services: []string{"*"}, KeyBits: 2048}},
		// v= and k= are optional; a PKCS#1 key is accepted; a trailing semicolon is allowed.
		{"p=" + rsa1024 + ";",
			DKIMKey{KeyType: "rsa", PublicKey: rsa1024, Services: []string{"*"}, KeyBits: 1024}},
		{" v = DKIM1 ;\tk=ed25519 ; p = " + ed + " ; ",
			DKIMKey{Version: "DKIM1", KeyType: "ed25519", PublicKey: ed, Services: []string{"*"}}},
		// Every tag, with whitespace around the colons and unknown flags, algorithms, services
		// and tags, which must be ignored.
		{"v=DKIM1; h=sha256 : sha1:sha512; k=rsa; n=Contact postmaster; s=email:*:x-future; t=y:s:x-new; g=*; foo_bar=baz; p=" + rsa2048,
			DKIMKey{Version: "DKIM1", KeyType: "rsa", PublicKey: rsa2048, Testing: true, StrictDomain: true,
				HashAlgs: []string{"sha256", "sha1", "sha512"}, Services: []string{"email", "*", "x-future"},
				Notes: "Contact postmaster", KeyBits: 2048}},
		// v= after other tags: RFC 6376 section 3.6.1 says it MUST be first, but verifiers
		// accept it, so it parses and is only noted.
		{"k=rsa; v=DKIM1; p=" + rsa2048,
			DKIMKey{Version: "DKIM1", KeyType: "rsa", PublicKey: rsa2048, Services: []string{"*"}, KeyBits: 2048, VersionNotFirst: true}},
		// A tag name with a hyphen breaks RFC 6376 section 3.2, but verifiers skip it.
		{"v=DKIM1; x-future=1; p=" + rsa2048,
			DKIMKey{Version: "DKIM1", KeyType: "rsa", PublicKey: rsa2048, Services: []string{"*"}, KeyBits: 2048, OddTags: []string{"x-future"}}},
		// Tag names are case-sensitive (RFC 6376 section 3.2): V= is an unknown tag, ignored.
		{"V=DKIM1; p=" + rsa2048,
			DKIMKey{KeyType: "rsa", PublicKey: rsa2048, Services: []string{"*"}, KeyBits: 2048}},
		// An empty p= revokes the key; that is not an error.
		{"v=DKIM1; p=", DKIMKey{Version: "DKIM1", KeyType: "rsa", Services: []string{"*"}}},
		{"v=DKIM1; k=rsa; t=y; p=", DKIMKey{Version: "DKIM1", KeyType: "rsa", Testing: true, Services: []string{"*"}}},
	}
	for _, tt := range tests {
		got, err := ParseDKIMKey(tt.txt)
		if err != nil {
			t.Errorf("ParseDKIMKey(%.60q) error: %v", tt.txt, err)
			continue
		}
		if got.Version != tt.want.Version || got.KeyType != tt.want.KeyType || got.PublicKey != tt.want.PublicKey ||
			got.Testing != tt.want.Testing || got.StrictDomain != tt.want.StrictDomain || got.Notes != tt.want.Notes ||
			got.KeyBits != tt.want.KeyBits || got.VersionNotFirst != tt.want.VersionNotFirst || !slices.Equal(got.OddTags, tt.want.OddTags) || !slices.Equal(got.HashAlgs, tt.want.HashAlgs) || !slices.Equal(got.Services, tt.want.Services) {
			t.Errorf("ParseDKIMKey(%.60q):\n got %+v\nwant %+v", tt.txt, got, tt.want)
		}
		if got.Revoked() != (tt.want.PublicKey == "") {
			t.Errorf("ParseDKIMKey(%.60q).Revoked() = %v", tt.txt, got.Revoked())
		}
	}
}

func TestParseDKIMKeyInvalid(t *testing.T) {
	rsa2048 := dkimFixture(t, "rsa2048.spki")
	tests := []syntaxCase{
		{"", "empty"},
		{"v=DKIM2; p=" + rsa2048, `not "DKIM2"`},
		{"v=dkim1; p=" + rsa2048, "capital letters"},
		{`v="DKIM1"; p=` + rsa2048, "remove the quotation marks"},
		{`"v=DKIM1; k=rsa; p=` + rsa2048 + `"`, "without quotes"},
		{"v=DKIM1; k=rsa; p=" + rsa2048[:200] + `" "` + rsa2048[200:], "quotation mark"},
		{"v=DKIM1; k=rsa", "no p= tag"},
		{"v=DKIM1; k=rsa; P=" + rsa2048, "p= in lowercase"},
		{"v=DKIM1; p=" + rsa2048 + "; p=" + rsa2048, "p= tag appears more than once"},
		{"v=DKIM1; k=rsa; k=rsa; p=" + rsa2048, "k= tag appears more than once"},
		{"v=DKIM1;; p=" + rsa2048, "empty entry"},
		{"; v=DKIM1; p=" + rsa2048, "empty entry"},
		{"v=DKIM1; k=rsa p=" + rsa2048, "missing a semicolon after k=rsa;"},
		{"v=DKIM1; rsa; p=" + rsa2048, `"rsa" has no '=' sign`},
		{"v=DKIM1; 1k=rsa; p=" + rsa2048, "tag name"},
		{"v=DKIM1; =rsa; p=" + rsa2048, "no tag name"},
		{"v=DKIM1;\u00a0p=" + rsa2048, "non-ASCII"},
		{"v=DKIM1; n=caf\u00e9; p=" + rsa2048, "non-ASCII"},
		{"v=DKIM1; k=RSA; p=" + rsa2048, "lowercase"},
		{"v=DKIM1; k=dsa; p=" + rsa2048, "k=rsa"},
		{"v=DKIM1; h=sha256:; p=" + rsa2048, "h= tag"},
		{"v=DKIM1; t=y,s; p=" + rsa2048, "t= tag"},
		{"v=DKIM1; s=e mail; p=" + rsa2048, "s= tag"},
		{"v=DKIM1; k=rsa; p=-----BEGIN PUBLIC KEY-----" + rsa2048 + "-----END PUBLIC KEY-----", "PEM header"},
		{"v=DKIM1; k=rsa; p=" + strings.ReplaceAll(rsa2048, "/", "_"), "not a base64 character"},
		{"v=DKIM1; k=rsa; p=" + rsa2048[:len(rsa2048)-1], "not complete base64"},
		{"v=DKIM1; k=rsa; p=" + rsa2048 + "===", "more than two '='"},
		{"v=DKIM1; k=rsa; p=" + rsa2048[:100] + rsa2048[104:], "does not decode to an RSA public key"},
		{"v=DKIM1; k=rsa; p=" + dkimFixture(t, "p256.spki"), "ECDSA key"},
		{"v=DKIM1; k=rsa; p=" + dkimFixture(t, "rsa512.spki"), "only 512 bits"},
		{"v=DKIM1; k=ed25519; p=" + rsa2048, "32 bytes"},
		{"v=DKIM1; k=rsa; p=" + dkimFixture(t, "ed25519.raw"), "does not decode to an RSA public key"},
		{rsa2048, "only a base64 key"},
	}
	checkSyntaxErrors(t, "DKIM", ParseDKIMKey, tests, "The ", "Tag ")
}

func FuzzParseDKIMKey(f *testing.F) {
	f.Add("v=DKIM1; k=rsa; p=" + dkimFixture(f, "rsa2048.spki"))
	f.Add("v=DKIM1; h=sha256; t=y:s; s=email; n=x; p=")
	f.Fuzz(func(t *testing.T, txt string) {
		key, err := ParseDKIMKey(txt)
		if !fuzzAccepted(t, "DKIM", txt, err, nil) {
			return
		}
		if key.Version != "" && key.Version != "DKIM1" {
			t.Fatalf("ParseDKIMKey(%q): version %q", txt, key.Version)
		}
		if key.KeyType != "rsa" && key.KeyType != "ed25519" {
			t.Fatalf("ParseDKIMKey(%q): key type %q", txt, key.KeyType)
		}
		if strings.ContainsAny(key.PublicKey, " \t\r\n") {
			t.Fatalf("ParseDKIMKey(%q): public key %q keeps whitespace", txt, key.PublicKey)
		}
		if !key.Revoked() {
			der, reason := dkimDecodeBase64(key.PublicKey)
			if reason != "" || len(der) == 0 {
				t.Fatalf("ParseDKIMKey(%q) accepted a p= that does not decode: %s", txt, reason)
			}
			if key.KeyType == "rsa" && key.KeyBits < DKIMMinRSABits {
				t.Fatalf("ParseDKIMKey(%q) accepted a %d-bit RSA key", txt, key.KeyBits)
			}
		}
	})
}

// TestDKIMKeyUse checks the rules that decide whether a parsed key verifies domaind's
// signatures (rsa-sha256 on email) with the expected key material.
func TestDKIMKeyUse(t *testing.T) {
	spki := dkimFixture(t, "rsa2048.spki")
	want, err := ParseDKIMKey("p=" + spki)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := dkimDecodeBase64(spki)
	pub, _ := dkimParseRSA(der)
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub))
	tests := []struct {
		txt                   string
		sha256, email, ourKey bool
	}{
		{"p=" + spki, true, true, true},
		// RFC 6376 section 3.3.1 names the PKCS#1 form; the key material is what counts.
		{"v=DKIM1; k=rsa; p=" + pkcs1, true, true, true},
		{"h=sha256; p=" + spki, true, true, true},
		{"h=sha1:sha256; s=email:tlsrpt; p=" + spki, true, true, true},
		{"h=sha1; p=" + spki, false, true, true},
		{"s=tlsrpt; p=" + spki, true, false, true},
		{"s=*; p=" + spki, true, true, true},
		{"p=" + dkimFixture(t, "rsa1024.pkcs1"), true, true, false},
	}
	for _, tt := range tests {
		k, err := ParseDKIMKey(tt.txt)
		if err != nil {
			t.Fatalf("ParseDKIMKey(%.40q): %v", tt.txt, err)
		}
		if k.AcceptsHash("sha256") != tt.sha256 || k.ForEmail() != tt.email || k.SameRSAKey(want.RSA) != tt.ourKey {
			t.Errorf("%.50q: sha256 %v email %v our key %v, want %v %v %v", tt.txt,
				k.AcceptsHash("sha256"), k.ForEmail(), k.SameRSAKey(want.RSA), tt.sha256, tt.email, tt.ourKey)
		}
	}
}

func TestDKIMRecordFor(t *testing.T) {
	spki := dkimFixture(t, "rsa2048.spki")
	for _, tt := range []struct {
		in, want string // want "" means an error
	}{
		{spki, "v=DKIM1; k=rsa; p=" + spki},
		{" " + dkimSpaced(spki, 64) + "\n", "v=DKIM1; k=rsa; p=" + spki},
		{"v=DKIM1; k=rsa; p=" + spki, "v=DKIM1; k=rsa; p=" + spki},
		{"  p=" + spki + ";  ", "p=" + spki + ";"},
		// The PKCS#1 form, which OpenDKIM cannot read, becomes the generated record.
		{pkcs1(t, spki), "v=DKIM1; k=rsa; p=" + spki},
		{"v=DKIM1; p=" + pkcs1(t, spki), "v=DKIM1; k=rsa; p=" + spki},
		{"v=DKIM1; k=rsa; p=", ""},
		{"v=DKIM1; h=sha1; p=" + spki, ""},
		{"v=DKIM1; s=tlsrpt; p=" + spki, ""},
		{"v=DKIM1; k=ed25519; p=" + dkimFixture(t, "ed25519.raw"), ""},
		{"v=DKIM1; k=rsa; p=MIIB", ""},
		{"MIIB", ""},
	} {
		got, key, err := DKIMRecordFor(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("DKIMRecordFor(%.40q) = %.40q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want || key == nil {
			t.Errorf("DKIMRecordFor(%.40q) = %.40q, %v, %v; want %.40q", tt.in, got, key != nil, err, tt.want)
		}
		// A check judges the record as expected by this parse of it, and not
		// by parsing what DNS publishes, when the two are the same text.
		_, parsed, err := dkimRecordFor(tt.in)
		want, werr := ParseDKIMKey(got)
		if err != nil || werr != nil || !reflect.DeepEqual(parsed, want) {
			t.Errorf("dkimRecordFor(%.40q) parsed %+v, %v; ParseDKIMKey of its record %+v, %v", tt.in, parsed, err, want, werr)
		}
	}
}

// pkcs1 returns the PKCS#1 RSAPublicKey form of a base64 SubjectPublicKeyInfo.
func pkcs1(t *testing.T, spki string) string {
	t.Helper()
	der, reason := dkimDecodeBase64(spki)
	if reason != "" {
		t.Fatal(reason)
	}
	pub, reason := dkimParseRSA(der)
	if reason != "" {
		t.Fatal(reason)
	}
	return base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub))
}

// looksBareKeyByCopy is dkimLooksBareKey as it was first written, on a copy
// with the whitespace stripped and the padding trimmed: the in-place version
// must agree with it.
func looksBareKeyByCopy(txt string) bool {
	body := strings.TrimRight(dkimStripSpace(txt), "=")
	if len(body) < 64 {
		return false
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !(isAlpha(c) || isDigit(c) || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

func TestDKIMLooksBareKey(t *testing.T) {
	key := strings.Repeat("MIIBIjAN", 8)
	for _, tt := range []struct {
		txt  string
		want bool
	}{
		{key, true},
		{key + "==", true},
		{" " + key[:30] + " \t" + key[30:] + "= =\r\n", true},
		{key[:63] + "==", false},
		{key[:63] + " =", false},
		{"v=DKIM1; k=rsa; p=" + key, false},
		{key[:40] + "=" + key[40:], false},
		{key + "-", false},
		{"", false},
	} {
		if got := dkimLooksBareKey(tt.txt); got != tt.want || got != looksBareKeyByCopy(tt.txt) {
			t.Errorf("dkimLooksBareKey(%q) = %v, want %v", tt.txt, got, tt.want)
		}
	}
}

func FuzzDKIMLooksBareKey(f *testing.F) {
	f.Add(strings.Repeat("MIIBIjAN", 8) + "= =")
	f.Add("v=DKIM1; p=" + strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, txt string) {
		if got, want := dkimLooksBareKey(txt), looksBareKeyByCopy(txt); got != want {
			t.Fatalf("dkimLooksBareKey(%q) = %v, the copying version %v", txt, got, want)
		}
	})
}
