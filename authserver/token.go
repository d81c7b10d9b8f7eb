package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/ratelimit"
)

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// parseForm reads a form-encoded POST body of at most 16 KiB and refuses
// parameters given twice (RFC 6749 §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) *oauthError {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return oerr(http.StatusBadRequest, errInvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return oerr(http.StatusBadRequest, errInvalidRequest, "the form could not be read")
	}
	if len(r.URL.RawQuery) > 0 {
		// Credentials and codes belong in the body, never in the URL.
		return oerr(http.StatusBadRequest, errInvalidRequest, "parameters must be in the request body, not the URL")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && k != "resource" {
			return oerr(http.StatusBadRequest, errInvalidRequest, k+" appears more than once")
		}
	}
	return nil
}

// serveToken is the token endpoint (RFC 6749 §3.2).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	if n := s.dpop.Nonce(); n != "" && r.Header.Get("DPoP") != "" {
		// RFC 9449 §8.2: a fresh nonce with each answer to a DPoP client.
		w.Header().Set("DPoP-Nonce", n)
	}
	// The proof first: a request refused for its proof (use_dpop_nonce,
	// say) must not spend the jti of a client assertion it also carries,
	// since the client sends the same request again with a new proof.
	jkt, e := s.dpopKey(r)
	if e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	client, e := s.authenticateClient(r)
	if e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	if l := s.cfg.TokenClientLimiter; l != nil {
		if _, _, limited := s.sourceKeys(r); limited {
			if ok, wait := l.Allow(client.ID); !ok {
				ratelimit.WriteOAuth(w, "this client", l.Limit(), wait)
				return
			}
		}
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, e = s.codeGrant(r, client, jkt)
	case "refresh_token":
		if !contains(client.GrantTypes, "refresh_token") {
			e = oerr(http.StatusBadRequest, errUnauthorizedClient, "this client may not use refresh tokens")
			break
		}
		resp, e = s.refreshGrant(r, client, jkt)
	case GrantClientCredentials:
		resp, e = s.clientCredentialsGrant(r, client, jkt)
	case GrantJWTBearer:
		resp, e = s.jwtBearerGrant(r, client, jkt)
	case "":
		e = oerr(http.StatusBadRequest, errInvalidRequest, "grant_type is required")
	default:
		e = oerr(http.StatusBadRequest, errUnsupportedGrantType, "grant_type must be authorization_code, refresh_token, client_credentials or "+GrantJWTBearer)
	}
	if e != nil {
		s.writeOAuthError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// dpopKey checks the DPoP proof of a token request, if any (RFC 9449 §4.3,
// §5: htm POST, htu the token endpoint, no access token yet), and returns
// the thumbprint of its key, which the tokens issued are bound to; "" for
// a request without a proof (a bearer token).
func (s *Server) dpopKey(r *http.Request) (string, *oauthError) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 {
		return "", nil
	}
	if len(proofs) > 1 {
		return "", oerr(http.StatusBadRequest, auth.ErrorInvalidDPoPProof, "send one DPoP header")
	}
	target, _ := url.Parse(s.issuer + TokenPath)
	jkt, err := s.dpop.Check(http.MethodPost, target, proofs[0], "", "")
	if err != nil {
		var de *auth.DPoPError
		if errors.As(err, &de) {
			return "", oerr(http.StatusBadRequest, de.Code, de.Reason)
		}
		return "", oerr(http.StatusBadRequest, auth.ErrorInvalidDPoPProof, "the DPoP proof is not valid")
	}
	return jkt, nil
}

// refreshKey is the key a new refresh token is bound to: the proof's, for
// a public client (RFC 9449 §5: a confidential client's refresh tokens are
// bound to its authentication instead).
func refreshKey(client *Client, jkt string) string {
	if client.AuthMethod == AuthNone {
		return jkt
	}
	return ""
}

// tokenType is the token_type of a token bound to jkt, or of a bearer
// token when jkt is "" (RFC 9449 §5).
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

func internalErr(err error) *oauthError {
	return oerr(http.StatusInternalServerError, errServerError, err.Error())
}

// checkResource applies RFC 8707 §2.2 to a token request: each resource
// given must be the one the grant is for (a narrower one does not exist
// here, so narrowing means naming it).
func (s *Server) checkResource(r *http.Request, granted string) *oauthError {
	for _, res := range r.PostForm["resource"] {
		if !sameResource(res, granted) {
			return oerr(http.StatusBadRequest, errInvalidTarget, "the resource is not one this grant is for")
		}
	}
	return nil
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (s *Server) codeGrant(r *http.Request, client *Client, jkt string) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	code := r.PostForm.Get("code")
	verifier := r.PostForm.Get("code_verifier")
	if code == "" {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "code is required")
	}
	if verifier == "" {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "code_verifier is required (PKCE)")
	}
	if !validVerifier(verifier) {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)")
	}
	now := s.now()
	hash := HashToken(code)
	c, err := s.store.CodeByHash(ctx, hash)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the code is unknown or expired")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	if !c.UsedAt.IsZero() {
		s.codeReplayed(ctx, c.GrantID, now)
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the code was already used")
	}
	if !now.Before(c.ExpiresAt) {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the code is unknown or expired")
	}
	if c.ClientID != client.ID {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the code was issued to another client")
	}
	// RFC 9449 §10.1: a code bound to a key by dpop_jkt is redeemed only
	// with a proof by that key.
	if c.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(c.DPoPJKT)) != 1 {
		return nil, oerr(http.StatusBadRequest, auth.ErrorInvalidDPoPProof, "the authorization request bound this code to a DPoP key (dpop_jkt): send a proof signed by that key")
	}
	ru := r.PostForm.Get("redirect_uri")
	if (c.RedirectGiven || ru != "") && ru != c.RedirectURI {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "redirect_uri differs from the authorization request")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.CodeChallenge)) != 1 {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "code_verifier does not match the code_challenge")
	}
	if e := s.checkResource(r, c.Resource); e != nil {
		return nil, e
	}
	scope := c.Scope
	if sc := r.PostForm.Get("scope"); sc != "" {
		narrowed, unknown := normalizeScopes(strings.Fields(c.Scope), sc)
		if len(unknown) > 0 || narrowed == "" {
			return nil, oerr(http.StatusBadRequest, errInvalidScope, "the scope exceeds what was authorized")
		}
		scope = narrowed
	}
	user, e := s.activeUser(ctx, c.UserID)
	if e != nil {
		return nil, e
	}
	g := &Grant{
		ID:         randomToken(16),
		ClientID:   client.ID,
		UserID:     c.UserID,
		Scope:      c.Scope,
		Resource:   c.Resource,
		CreatedAt:  now,
		LastUsedAt: now,
	}
	var refresh string
	var rt *RefreshToken
	if contains(client.GrantTypes, "refresh_token") {
		refresh = randomToken(32)
		rt = &RefreshToken{Hash: HashToken(refresh), CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenIdle), JKT: refreshKey(client, jkt)}
	}
	access, at, err := s.mintAccessToken(ctx, user, client.ID, scope, c.Resource, jkt, now)
	if err != nil {
		return nil, internalErr(err)
	}
	err = s.store.RedeemCode(ctx, hash, now, g, rt, at)
	var reused *CodeReusedError
	if errors.As(err, &reused) {
		// Lost a race with another redemption of the same code.
		s.codeReplayed(ctx, reused.GrantID, now)
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the code was already used")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	if client.Kind == ClientDynamic && client.UsedAt.IsZero() {
		if err := s.store.MarkClientUsed(ctx, client.ID, now); err != nil {
			s.log.ErrorContext(ctx, "marking client used", "err", err)
		}
		s.clients.forget(client.ID)
	}
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    tokenType(jkt),
		ExpiresIn:    int64(s.cfg.AccessTokenTTL / time.Second),
		RefreshToken: refresh,
		Scope:        scope,
	}, nil
}

// codeReplayed revokes what a code produced when the code comes back
// (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3): someone else may hold it.
func (s *Server) codeReplayed(ctx context.Context, grantID string, now time.Time) {
	if grantID == "" {
		return
	}
	s.log.WarnContext(ctx, "authorization code replayed; revoking its grant", "grant", grantID)
	if err := s.revokeGrant(ctx, grantID, now); err != nil {
		s.log.ErrorContext(ctx, "revoking grant after code replay", "err", err)
	}
}

// revokeGrant revokes a grant in the store and at once in this process's
// revocation list.
func (s *Server) revokeGrant(ctx context.Context, grantID string, now time.Time) error {
	if err := s.store.RevokeGrant(ctx, grantID, now); err != nil {
		return err
	}
	return s.revoked.sync(ctx)
}

func (s *Server) activeUser(ctx context.Context, id string) (*epicme.User, *oauthError) {
	user, err := s.users.UserByID(ctx, id)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND || (err == nil && user.Disabled) {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the user's account is gone or disabled")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	return user, nil
}

// refreshGrant exchanges a refresh token (RFC 6749 §6) and rotates it
// (OAuth 2.1 §4.3.1). A narrower scope applies to the new access token
// only: the refresh token keeps the scope of the grant (RFC 6749 §6).
func (s *Server) refreshGrant(r *http.Request, client *Client, jkt string) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	token := r.PostForm.Get("refresh_token")
	if token == "" {
		return nil, oerr(http.StatusBadRequest, errInvalidRequest, "refresh_token is required")
	}
	now := s.now()
	hash := HashToken(token)
	old, g, err := s.store.RefreshTokenByHash(ctx, hash)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the refresh token is unknown, expired or revoked")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	// RFC 9449 §5: a refresh token bound to a key is refreshed only with a
	// proof by that key, before anything rotates (a grace retry too).
	if old.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(old.JKT)) != 1 {
		return nil, oerr(http.StatusBadRequest, auth.ErrorInvalidDPoPProof, "this refresh token is bound to a DPoP key: send a proof signed by that key")
	}
	if g.ClientID != client.ID {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the refresh token was issued to another client")
	}
	if e := s.checkResource(r, g.Resource); e != nil {
		return nil, e
	}
	scope := g.Scope
	if sc := r.PostForm.Get("scope"); sc != "" {
		narrowed, unknown := normalizeScopes(strings.Fields(g.Scope), sc)
		if len(unknown) > 0 || narrowed == "" {
			return nil, oerr(http.StatusBadRequest, errInvalidScope, "a refresh cannot add scope: ask the user again")
		}
		scope = narrowed
	}
	user, e := s.activeUser(ctx, g.UserID)
	if e != nil {
		return nil, e
	}
	next := randomToken(32)
	access, at, err := s.mintAccessToken(ctx, user, client.ID, scope, g.Resource, jkt, now)
	if err != nil {
		return nil, internalErr(err)
	}
	_, err = s.store.RotateRefreshToken(ctx, &Rotation{
		OldHash:  hash,
		ClientID: client.ID,
		Now:      now,
		Grace:    s.cfg.RefreshReuseGrace,
		Next:     &RefreshToken{Hash: HashToken(next), CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenIdle), JKT: old.JKT},
		Access:   at,
	})
	switch {
	case errors.Is(err, ErrRefreshReused):
		s.log.WarnContext(ctx, "rotated refresh token reused; grant revoked", "grant", g.ID, "client_id", client.ID)
		if err := s.revoked.sync(ctx); err != nil {
			s.log.ErrorContext(ctx, "syncing revocations", "err", err)
		}
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the refresh token was already used")
	case errors.Is(err, ErrInvalidGrant):
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the refresh token is unknown, expired or revoked")
	case err != nil:
		return nil, internalErr(err)
	}
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    tokenType(jkt),
		ExpiresIn:    int64(s.cfg.AccessTokenTTL / time.Second),
		RefreshToken: next,
		Scope:        scope,
	}, nil
}

// mintAccessToken signs an RFC 9068 access token for resource.
func (s *Server) mintAccessToken(ctx context.Context, user *epicme.User, clientID, scope, resource, jkt string, now time.Time) (string, *AccessToken, error) {
	sk, err := s.keys.signer(ctx, now)
	if err != nil {
		return "", nil, err
	}
	exp := now.Add(s.cfg.AccessTokenTTL)
	claims := &AccessTokenClaims{
		Issuer:   s.issuer,
		Subject:  user.ID,
		Audience: resource,
		ClientID: clientID,
		Scope:    scope,
		Expiry:   exp.Unix(),
		IssuedAt: now.Unix(),
		JTI:      randomToken(16),
	}
	if jkt != "" {
		claims.Confirmation = &Confirmation{JKT: jkt}
	}
	tok, err := signJWT(sk, claims)
	if err != nil {
		return "", nil, err
	}
	return tok, &AccessToken{JTI: claims.JTI, ExpiresAt: exp}, nil
}

// validVerifier applies RFC 7636 §4.1: 43 to 128 characters of
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}
