package authserver

import (
	"context"
	"slices"
	"strings"

	"github.com/epicme/epicme"
)

// IssueAccessToken signs an access token (RFC 9068) for a local user and
// this server's resource, exactly as the token endpoint does after a code
// exchange, but with no grant behind it: there is no refresh token, and it is
// revoked only by its jti or by waiting out its lifetime. scopes are checked
// against the scopes the server supports.
//
// It is for tools that act for accounts the operator already holds, such as
// "epicme-bench peers", which needs a real token per fixture user without a
// browser sign-in for each. It is not reachable over HTTP.
func (s *Server) IssueAccessToken(ctx context.Context, user *epicme.User, clientID string, scopes []string) (string, error) {
	return s.IssueBoundAccessToken(ctx, user, clientID, scopes, "")
}

// IssueBoundAccessToken is IssueAccessToken for a token bound to the DPoP
// key whose thumbprint is jkt (cnf.jkt, RFC 9449 §6), or a bearer token
// when jkt is "": the benchmark's DPoP clients use it.
func (s *Server) IssueBoundAccessToken(ctx context.Context, user *epicme.User, clientID string, scopes []string, jkt string) (string, error) {
	for _, sc := range scopes {
		if !slices.Contains(s.scopes, sc) {
			return "", epicme.Errorf(epicme.EINVALID, "scope %q is not one this server issues", sc)
		}
	}
	if user == nil || user.Issuer != epicme.LocalIssuer || user.Disabled {
		return "", epicme.Errorf(epicme.EINVALID, "tokens are issued only for enabled local accounts")
	}
	tok, _, err := s.mintAccessToken(ctx, user, clientID, strings.Join(scopes, " "), s.resource, jkt, s.now())
	return tok, err
}
