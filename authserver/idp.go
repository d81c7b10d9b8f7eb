package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

// Enterprise-managed authorization (the MCP extension
// io.modelcontextprotocol/enterprise-managed-authorization): an employee
// signed in at the company's identity provider gets EpicMe access without
// a consent screen. The client exchanges the employee's ID token at the
// IdP for an Identity Assertion JWT Authorization Grant (ID-JAG, by RFC
// 8693 token exchange), and presents it here by the jwt-bearer grant (RFC
// 7523 §2.1). The IdP decides who may; the operator decides which IdPs,
// for which clients, with at most which scopes (epicme idp add).

// GrantJWTBearer is the grant type of a JWT authorization grant (RFC 7523
// §2.1).
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// IDJAGType is the typ header of an Identity Assertion JWT Authorization
// Grant (draft-ietf-oauth-identity-assertion-authz-grant §3.1).
const IDJAGType = "oauth-id-jag+jwt"

// jwtBearerGrant exchanges an ID-JAG for an access token (RFC 7523 §2.1,
// §3; draft-ietf-oauth-identity-assertion-authz-grant §4.3): no refresh
// token, so the IdP's decisions apply at the next exchange.
func (s *Server) jwtBearerGrant(r *http.Request, client *Client, jkt string) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	bad := func(desc string) (*tokenResponse, *oauthError) {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, desc)
	}
	if client.Public() {
		return nil, oerr(http.StatusBadRequest, errUnauthorizedClient, "the jwt-bearer grant needs a confidential client: one that authenticates")
	}
	assertion := r.PostForm.Get("assertion")
	if assertion == "" {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "assertion is required (RFC 7523 §2.1)")
	}
	iss := unverifiedIssuer(assertion)
	p, err := s.store.IdentityProvider(ctx, iss)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND || iss == "" {
		return bad("the assertion's issuer is not an identity provider this server trusts")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	if !slices.Contains(p.Clients, client.ID) {
		return bad("this identity provider may not vouch for this client (epicme idp add --client)")
	}
	v, err := s.jwtVerifier(jwtGrantKind{name: "ID-JAG", issuer: p.Issuer, jwksURI: p.JWKSURI, types: []string{IDJAGType}})
	if err != nil {
		return nil, internalErr(err)
	}
	// What the request itself gets wrong is refused before the assertion's
	// jti is spent, so the client can send it again, corrected.
	if e := s.checkResource(r, s.resource); e != nil {
		return nil, e
	}
	if e := s.unknownScope(r.PostForm.Get("scope")); e != nil {
		return nil, e
	}
	// draft-ietf-oauth-identity-assertion-authz-grant §4.3: the grant is
	// for this client, and for this resource (checked before its jti is
	// spent, so that another client cannot use up someone's grant); and
	// some scope is left.
	var scope string
	info, reason, e := s.checkJWTGrant(ctx, v, assertion, true, func(info *auth.TokenInfo) (e *oauthError) {
		if info.ClientID != client.ID {
			return oerr(http.StatusBadRequest, errInvalidGrant, "the assertion is not valid: it was issued for another client")
		}
		if res := info.StringClaim("resource"); res == "" || !auth.SameResource(res, s.resource) {
			return oerr(http.StatusBadRequest, errInvalidGrant, "the assertion is not valid: it is not for this resource ("+s.resource+")")
		}
		scope, e = s.idpScope(r, p, client, info.Scopes)
		return e
	})
	if e != nil {
		return nil, e
	}
	if reason != "" {
		return bad("the assertion is not valid: " + reason)
	}
	// The user is the IdP's (issuer, subject), never an account found by
	// email: an IdP vouches only for its own users. An email that breaks
	// our rules is dropped (epicme.EnsureUserInput).
	u, err := s.users.EnsureUser(ctx, p.Issuer, info.Subject, info.StringClaim("email"))
	if err != nil {
		return nil, internalErr(err)
	}
	if u.Disabled {
		return bad("the user's account is disabled here")
	}
	return s.issueWithoutRefresh(ctx, u, client, scope, jkt, func() (bool, error) {
		return found(s.store.IdentityProvider(ctx, p.Issuer))
	})
}

// idpScope is the scope an ID-JAG gets: what the assertion grants (all,
// if it names none), within the IdP's policy, the client's scopes, and
// the request's scope parameter (RFC 6749 §3.3: the response says which).
func (s *Server) idpScope(r *http.Request, p *IdentityProvider, client *Client, asserted []string) (string, *oauthError) {
	scopes := slices.Clone(s.scopes)
	narrow := func(by string) {
		if by != "" {
			scopes = slices.DeleteFunc(scopes, func(sc string) bool { return !slices.Contains(strings.Fields(by), sc) })
		}
	}
	narrow(p.Scope)
	narrow(client.Scope)
	if len(asserted) > 0 {
		narrow(strings.Join(asserted, " "))
	}
	if req := r.PostForm.Get("scope"); req != "" {
		narrow(req)
	}
	if len(scopes) == 0 {
		return "", oerr(http.StatusBadRequest, errInvalidScope, "no scope is left within what the assertion, the identity provider's policy and the client allow")
	}
	return strings.Join(scopes, " "), nil
}

// spendJTI records the jti of a JWT by iss as used until exp (and the
// allowed skew); false when it was used before, or is missing or too long.
func (s *Server) spendJTI(ctx context.Context, iss, jti string, exp time.Time) (bool, error) {
	if jti == "" || len(jti) > 256 {
		return false, nil
	}
	sum := sha256.Sum256([]byte(iss + "\x00" + jti))
	return s.store.UseOnce(ctx, hex.EncodeToString(sum[:]), exp.Add(assertionSkew))
}

// issueWithoutRefresh issues an access token for user to client with
// scope, recorded under a grant of its own so that revoking grants (the
// user's connected apps, idp remove, client remove) revokes it: the
// grants by which a client asks again rather than refreshes (RFC 6749
// §4.4.3; RFC 7523 §2.1). still says, once the grant is stored, whether
// what allowed it (the user's consent, the trusted IdP) still stands: a
// revocation that ran between the caller's check and the grant's commit
// did not see the grant, so the grant is revoked here instead.
func (s *Server) issueWithoutRefresh(ctx context.Context, user *epicme.User, client *Client, scope, jkt string, still func() (bool, error)) (*tokenResponse, *oauthError) {
	now := s.now()
	access, at, err := s.mintAccessToken(ctx, user, client.ID, scope, s.resource, jkt, now)
	if err != nil {
		return nil, internalErr(err)
	}
	g := &Grant{ID: randomToken(16), ClientID: client.ID, UserID: user.ID, Scope: scope, Resource: s.resource, CreatedAt: now, LastUsedAt: now}
	if err := s.store.CreateGrant(ctx, g, at); err != nil {
		return nil, internalErr(err)
	}
	if ok, err := still(); err != nil || !ok {
		// Fail closed: the token is not handed out; revoke what was stored.
		if rerr := s.revokeGrant(ctx, g.ID, now); err == nil {
			err = rerr
		}
		if err != nil {
			return nil, internalErr(err)
		}
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the access was withdrawn while the token was being issued")
	}
	return &tokenResponse{
		AccessToken: access,
		TokenType:   tokenType(jkt),
		ExpiresIn:   int64(s.cfg.AccessTokenTTL / time.Second),
		Scope:       scope,
	}, nil
}

// NewIdentityProvider is the input to [TrustIdentityProvider].
type NewIdentityProvider struct {
	Issuer  string
	JWKSURI string
	Clients []string
	Scope   string
}

// TrustIdentityProvider records an enterprise IdP the operator trusts (the
// operator's `epicme idp add`), or replaces its settings. Its issuer and
// key URL must be https (http only on loopback, for development), and the
// clients it may vouch for must exist and be confidential.
func TrustIdentityProvider(ctx context.Context, store Store, in NewIdentityProvider, now time.Time) (*IdentityProvider, error) {
	for name, u := range map[string]string{"issuer": in.Issuer, "jwks_uri": in.JWKSURI} {
		if u == "" && name == "jwks_uri" {
			continue
		}
		if err := checkKeyURL(u); err != nil {
			return nil, epicme.Invalid(name, "%s: %v", name, err)
		}
	}
	if len(in.Clients) == 0 {
		return nil, epicme.Invalid("client", "name at least one EpicMe client the identity provider may vouch for")
	}
	for _, id := range in.Clients {
		c, err := store.ClientByID(ctx, id)
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			return nil, epicme.Invalid("client", "client %q does not exist (see epicme client list)", id)
		}
		if err != nil {
			return nil, err
		}
		if c.Public() || c.Machine() || c.ResourceServer {
			return nil, epicme.Invalid("client", "client %q cannot use the jwt-bearer grant: it must be a confidential client of the code flow (epicme client add --confidential)", id)
		}
	}
	scope, unknown := normalizeScopes(epicme.AllScopes, in.Scope)
	if len(unknown) > 0 {
		return nil, epicme.Invalid("scope", "unknown scope %q (known: %s)", unknown[0], strings.Join(epicme.AllScopes, " "))
	}
	p := &IdentityProvider{Issuer: in.Issuer, JWKSURI: in.JWKSURI, Clients: in.Clients, Scope: scope, CreatedAt: now}
	if old, err := store.IdentityProvider(ctx, in.Issuer); err == nil {
		p.CreatedAt = old.CreatedAt
	}
	if err := store.SaveIdentityProvider(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkKeyURL checks a URL the server fetches keys or metadata from, as
// configured by the operator or a user: an absolute https URL without
// query, fragment or credentials; http only for a loopback host (and the
// guarded fetcher still refuses loopback outside development).
func checkKeyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
		return fmt.Errorf("%q must be https (http only on loopback)", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must have no credentials, query or fragment", s)
	}
	return nil
}
