package authserver

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/lru"
)

// revocationList is the in-memory set of revoked, unexpired access tokens.
// This process adds to it the moment it revokes something; revocations made
// by other processes sharing the database (the `epicme client remove`
// command, a second server) arrive by syncing with the store at most
// syncEvery apart.
type revocationList struct {
	store Store
	now   func() time.Time

	mu       sync.RWMutex
	jtis     map[string]time.Time // jti → expiry
	since    time.Time            // revocations before this are loaded
	nextSync atomic.Int64         // unix nanos
	syncing  atomic.Bool
	// stale: revocations may have been missed (see RevocationFeed).
	stale atomic.Bool
}

const syncEvery = time.Second

// syncOverlap is how far before the watermark each sync reads again: longer
// than any revocation takes from taking its timestamp to committing.
const syncOverlap = time.Minute

func newRevocationList(store Store, now func() time.Time) *revocationList {
	return &revocationList{store: store, now: now, jtis: map[string]time.Time{}}
}

// sync loads the revocations made since the last sync and forgets expired
// ones.
func (l *revocationList) sync(ctx context.Context) error {
	now := l.now()
	l.mu.RLock()
	since := l.since
	l.mu.RUnlock()
	// Revocations are stamped with the time their request began, not the
	// time they committed, so one stamped before the watermark can commit
	// after a sync moved it: each sync looks back syncOverlap further.
	// Loading a revocation twice is harmless.
	rows, err := l.store.RevokedAccessTokens(ctx, since.Add(-syncOverlap), now)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rows {
		l.jtis[r.JTI] = r.ExpiresAt
		if r.RevokedAt.After(l.since) {
			l.since = r.RevokedAt
		}
	}
	for j, exp := range l.jtis {
		if exp.Before(now) {
			delete(l.jtis, j)
		}
	}
	l.nextSync.Store(now.Add(syncEvery).UnixNano())
	return nil
}

func (l *revocationList) add(jti string, exp time.Time) {
	l.mu.Lock()
	l.jtis[jti] = exp
	l.mu.Unlock()
}

// revoked reports whether jti is revoked. When the list is due for a sync,
// one caller syncs while the others use what is loaded.
func (l *revocationList) revoked(ctx context.Context, jti string) (bool, error) {
	if l.stale.Load() {
		return l.checkStale(ctx, jti)
	}
	if l.now().UnixNano() >= l.nextSync.Load() && l.syncing.CompareAndSwap(false, true) {
		err := l.sync(ctx)
		l.syncing.Store(false)
		if err != nil {
			// Fail closed only for the token at hand: ask the store.
			return l.store.IsAccessTokenRevoked(ctx, jti)
		}
	}
	l.mu.RLock()
	_, ok := l.jtis[jti]
	l.mu.RUnlock()
	return ok, nil
}

// clockSkew tolerates small clock differences when this server's tokens are
// checked by another process.
const clockSkew = 30 * time.Second

// VerifyAccessToken checks an access token issued by this server for its
// resource: signature, type, issuer, audience (RFC 8707), lifetime and the
// revocation list. Errors wrap auth.ErrInvalidToken (the token is at fault)
// or auth.ErrUnavailable (the store could not be read).
func (s *Server) VerifyAccessToken(ctx context.Context, token string) (*AccessTokenClaims, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	c := s.verified.get(key, now)
	if c == nil {
		var err error
		if c, err = s.keys.parseJWT(token); err != nil {
			return nil, &auth.TokenError{Reason: "the access token is malformed or badly signed"}
		}
	}
	switch {
	case c.Issuer != s.issuer:
		return nil, &auth.TokenError{Reason: "the access token is from another issuer"}
	case !sameResource(c.Audience, s.resource):
		return nil, &auth.TokenError{Reason: "the access token is for another resource"}
	case now.Unix() >= c.Expiry:
		return nil, &auth.TokenError{Reason: "the access token has expired"}
	case c.IssuedAt > now.Add(clockSkew).Unix():
		return nil, &auth.TokenError{Reason: "the access token is not yet valid"}
	case c.JTI == "" || c.Subject == "":
		return nil, &auth.TokenError{Reason: "the access token is malformed"}
	}
	// The revocation list is checked on every use, cached or not.
	rev, err := s.revoked.revoked(ctx, c.JTI)
	if err != nil {
		s.log.ErrorContext(ctx, "checking the revocation list", "err", err)
		return nil, auth.ErrUnavailable
	}
	if rev {
		return nil, &auth.TokenError{Reason: "the access token has been revoked"}
	}
	s.verified.put(key, c)
	s.usage.use(c.JTI, now)
	return c, nil
}

// verifiedCache remembers the claims of tokens whose signature was checked,
// keyed by the SHA-256 of the whole token (so a token changed in any byte
// misses), until they expire: the signature check is most of the cost of a
// verification, and a client sends one token many times.
type verifiedCache struct {
	c *lru.Cache[[32]byte, *AccessTokenClaims]
	// hits and misses count lookups, for metrics.
	hits, misses atomic.Uint64
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{c: lru.New[[32]byte, *AccessTokenClaims](max)}
}

func (v *verifiedCache) get(k [32]byte, now time.Time) *AccessTokenClaims {
	c, ok := v.c.Get(k, now)
	if ok {
		v.hits.Add(1)
	} else {
		v.misses.Add(1)
	}
	return c
}

func (v *verifiedCache) put(k [32]byte, c *AccessTokenClaims) {
	v.c.Put(k, c, time.Unix(c.Expiry, 0))
}

func (v *verifiedCache) clear() { v.c.Clear() }

// Verifier returns the in-process verifier of the resource server in
// all-in-one mode: the same checks as a JWT verifier or introspection, with
// no HTTP hop and with revocation taking effect at once.
//
// TokenInfo.Issuer is this server's issuer URL and Subject the local user's
// id (for local accounts, their epicme.User.Subject too).
func (s *Server) Verifier() auth.Verifier {
	return auth.VerifierFunc(func(ctx context.Context, token string) (*auth.TokenInfo, error) {
		c, err := s.VerifyAccessToken(ctx, token)
		if err != nil {
			return nil, err
		}
		return c.TokenInfo(), nil
	})
}

// TokenInfo converts the claims to the resource server's form.
func (c *AccessTokenClaims) TokenInfo() *auth.TokenInfo {
	return &auth.TokenInfo{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Scopes:   splitScope(c.Scope),
		Audience: []string{c.Audience},
		Expiry:   time.Unix(c.Expiry, 0),
		IssuedAt: time.Unix(c.IssuedAt, 0),
		Extra:    c.extra(),
	}
}

// extra is the claims of TokenInfo.Extra: the jti, and cnf of a DPoP-bound
// token, as a resource server reads them (auth.TokenInfo.ConfirmationJKT).
func (c *AccessTokenClaims) extra() map[string]any {
	m := map[string]any{"jti": c.JTI}
	if c.Confirmation != nil {
		m["cnf"] = map[string]any{"jkt": c.Confirmation.JKT}
	}
	return m
}

// tokenType is the token_type of the token (RFC 9449 §5, §6.2).
func (c *AccessTokenClaims) tokenType() string {
	if c.Confirmation != nil {
		return tokenType(c.Confirmation.JKT)
	}
	return tokenType("")
}

func splitScope(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}
