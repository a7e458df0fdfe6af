package storetest

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/store"
)

// RunSessions is the conformance suite of store.Sessions.
func RunSessions(t *testing.T, open func(t *testing.T) store.Sessions, keys func(t *testing.T, s store.Sessions) (projectID, keyID int64, revoke func())) {
	s := open(t)
	ctx := t.Context()
	projectID, keyID, revoke := keys(t, s)
	h := sha256.Sum256([]byte("token"))
	sess := store.Session{Hash: h, APIKeyID: keyID, ProjectID: projectID, CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByHash(ctx, h, at(time.Minute))
	if err != nil || got.ProjectID != projectID || got.APIKeyID != keyID || got.ProjectName == "" || !got.ExpiresAt.Equal(msUTC(at(time.Hour))) {
		t.Fatalf("SessionByHash = %+v, %v", got, err)
	}
	if _, err := s.SessionByHash(ctx, h, at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session: %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByHash(ctx, sha256.Sum256([]byte("other")), at(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, h, at(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: %v, want ErrNotFound", err)
	}
	// A revoked key ends its sessions.
	h2 := sha256.Sum256([]byte("token2"))
	if err := s.CreateSession(ctx, store.Session{Hash: h2, APIKeyID: keyID, ProjectID: projectID, CreatedAt: at(0), ExpiresAt: at(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	revoke()
	if _, err := s.SessionByHash(ctx, h2, at(time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a revoked key: %v, want ErrNotFound", err)
	}
}

// StoreKeys is the keys of RunSessions for a Sessions that is a whole store.Store:
// a project "acme" with one API key, which revoke revokes.
func StoreKeys(t *testing.T, s store.Sessions) (projectID, keyID int64, revoke func()) {
	st, ok := s.(store.Store)
	if !ok {
		t.Fatalf("StoreKeys: %T is not a store.Store", s)
	}
	p, err := st.EnsureProject(t.Context(), "acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.CreateAPIKey(t.Context(), store.APIKey{ProjectID: p.ID, Prefix: "AS_sessions", Hash: [32]byte{9}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID, k.ID, func() {
		if _, err := st.RevokeAPIKey(t.Context(), "AS_sessions", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}
