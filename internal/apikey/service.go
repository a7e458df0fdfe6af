package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/domaind/domaind/internal/fault"
	"github.com/domaind/domaind/internal/store"
)

// Key is a stored API key and Session a dashboard sign-in (see store.APIKey and
// store.Session), named here so that front ends need not import the store.
type (
	Key     = store.APIKey
	Session = store.Session
)

// Service tells who an API key, or a dashboard session signed in with one, is.
// The API and the dashboard both authenticate through it, so a key is judged by
// one rule however it is used.
//
// A valid key's lookup is cached for less than MaxStale (see cache.go), so that
// requests do not ask the store every time, while a revocation is honoured at
// once by the Service that made it and within MaxStale by every other.
type Service struct {
	Store store.Store
	// Now is the clock of the key cache; nil means time.Now.
	Now func() time.Time

	cache keyCache
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// errInvalid is the answer for a key that is malformed, unknown or revoked.
var errInvalid = &fault.Error{Code: fault.Unauthorized, Message: "The API key is not valid or has been revoked."}

// Authenticate returns the valid, unrevoked key key is, or fault.Unauthorized.
func (s *Service) Authenticate(ctx context.Context, key string) (Key, error) {
	if !Valid(key) {
		return Key{}, errInvalid
	}
	hash := Hash(key)
	if k, ok := s.cache.get(hash, s.now()); ok {
		return k, nil
	}
	res, err := s.cache.lookup(ctx, hash, s.now, func(ctx context.Context) (Key, error) {
		return s.Store.APIKeyByHash(ctx, hash)
	})
	if err == nil && s.now().Sub(res.checked) >= MaxStale {
		// The shared lookup began too long ago (a stalled database) to tell
		// of a revocation since: this request asks again, on its own, and
		// does not cache the answer.
		k, err := s.Store.APIKeyByHash(ctx, hash)
		return found(k, err, hash)
	}
	k, err := found(res.key, err, hash)
	if err != nil {
		return Key{}, err
	}
	s.cache.put(k, res.checked, res.gen)
	return k, nil
}

// found is what a lookup of hash that gave k and err means: the key, or
// errInvalid for one that is unknown or revoked.
func found(k Key, err error, hash [32]byte) (Key, error) {
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, errInvalid
	}
	if err != nil {
		return Key{}, err
	}
	// The lookup is by hash, so it leaks nothing useful; the comparison is
	// constant-time all the same, so that no store can make it otherwise.
	if subtle.ConstantTimeCompare(k.Hash[:], hash[:]) != 1 || !k.RevokedAt.IsZero() {
		return Key{}, errInvalid
	}
	return k, nil
}

// MinRevokePrefix is how many characters of a key Revoke needs at the least:
// the scheme and four more, so that a slip of the keyboard cannot name every
// key of an installation.
const MinRevokePrefix = len(Scheme) + 4

// Revoke revokes the one key whose prefix starts with prefix (see
// store.Store.RevokeAPIKey), and this Service refuses it from then on. It
// answers fault.NotFound when no key starts so, and fault.Invalid when prefix
// is too short or more than one key starts so.
func (s *Service) Revoke(ctx context.Context, prefix string, now time.Time) (Key, error) {
	if err := CheckRevokePrefix(prefix); err != nil {
		return Key{}, err
	}
	k, err := s.Store.RevokeAPIKey(ctx, prefix, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Key{}, fault.NotFoundf("api key", fmt.Sprintf("No API key starts with %q.", prefix), err)
	case errors.Is(err, store.ErrAmbiguous):
		f := fault.Invalidf("prefix", fmt.Sprintf("More than one API key starts with %q; give more characters.", prefix))
		f.Err = err
		return Key{}, f
	case err != nil:
		return Key{}, err
	}
	s.cache.drop(k.Hash)
	return k, nil
}

// CheckRevokePrefix says whether prefix is long enough for Revoke
// (MinRevokePrefix), answering fault.Invalid about the field "prefix".
func CheckRevokePrefix(prefix string) error {
	if len(prefix) < MinRevokePrefix {
		return fault.Invalidf("prefix", fmt.Sprintf("Give at least the first %d characters of the key, such as %sabcd.", MinRevokePrefix, Scheme))
	}
	return nil
}

// List returns every API key, revoked ones too, with its project, for the
// operator (domaind apikey list); no key is ever seen whole again.
func (s *Service) List(ctx context.Context) ([]Key, error) { return s.Store.APIKeys(ctx) }

// Ready reports whether the store answers, for health checks.
func (s *Service) Ready(ctx context.Context) error {
	if _, err := s.Store.APIKeyByHash(ctx, [32]byte{}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// MaxProjectName is the longest project name, in bytes.
const MaxProjectName = 100

// CheckProjectName says whether name, without the spaces around it, may name
// a project: 1 to MaxProjectName bytes with no control character. It answers
// fault.Invalid about the field "project"; Create asks it, and a command can
// ask it before opening a database.
func CheckProjectName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxProjectName || strings.ContainsFunc(name, unicode.IsControl) {
		return fault.Invalidf("project", fmt.Sprintf("The project must be a name of 1 to %d printable characters.", MaxProjectName))
	}
	return nil
}

// Create makes the project named project (see CheckProjectName) if it is new
// and returns a new key of it, the only time the key is seen whole.
func (s *Service) Create(ctx context.Context, project string, now time.Time) (string, Key, error) {
	if err := CheckProjectName(project); err != nil {
		return "", Key{}, err
	}
	project = strings.TrimSpace(project)
	p, err := s.Store.EnsureProject(ctx, project, now)
	if err != nil {
		return "", Key{}, err
	}
	key, err := New()
	if err != nil {
		return "", Key{}, err
	}
	k, err := s.Store.CreateAPIKey(ctx, store.APIKey{
		ProjectID: p.ID, Prefix: Prefix(key), Hash: Hash(key), CreatedAt: now,
	})
	if err != nil {
		return "", Key{}, err
	}
	k.ProjectName = p.Name
	return key, k, nil
}

// tokenBytes is how many random bytes a session token is the base64url of.
const tokenBytes = 32

// ValidToken reports whether token has the form of a session token SignIn
// makes, so that a front end sends no junk to the store and can tell a
// malformed cookie from a session that ended.
func ValidToken(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}

// TokenHash is the stored form of a session token.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// SignIn exchanges a valid key for a new session lasting ttl, ending the
// session of replace (the token the client held before, "" for none): a sign-in
// always starts a new session, so a token planted before it is worth nothing
// after it. It returns the new session's token, whose hash alone is stored, or
// fault.Unauthorized for a key that is not valid, which ends nothing.
func (s *Service) SignIn(ctx context.Context, key, replace string, now time.Time, ttl time.Duration) (string, Session, error) {
	k, err := s.Authenticate(ctx, key)
	if err != nil {
		return "", Session{}, err
	}
	if replace != "" {
		if err := s.SignOut(ctx, replace); err != nil {
			return "", Session{}, err
		}
	}
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Session{}, fmt.Errorf("apikey: session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sess := Session{
		Hash: TokenHash(token), APIKeyID: k.ID, ProjectID: k.ProjectID, ProjectName: k.ProjectName,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return "", Session{}, fmt.Errorf("apikey: create session: %w", err)
	}
	return token, sess, nil
}

// Session returns the live session of token at now, or fault.Unauthorized when
// there is none, it has expired or its key has been revoked.
func (s *Service) Session(ctx context.Context, token string, now time.Time) (Session, error) {
	if !ValidToken(token) {
		return Session{}, &fault.Error{Code: fault.Unauthorized, Message: "The session has ended."}
	}
	sess, err := s.Store.SessionByHash(ctx, TokenHash(token), now)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, &fault.Error{Code: fault.Unauthorized, Message: "The session has ended.", Err: err}
	}
	if err != nil {
		return Session{}, fmt.Errorf("apikey: session: %w", err)
	}
	return sess, nil
}

// SignOut ends the session of token; ending one that does not exist is no error.
func (s *Service) SignOut(ctx context.Context, token string) error {
	if err := s.Store.DeleteSession(ctx, TokenHash(token)); err != nil {
		return fmt.Errorf("apikey: delete session: %w", err)
	}
	return nil
}
