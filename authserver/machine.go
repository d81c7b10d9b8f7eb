package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

// Machine clients: a user's automation (a nightly backup, a summarising
// agent) reaching their own journal without a browser. The client is
// confidential, acts for one user (Client.ActsAs) with at most the scopes
// it was created with, and gets its tokens by the client credentials grant
// (RFC 6749 §4.4), authenticated with a secret (client_secret_basic) or an
// assertion signed by a key it registered (private_key_jwt, RFC 7523 §2.2).

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlgorithms are the algorithms a client may sign its assertion
// with (token_endpoint_auth_signing_alg_values_supported, RFC 8414 §2):
// asymmetric ones only, so that the registered keys are public.
var AssertionAlgorithms = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

// Bounds of a client assertion: the clock skew allowed on its times, and
// the longest it may live (RFC 7523 §3 item 4 lets the server refuse an
// exp too far ahead; it also bounds how long its jti is remembered).
const (
	assertionSkew        = 30 * time.Second
	assertionMaxLifetime = 10 * time.Minute
)

// clientCredentialsGrant issues a token to a machine client for the user
// it acts for (RFC 6749 §4.4): no refresh token (§4.4.3), at most the
// client's scopes, for this server's resource.
func (s *Server) clientCredentialsGrant(r *http.Request, client *Client, jkt string) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	if !client.Machine() || client.Public() || !contains(client.GrantTypes, GrantClientCredentials) {
		return nil, oerr(http.StatusBadRequest, errUnauthorizedClient, "this client may not use the client credentials grant: create a machine client (account page, or epicme client add --acts-as)")
	}
	if e := s.checkResource(r, s.resource); e != nil {
		return nil, e
	}
	// RFC 6749 §3.3: the server may issue less than asked, and says what
	// in the response's scope. A client asking for the scopes a 401
	// challenge listed gets those of them it may have; asking for none of
	// them, or for scopes that do not exist, is an error.
	scope := client.Scope
	if sc := r.PostForm.Get("scope"); sc != "" {
		if _, unknown := normalizeScopes(s.scopes, sc); len(unknown) > 0 {
			return nil, oerr(http.StatusBadRequest, errInvalidScope, "unknown scope "+unknown[0])
		}
		scope, _ = normalizeScopes(strings.Fields(client.Scope), sc)
		if scope == "" {
			return nil, oerr(http.StatusBadRequest, errInvalidScope, "none of the scopes asked for is one this machine client may have ("+client.Scope+")")
		}
	}
	// The user's consent is what the connected-apps page withdraws: check
	// it in the store on every request, so that withdrawing it on one
	// instance stops every instance at once.
	if _, err := s.store.Consent(ctx, client.ActsAs, client.ID); epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the user withdrew this machine client's access")
	} else if err != nil {
		return nil, internalErr(err)
	}
	user, e := s.activeUser(ctx, client.ActsAs)
	if e != nil {
		return nil, e
	}
	return s.issueWithoutRefresh(ctx, user, client, scope, jkt)
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp json.Number     `json:"exp"`
	Nbf json.Number     `json:"nbf"`
	Iat json.Number     `json:"iat"`
	JTI string          `json:"jti"`
}

// assertionClient authenticates a client by a JWT assertion (RFC 7523
// §2.2, §3) and returns it. formID is the client_id parameter, if any.
func (s *Server) assertionClient(r *http.Request, formID string) (*Client, *oauthError) {
	fail := func(desc string) *oauthError {
		return oerr(http.StatusUnauthorized, errInvalidClient, desc)
	}
	if r.PostForm.Get("client_assertion_type") != ClientAssertionType {
		return nil, fail("client_assertion_type must be " + ClientAssertionType)
	}
	assertion := r.PostForm.Get("client_assertion")
	// The client is named by the unverified iss; nothing else is believed
	// before the signature verifies with that client's keys.
	id := unverifiedClaims(assertion).Iss
	if id == "" {
		return nil, fail("the client assertion is not a JWT naming its client in iss")
	}
	if formID != "" && formID != id {
		return nil, fail("client_id differs from the client assertion's iss")
	}
	c, err := s.lookupClient(s.withSource(r), id)
	if errors.Is(err, errUnknownClient) || errors.Is(err, errMetadataDocument) {
		return nil, fail("client authentication failed")
	}
	if err != nil {
		return nil, internalErr(err)
	}
	if c.AuthMethod != AuthPrivateKeyJWT || c.JWKS == "" {
		return nil, fail("this client does not authenticate with private_key_jwt")
	}
	keys, err := auth.ParseKeySet([]byte(c.JWKS))
	if err != nil {
		return nil, internalErr(err)
	}
	typ, payload, err := keys.VerifyJWS(assertion, AssertionAlgorithms)
	if err != nil {
		var te *auth.TokenError
		if errors.As(err, &te) {
			return nil, fail("the client assertion is not valid: " + te.Reason)
		}
		return nil, fail("the client assertion is not valid")
	}
	// An access token, a DPoP proof or an ID token is not a client
	// assertion, whoever signed it (RFC 8725 §3.11).
	if t := strings.ToLower(typ); t != "" && t != "jwt" && t != "client-authentication+jwt" {
		return nil, fail("the client assertion's typ is " + typ + ", not JWT")
	}
	var cl assertionClaims
	if json.Unmarshal(payload, &cl) != nil {
		return nil, fail("the client assertion's claims are not a JSON object")
	}
	if e := s.checkAssertion(r.Context(), c.ID, &cl); e != nil {
		return nil, e
	}
	return c, nil
}

// checkAssertion applies RFC 7523 §3 to the verified claims of client
// id's assertion, and spends its jti.
func (s *Server) checkAssertion(ctx context.Context, id string, cl *assertionClaims) *oauthError {
	fail := func(desc string) *oauthError {
		return oerr(http.StatusUnauthorized, errInvalidClient, desc)
	}
	// §3 items 1-2: iss and sub are the client_id (§2.2).
	if cl.Iss != id || cl.Sub != id {
		return fail("the client assertion's iss and sub must both be the client_id")
	}
	// §3 item 3: the audience is this server. Only the issuer identifier,
	// as one value: an assertion made for another endpoint or shared with
	// other audiences cannot be replayed here.
	if !audienceIsOnly(cl.Aud, s.issuer) {
		return fail("the client assertion's aud must be exactly the issuer, " + s.issuer)
	}
	now := s.now()
	// §3 item 4: exp, not passed, and not too far ahead.
	exp, ok := auth.NumericDate(cl.Exp)
	if !ok {
		return fail("the client assertion has no exp")
	}
	if !now.Before(exp.Add(assertionSkew)) {
		return fail("the client assertion has expired")
	}
	if exp.Sub(now) > assertionMaxLifetime {
		return fail("the client assertion lives too long: its exp must be within 10 minutes")
	}
	// §3 items 5-6: nbf and iat not in the future.
	if nbf, ok := auth.NumericDate(cl.Nbf); ok && nbf.After(now.Add(assertionSkew)) {
		return fail("the client assertion is not valid yet (nbf)")
	}
	if iat, ok := auth.NumericDate(cl.Iat); ok && iat.After(now.Add(assertionSkew)) {
		return fail("the client assertion was issued in the future (iat)")
	}
	// §3 item 7: a jti, used once, on every instance.
	if cl.JTI == "" || len(cl.JTI) > 256 {
		return fail("the client assertion needs a jti of at most 256 characters")
	}
	first, err := s.spendJTI(ctx, "client-assertion", id, cl.JTI, exp)
	if err != nil {
		return internalErr(err)
	}
	if !first {
		return fail("the client assertion was used already: sign a new one with a new jti for each request")
	}
	return nil
}

// unverifiedClaims reads the claims of a compact JWS without checking
// anything: only to find whose keys verify it.
func unverifiedClaims(jwt string) assertionClaims {
	var cl assertionClaims
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			json.Unmarshal(raw, &cl)
		}
	}
	return cl
}

// audienceIsOnly reports whether an aud claim (a string, or an array of
// one string) is exactly want.
func audienceIsOnly(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var list []string
	return json.Unmarshal(raw, &list) == nil && len(list) == 1 && list[0] == want
}

// addMachineClient creates a machine client acting for in.ActsAs, and the
// consent that lists it among the user's connected apps; withdrawing the
// consent stops it.
func addMachineClient(ctx context.Context, store Store, kek []byte, in NewClient, now time.Time) (*Client, string, error) {
	if len(in.RedirectURIs) > 0 || in.ResourceServer {
		return nil, "", epicme.Invalid("acts_as", "a machine client has no redirect URIs and is not a resource server")
	}
	scope, unknown := normalizeScopes(epicme.AllScopes, in.Scope)
	if len(unknown) > 0 {
		return nil, "", epicme.Invalid("scope", "unknown scope %q (known: %s)", unknown[0], strings.Join(epicme.AllScopes, " "))
	}
	if scope == "" {
		return nil, "", epicme.Invalid("scope", "a machine client needs the scopes it may have, for example \"entries:read\"")
	}
	c := &Client{
		ID:         newClientID(),
		Kind:       ClientPreregistered,
		Name:       in.Name,
		AuthMethod: AuthClientSecretBasic,
		GrantTypes: []string{GrantClientCredentials},
		Scope:      scope,
		ActsAs:     in.ActsAs,
		CreatedAt:  now,
	}
	var secret string
	if in.JWKS != "" {
		if len(in.JWKS) > 16<<10 {
			return nil, "", epicme.Invalid("jwks", "the JWKS is larger than 16 KiB")
		}
		if _, err := auth.ParseKeySet([]byte(in.JWKS)); err != nil {
			return nil, "", epicme.Invalid("jwks", "%v", err)
		}
		c.AuthMethod, c.JWKS = AuthPrivateKeyJWT, in.JWKS
	} else {
		secret = randomToken(32)
		c.SecretHash = secretHasher{key: subkey(kek, "client secrets")}.hash(secret)
	}
	if err := store.CreateClient(ctx, c); err != nil {
		return nil, "", err
	}
	if err := store.SaveConsent(ctx, &Consent{UserID: in.ActsAs, ClientID: c.ID, Scope: scope, CreatedAt: now, UpdatedAt: now}); err != nil {
		store.DeleteClient(ctx, c.ID, now)
		return nil, "", err
	}
	return c, secret, nil
}

// maxMachineClients bounds the machine clients one user may hold.
const maxMachineClients = 10

// serveAddMachineClient creates a machine client for the signed-in user's
// own journal, after their password: a stolen session cookie alone cannot
// mint a credential that outlives the session. The secret is shown once.
func (s *Server) serveAddMachineClient(w http.ResponseWriter, r *http.Request) {
	user := s.pageUser(w, r)
	if user == nil {
		return
	}
	in := NewClient{
		Name:   strings.TrimSpace(r.PostForm.Get("name")),
		ActsAs: user.ID,
		Scope:  strings.Join(r.PostForm["scope"], " "),
		JWKS:   strings.TrimSpace(r.PostForm.Get("jwks")),
	}
	if in.Name == "" {
		s.showAccount(w, r, user, http.StatusBadRequest, "", "Give the automation a name.")
		return
	}
	if in.Scope == "" {
		s.showAccount(w, r, user, http.StatusBadRequest, "", "Choose at least one thing the automation may do.")
		return
	}
	if s.reauthenticate(w, r, user, r.PostForm.Get("password")) == "" {
		return
	}
	ctx := r.Context()
	consents, err := s.store.ListConsents(ctx, user.ID)
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	held := 0
	for _, c := range consents {
		if cl, err := s.lookupClient(ctx, c.ClientID); err == nil && cl.Machine() {
			held++
		}
	}
	if held >= maxMachineClients {
		s.showAccount(w, r, user, http.StatusConflict, "", "You have as many automations as an account may hold (10). Revoke one under Connected apps first.")
		return
	}
	c, secret, err := AddClient(ctx, s.store, s.cfg.KEK, in, s.now())
	if epicme.ErrorCode(err) == epicme.EINVALID {
		s.showAccount(w, r, user, http.StatusBadRequest, "", epicme.ErrorMessage(err))
		return
	}
	if err != nil {
		s.busyOrInternal(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "user created a machine client", "user", user.ID, "client_id", c.ID, "auth", c.AuthMethod)
	w.Header().Set("Cache-Control", "no-store")
	s.showAccountWith(w, r, user, http.StatusOK, "", "", map[string]string{
		"Name": c.Name, "ClientID": c.ID, "Secret": secret, "Scope": c.Scope,
		"TokenURL": s.issuer + TokenPath, "Issuer": s.issuer, "Resource": s.resource,
	})
}
