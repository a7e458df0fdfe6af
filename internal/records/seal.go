package records

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// sealVersion is the first byte of every sealed value, so that a later master-key
// rotation can tell old values from new ones.
const sealVersion = 1

// Sealer encrypts private DKIM keys at rest with AES-256-GCM under the operator's
// master key. Each value is bound to its domain id (as additional data), so a sealed
// key copied onto another domain's row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// MasterKeySize is the length of the master key: an AES-256 key.
const MasterKeySize = 32

// ParseMasterKey reads a master key as operators keep it: the base64 of
// MasterKeySize bytes, with any white space around it (a file's newline).
func ParseMasterKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != MasterKeySize {
		return nil, fmt.Errorf("a master key is the base64 of exactly %d bytes (try: head -c %d /dev/urandom | base64)", MasterKeySize, MasterKeySize)
	}
	return key, nil
}

// NewSealer returns a Sealer for a MasterKeySize-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("records: master key must be %d bytes, got %d", MasterKeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("records: master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("records: master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext for the domain with the given id.
func (s *Sealer) Seal(plaintext []byte, domainID string) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("records: seal: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, []byte(domainID)), nil
}

// Open decrypts a value sealed for the domain with the given id.
func (s *Sealer) Open(sealed []byte, domainID string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrSealed
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(domainID))
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
