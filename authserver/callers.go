package authserver

import (
	"context"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/lru"
)

// Callers maps the verified token on a request's context to its Caller when
// the token was issued by this authorization server (issuer): the subject of
// such a token is the id of a local user, so the user is read by id, never
// created. Tokens of any other issuer are refused.
//
// It serves both the all-in-one mode (with [Server.Verifier]) and a split
// deployment whose MCP process verifies this server's JWTs from its JWKS or
// by introspection against the same database.
//
// A user row read for one request serves the same user's requests for up to
// userCacheTTL: reading it on every call cost as much CPU as reading the
// journal entry the call was for. An account disabled by another process
// (epicme user disable) is therefore refused within that bound, the same one
// within which revocations made by another process reach this one.
func Callers(users epicme.UserService, issuer string) epicme.CallerResolver {
	cache := newUserCache(userCacheTTL)
	return epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
		ti := auth.TokenInfoFromContext(ctx)
		if ti == nil || ti.Subject == "" {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the request carries no verified access token")
		}
		if ti.Issuer != issuer {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the access token is from another issuer")
		}
		now := time.Now()
		u := cache.get(ti.Subject, now)
		if u == nil {
			var err error
			u, err = users.UserByID(ctx, ti.Subject)
			if epicme.ErrorCode(err) == epicme.ENOTFOUND {
				return nil, epicme.Errorf(epicme.EFORBIDDEN, "the token's account no longer exists")
			}
			if err != nil {
				return nil, err
			}
			cache.put(u.ID, u, now)
		}
		return callerOf(u, ti)
	})
}

// ExternalCallers maps the verified token on a request's context to its
// Caller when tokens come from an external authorization server: the local
// user of (issuer, subject), created on first use. A mapping is reused for
// externalUserTTL, so the hot path makes no query; a user disabled
// meanwhile is refused once it expires.
func ExternalCallers(users epicme.UserService) epicme.CallerResolver {
	cache := newUserCache(externalUserTTL)
	return epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
		ti := auth.TokenInfoFromContext(ctx)
		if ti == nil || ti.Issuer == "" || ti.Subject == "" {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the request carries no verified access token")
		}
		key := ti.Issuer + "\x00" + ti.Subject
		now := time.Now()
		u := cache.get(key, now)
		if u == nil {
			// The email is informational: one the domain would refuse is
			// dropped rather than failing the request.
			email := ti.StringClaim("email")
			if nu := (epicme.NewUser{Issuer: ti.Issuer, Subject: ti.Subject, Email: email}); nu.Validate() != nil {
				email = ""
			}
			var err error
			if u, err = users.EnsureUser(ctx, ti.Issuer, ti.Subject, email); err != nil {
				return nil, err
			}
			cache.put(key, u, now)
		}
		return callerOf(u, ti)
	})
}

func callerOf(u *epicme.User, ti *auth.TokenInfo) (*epicme.Caller, error) {
	if u.Disabled {
		return nil, epicme.Errorf(epicme.EFORBIDDEN, "this account is disabled")
	}
	return &epicme.Caller{User: u, Scopes: epicme.Scopes(ti.Scopes), ClientID: ti.ClientID, Expiry: ti.Expiry}, nil
}

// externalUserTTL is how long ExternalCallers reuses a user mapping:
// EnsureUser is a write when the user is new, and an external issuer's
// users are disabled here rarely.
const externalUserTTL = 5 * time.Minute

// userCacheTTL is how long Callers reuses a user row; see Callers.
const userCacheTTL = syncEvery

// userCacheMax bounds the cache; past it the least recently used user
// goes, since the cache only saves reads.
const userCacheMax = 100_000

// userCache holds user rows by key for ttl. The users it returns are
// shared between requests and must not be modified.
type userCache struct {
	c   *lru.Cache[string, *epicme.User]
	ttl time.Duration
}

func newUserCache(ttl time.Duration) *userCache {
	return &userCache{c: lru.New[string, *epicme.User](userCacheMax), ttl: ttl}
}

func (c *userCache) get(id string, now time.Time) *epicme.User {
	u, _ := c.c.Get(id, now)
	return u
}

func (c *userCache) put(key string, u *epicme.User, now time.Time) {
	c.c.Put(key, u, now.Add(c.ttl))
}
