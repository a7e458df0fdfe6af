package records_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/domaind/domaind/internal/records"
)

const domainID = "665f1a2b3c4d5e6f70819203"

func sealer(t *testing.T, fill byte) *records.Sealer {
	t.Helper()
	s, err := records.NewSealer(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func seal(t *testing.T, s *records.Sealer, plaintext []byte) []byte {
	t.Helper()
	sealed, err := s.Seal(plaintext, domainID)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return sealed
}

func TestSealRoundTrip(t *testing.T) {
	s := sealer(t, 7)
	for _, plaintext := range [][]byte{
		[]byte("-----BEGIN PRIVATE KEY----- not really"),
		{0, 1, 2, 0xff},
		{},
	} {
		sealed := seal(t, s, plaintext)
		if len(plaintext) > 0 && bytes.Contains(sealed, plaintext) {
			t.Errorf("sealed value %x contains the plaintext", sealed)
		}
		got, err := s.Open(sealed, domainID)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Errorf("Open(Seal(%x)) = %x", plaintext, got)
		}
		// Another Sealer with the same master key, as after a restart, opens it too.
		if got, err := sealer(t, 7).Open(sealed, domainID); err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("Open with a new Sealer of the same key = %x, %v; want %x", got, err, plaintext)
		}
	}
}

func TestSealFreshNonce(t *testing.T) {
	s := sealer(t, 7)
	plaintext := []byte("the same private key")
	a, b := seal(t, s, plaintext), seal(t, s, plaintext)
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext are equal: %x", a)
	}
}

func TestOpenRejects(t *testing.T) {
	s := sealer(t, 7)
	sealed := seal(t, s, []byte("private key"))

	if _, err := sealer(t, 8).Open(sealed, domainID); !errors.Is(err, records.ErrSealed) {
		t.Errorf("Open with another master key: error = %v, want ErrSealed", err)
	}
	if _, err := s.Open(sealed, "665f1a2b3c4d5e6f70819204"); !errors.Is(err, records.ErrSealed) {
		t.Errorf("Open for another domain: error = %v, want ErrSealed", err)
	}
	// Every byte is covered: the version, the nonce, the ciphertext and the tag.
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := s.Open(tampered, domainID); !errors.Is(err, records.ErrSealed) {
			t.Errorf("Open with byte %d flipped: error = %v, want ErrSealed", i, err)
		}
	}
	for _, bad := range [][]byte{nil, sealed[:1], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := s.Open(bad, domainID); !errors.Is(err, records.ErrSealed) {
			t.Errorf("Open(%d bytes of %d) error = %v, want ErrSealed", len(bad), len(sealed), err)
		}
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := records.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d bytes) succeeded, want an error", n)
		}
	}
	if _, err := records.NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer(32 bytes): %v", err)
	}
}
