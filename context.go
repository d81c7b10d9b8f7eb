package epicme

import (
	"context"
	"time"
)

// Caller is who makes a request: the local user it acts for, what the
// credential grants, and where the credential came from. Authentication
// builds it; the MCP adapter reads it; storage never sees it (storage methods
// take the user id explicitly).
type Caller struct {
	// User is the local user. Never nil in a Caller taken from a context.
	User *User
	// Scopes are the scopes granted to this request.
	Scopes Scopes
	// ClientID is the OAuth client that holds the token ("" on stdio and in
	// development mode).
	ClientID string
	// Expiry is when the credential stops being valid (zero: no expiry).
	Expiry time.Time
}

type callerKey struct{}

// NewContextWithCaller returns a context that carries c.
func NewContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFromContext returns the caller on ctx, or nil.
func CallerFromContext(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// CallerResolver turns a request context into its Caller. It is the seam
// between authentication and the MCP adapter: development mode resolves every
// request to one fixed user; OAuth mode reads the verified token that the auth
// middleware put on the context and maps (issuer, subject) to a local user.
// It returns an EFORBIDDEN error when the context carries no usable identity.
type CallerResolver interface {
	ResolveCaller(ctx context.Context) (*Caller, error)
}

// CallerResolverFunc adapts a function to CallerResolver.
type CallerResolverFunc func(ctx context.Context) (*Caller, error)

// ResolveCaller calls f.
func (f CallerResolverFunc) ResolveCaller(ctx context.Context) (*Caller, error) { return f(ctx) }
