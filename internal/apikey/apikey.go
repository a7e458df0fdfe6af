// Package apikey makes and recognises API keys. A key is "AS_" followed by 43
// URL-safe base64 characters (32 random bytes), the form AutoSend's keys take. Only
// its SHA-256 hash is stored; the first characters are kept as a prefix so that
// operators can tell keys apart and revoke one.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

const (
	// Scheme starts every key.
	Scheme = "AS_"
	// PrefixLen is how many characters of a key are stored in the clear.
	PrefixLen = len(Scheme) + 8
	randomLen = 43 // base64.RawURLEncoding of 32 bytes
	// MaxLen bounds what Valid accepts, so hostile headers are rejected before hashing.
	MaxLen = len(Scheme) + randomLen
)

// New returns a fresh key.
func New() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("apikey: %w", err)
	}
	return Scheme + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash returns the stored form of key.
func Hash(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// Prefix returns the part of key stored in the clear.
func Prefix(key string) string { return key[:min(len(key), PrefixLen)] }

// Valid reports whether key has the form of a domaind key. It says nothing about
// whether the key exists.
func Valid(key string) bool {
	if len(key) != MaxLen || key[:len(Scheme)] != Scheme {
		return false
	}
	for i := len(Scheme); i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
