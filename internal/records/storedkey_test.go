package records_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/domaind/domaind/internal/records"
)

// TestStoredKey stores a generated key as its primes and reads it back: the
// same key (modulus, exponent, primes), which signs exactly as the original
// does, in a fifth of the bytes. PKCS #8 DER as stored before still reads, and
// bytes that are neither are refused.
func TestStoredKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := records.StoredKey(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) > 300 {
		t.Errorf("stored key is %d bytes, PKCS #8 %d", len(stored), len(der))
	}
	digest := sha256.Sum256([]byte("message"))
	want, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"primes": stored, "pkcs8": der} {
		got, err := records.ParseStoredKey(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(key) || got.N.Cmp(key.N) != 0 {
			t.Errorf("%s: another key came back", name)
		}
		sig, err := rsa.SignPKCS1v15(nil, got, crypto.SHA256, digest[:])
		if err != nil || !bytes.Equal(sig, want) {
			t.Errorf("%s: signature differs from the original key's (%v)", name, err)
		}
	}
	for _, bad := range [][]byte{nil, {0xd1}, {0xd1, 0, 200, 1, 2}, stored[:len(stored)-40], append([]byte{0xd1, 0, 1, 4}, 6)} {
		if _, err := records.ParseStoredKey(bad); err == nil {
			t.Errorf("ParseStoredKey(% x) accepted", bad)
		}
	}
}
