package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// TokenInfo is what a verified access token says: who it was issued to, by
// whom, for what, and until when. Verifiers build it; the middleware puts it on
// the request context, where MCP handlers read it with [TokenInfoFromContext].
// Verifiers cache and share it between requests of the same token: treat it
// as read-only.
type TokenInfo struct {
	// Issuer is the authorization server that issued the token (the JWT "iss"
	// claim, or the introspection response's "iss", or the configured issuer
	// when the response has none).
	Issuer string
	// Subject identifies the resource owner at Issuer ("sub").
	Subject string
	// ClientID is the OAuth client the token was issued to ("client_id",
	// else "azp").
	ClientID string
	// Scopes are the granted scopes ("scope" string or "scp" array).
	Scopes []string
	// Audience lists the resources the token was issued for ("aud").
	Audience []string
	// Expiry is when the token stops being valid ("exp").
	Expiry time.Time
	// IssuedAt is "iat", when present.
	IssuedAt time.Time
	// Extra holds every other claim or introspection member (for example
	// "email"), as decoded from JSON.
	Extra map[string]any
}

// ConfirmationJKT returns the token's cnf.jkt, the SHA-256 thumbprint of the
// key it is bound to (RFC 9449 §6.1 in a JWT, §6.2 in introspection), or ""
// when the token is not DPoP-bound.
func (t *TokenInfo) ConfirmationJKT() string {
	cnf, _ := t.Extra["cnf"].(map[string]any)
	jkt, _ := cnf["jkt"].(string)
	return jkt
}

// HasScopes reports whether every one of want is granted.
func (t *TokenInfo) HasScopes(want ...string) bool {
	for _, w := range want {
		if !slices.Contains(t.Scopes, w) {
			return false
		}
	}
	return true
}

// StringClaim returns Extra[name] when it is a string, else "".
func (t *TokenInfo) StringClaim(name string) string {
	s, _ := t.Extra[name].(string)
	return s
}

// Verifier checks an access token and says what it grants. Implementations
// must enforce the audience (RFC 8707): a token issued for another resource is
// an [ErrInvalidToken].
//
// Errors must wrap [ErrInvalidToken] when the token itself is at fault (the
// middleware answers 401) or [ErrUnavailable] when the verifier could not reach
// what it needs (the middleware answers 503 with Retry-After, never 401, so
// clients are not sent into re-authorization loops). Any other error is
// treated as unavailable.
type Verifier interface {
	Verify(ctx context.Context, token string) (*TokenInfo, error)
}

// VerifierFunc adapts a function to [Verifier].
type VerifierFunc func(ctx context.Context, token string) (*TokenInfo, error)

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, token string) (*TokenInfo, error) {
	return f(ctx, token)
}

// Sentinel errors that verifiers wrap and the middleware maps to HTTP
// statuses.
var (
	// ErrInvalidToken: the token is unknown, expired, revoked, not yet valid,
	// issued for another audience or badly signed (RFC 6750 §3.1
	// invalid_token, HTTP 401).
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnavailable: the authorization server, its introspection endpoint
	// or its JWKS could not be reached or answered nonsense (HTTP 503).
	ErrUnavailable = errors.New("token verification unavailable")
)

// TokenError is an [ErrInvalidToken] with a short reason that is safe to show
// the client in error_description. Reasons never contain the token.
type TokenError struct {
	Reason string
}

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Is makes errors.Is(err, ErrInvalidToken) true.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

func invalidToken(format string, args ...any) error {
	return &TokenError{Reason: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

type tokenInfoKey struct{}

// ContextWithTokenInfo returns a context carrying ti. The middleware calls it;
// tests and non-HTTP transports may too.
func ContextWithTokenInfo(ctx context.Context, ti *TokenInfo) context.Context {
	return context.WithValue(ctx, tokenInfoKey{}, ti)
}

// TokenInfoFromContext returns the verified token of the current request, or
// nil when the request did not pass through [ResourceServer.Protect].
func TokenInfoFromContext(ctx context.Context) *TokenInfo {
	ti, _ := ctx.Value(tokenInfoKey{}).(*TokenInfo)
	return ti
}
