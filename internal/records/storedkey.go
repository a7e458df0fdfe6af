package records

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// primesVersion starts a private key stored as its two primes.
const primesVersion = 0xd1

// primesExponent is the public exponent of every key Generate makes (Go's
// rsa.GenerateKey uses 65537), and the one a key stored as its primes has.
const primesExponent = 65537

// StoredKey returns the form in which a DKIM private key, given as PKCS #8 DER,
// is sealed and stored: its two primes, from which every other part of the key
// follows (the modulus is their product, the exponent 65537). A 2048-bit key
// takes 259 bytes rather than the 1,2xx of PKCS #8, which is most of what a
// domain's row would otherwise hold. A key the form cannot hold (another
// exponent, more than two primes) is stored as the PKCS #8 DER it was given.
func StoredKey(pkcs8 []byte) ([]byte, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("records: dkim private key: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok || key.E != primesExponent || len(key.Primes) != 2 {
		return pkcs8, nil
	}
	p, q := key.Primes[0].Bytes(), key.Primes[1].Bytes()
	if len(p) > 0xffff {
		return pkcs8, nil
	}
	out := make([]byte, 0, 3+len(p)+len(q))
	out = append(out, primesVersion)
	out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
	out = append(out, p...)
	return append(out, q...), nil
}

// ParseStoredKey reads a private key that StoredKey made, or a PKCS #8 DER key
// (how keys were stored before, and still are when StoredKey cannot shorten
// them). The key is validated whole before it is returned.
func ParseStoredKey(b []byte) (*rsa.PrivateKey, error) {
	if len(b) > 0 && b[0] == primesVersion {
		if len(b) < 3 {
			return nil, errors.New("records: stored key is truncated")
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n+1 {
			return nil, errors.New("records: stored key is truncated")
		}
		p := new(big.Int).SetBytes(b[3 : 3+n])
		q := new(big.Int).SetBytes(b[3+n:])
		// A key whose bytes were cut or changed would still make arithmetic
		// that Validate accepts unless its factors are tested for being prime.
		if !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
			return nil, errors.New("records: stored key's factors are not prime")
		}
		// D is the inverse of E modulo lcm(p-1, q-1), as Go's GenerateKey
		// makes it, so the key read back is the one generated, D included.
		one := big.NewInt(1)
		p1, q1 := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		lambda := new(big.Int).Mul(p1, q1)
		lambda.Quo(lambda, new(big.Int).GCD(nil, nil, p1, q1))
		d := new(big.Int).ModInverse(big.NewInt(primesExponent), lambda)
		if d == nil {
			return nil, errors.New("records: stored key's primes do not make an RSA key")
		}
		key := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: primesExponent},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("records: stored key: %w", err)
		}
		key.Precompute()
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("records: stored key: %w", err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("records: stored key is a %T, not RSA", parsed)
	}
	return key, nil
}
