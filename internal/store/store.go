// Package store defines how domaind keeps projects, API keys and domains. The Store
// interface is implemented by package sqlite (the embedded default) and, for several
// replicas, by a PostgreSQL implementation; package storetest holds the conformance
// tests every implementation must pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/domaind/domaind/internal/domain"
)

// Errors every implementation returns, checked with errors.Is.
var (
	// ErrNotFound means no row matched: an unknown id, or one of another project.
	ErrNotFound = errors.New("store: not found")
	// ErrDomainExists means the project already has a domain of that name.
	ErrDomainExists = errors.New("store: domain already exists in this project")
	// ErrAmbiguous means a key prefix matched more than one API key.
	ErrAmbiguous = errors.New("store: prefix matches more than one key")
)

// Project is a tenant: it owns API keys and domains.
type Project struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// APIKey is the stored half of an API key: its hash and a short prefix that
// identifies it to operators. The key itself is never stored.
type APIKey struct {
	ID          int64
	ProjectID   int64
	ProjectName string
	Prefix      string
	Hash        [32]byte // SHA-256 of the whole key
	CreatedAt   time.Time
	RevokedAt   time.Time // zero while the key is valid
}

// Page selects part of a list. A Limit of 0 means no limit.
type Page struct {
	Limit  int
	Offset int
}

// Store keeps domaind's state. Every method that writes does so in one transaction:
// it either happens whole or not at all.
type Store interface {
	// EnsureProject returns the project named name, creating it if it is new.
	EnsureProject(ctx context.Context, name string, now time.Time) (Project, error)
	// CreateAPIKey stores a new key's hash for a project.
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// APIKeyByHash returns the key with the given hash, revoked or not.
	APIKeyByHash(ctx context.Context, hash [32]byte) (APIKey, error)
	// APIKeys lists every key, oldest first.
	APIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey revokes the one key whose prefix starts with prefix.
	RevokeAPIKey(ctx context.Context, prefix string, now time.Time) (APIKey, error)

	// CreateDomain stores a new domain with its records and its sealed DKIM
	// private key. It returns ErrDomainExists if the project has one of that name.
	CreateDomain(ctx context.Context, d *domain.Domain, sealedKey []byte) error
	// Domain returns the project's domain with the given id.
	Domain(ctx context.Context, projectID int64, id string) (*domain.Domain, error)
	// Domains lists the project's domains, oldest first, and the total count.
	Domains(ctx context.Context, projectID int64, p Page) ([]*domain.Domain, int, error)
	// DeleteDomain removes the project's domain, its records and its key.
	DeleteDomain(ctx context.Context, projectID int64, id string) error
	// SaveCheck stores the state a check gave the domain and its records.
	SaveCheck(ctx context.Context, d *domain.Domain) error
	// SealedDKIMKey returns the domain's sealed DKIM private key.
	SealedDKIMKey(ctx context.Context, id string) ([]byte, error)

	// Close releases the store's connections.
	Close() error
}
