package authserver

import (
	"errors"
	"net/http"
	"strings"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

// introspection is the RFC 7662 §2.2 response for an active token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope"`
	ClientID  string `json:"client_id"`
	TokenType string `json:"token_type"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	Sub       string `json:"sub"`
	Aud       string `json:"aud"`
	Iss       string `json:"iss"`
	JTI       string `json:"jti"`
	// Cnf carries the key a DPoP-bound token is bound to (RFC 9449 §6.2).
	Cnf *Confirmation `json:"cnf,omitempty"`
}

var inactive = map[string]bool{"active": false}

// serveIntrospect is the introspection endpoint (RFC 7662 §2). Only
// clients registered as resource servers may call it, and only about
// access tokens issued for their resource; everything else is
// {"active": false} with nothing more, so the endpoint cannot be used to
// probe tokens (§4).
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	// Resource servers authenticate with their secret: an assertion, whose
	// issuer could name any client, is refused before anything is looked up.
	if r.PostForm.Has("client_assertion") || r.PostForm.Has("client_assertion_type") {
		s.writeOAuthError(w, r, &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: "introspection clients authenticate with their secret (client_secret_basic or client_secret_post)"})
		return
	}
	// A metadata-document client is public (it has no secret), and public
	// clients may not introspect: refuse it before its document is fetched.
	if id, _, ok := r.BasicAuth(); strings.HasPrefix(id, "https://") || (!ok && strings.HasPrefix(r.PostForm.Get("client_id"), "https://")) {
		s.writeOAuthError(w, r, &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: "introspection requires client authentication; a client metadata document client has no secret", basic: ok})
		return
	}
	client, e := s.authenticateClient(r)
	if e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	if client.Public() {
		s.writeOAuthError(w, r, &oauthError{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: "introspection requires client authentication"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errInvalidRequest, "token is required"))
		return
	}
	if !client.ResourceServer {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	c, err := s.VerifyAccessToken(r.Context(), token)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		s.internal(w, r, err)
		return
	}
	// The client's resource must be the token's audience.
	if !sameResource(c.Audience, client.Resource) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: c.tokenType(),
		Exp: c.Expiry, Iat: c.IssuedAt, Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer, JTI: c.JTI, Cnf: c.Confirmation,
	})
}

// serveRevoke is the revocation endpoint (RFC 7009 §2). Revoking a refresh
// token revokes its whole grant, access tokens included (§2.1 allows it,
// and it is what a user who signs a client out expects); revoking an access
// token puts it on the revocation list. Tokens of other clients and unknown
// tokens are answered 200 and left alone.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	client, e := s.authenticateClient(r)
	if e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errInvalidRequest, "token is required"))
		return
	}
	hint := r.PostForm.Get("token_type_hint")
	if hint != "" && hint != "access_token" && hint != "refresh_token" {
		s.writeOAuthError(w, r, oerr(http.StatusBadRequest, errUnsupportedTokenType, "token_type_hint must be access_token or refresh_token"))
		return
	}
	ctx := r.Context()
	now := s.now()
	_, g, err := s.store.RefreshTokenByHash(ctx, HashToken(token))
	switch {
	case err == nil:
		if g.ClientID == client.ID {
			if err := s.revokeGrant(ctx, g.ID, now); err != nil {
				s.internal(w, r, err)
				return
			}
			s.log.InfoContext(ctx, "grant revoked by its client", "grant", g.ID, "client_id", client.ID)
		}
	case epicme.ErrorCode(err) != epicme.ENOTFOUND:
		s.internal(w, r, err)
		return
	default:
		if c, err := s.keys.parseJWT(token); err == nil && c.ClientID == client.ID && c.Issuer == s.issuer {
			exp := unixTime(c.Expiry)
			if err := s.store.RevokeAccessToken(ctx, c.JTI, exp, now); err != nil {
				s.internal(w, r, err)
				return
			}
			s.revoked.add(c.JTI, exp)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
