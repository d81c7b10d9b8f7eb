package authserver

import (
	"context"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

// Callers maps the verified token on a request's context to its Caller when
// the token was issued by this authorization server (issuer): the subject of
// such a token is the id of a local user, so the user is read by id, never
// created. Tokens of any other issuer are refused.
//
// It serves both the all-in-one mode (with [Server.Verifier]) and a split
// deployment whose MCP process verifies this server's JWTs from its JWKS or
// by introspection against the same database.
func Callers(users epicme.UserService, issuer string) epicme.CallerResolver {
	return epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
		ti := auth.TokenInfoFromContext(ctx)
		if ti == nil || ti.Subject == "" {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the request carries no verified access token")
		}
		if ti.Issuer != issuer {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the access token is from another issuer")
		}
		u, err := users.UserByID(ctx, ti.Subject)
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "the token's account no longer exists")
		}
		if err != nil {
			return nil, err
		}
		if u.Disabled {
			return nil, epicme.Errorf(epicme.EFORBIDDEN, "this account is disabled")
		}
		return &epicme.Caller{User: u, Scopes: epicme.Scopes(ti.Scopes), ClientID: ti.ClientID, Expiry: ti.Expiry}, nil
	})
}
