package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/lru"
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
		if e := s.unknownScope(sc); e != nil {
			return nil, e
		}
		scope, _ = normalizeScopes(strings.Fields(client.Scope), sc)
		if scope == "" {
			return nil, oerr(http.StatusBadRequest, errInvalidScope, "none of the scopes asked for is one this machine client may have ("+client.Scope+")")
		}
	}
	// The user's consent is what the connected-apps page withdraws: check
	// it in the store on every request, so that withdrawing it on one
	// instance stops every instance at once; and again once the grant is
	// stored (issueWithoutRefresh), so that a withdrawal in between bites.
	consented := func() (bool, error) { return found(s.store.Consent(ctx, client.ActsAs, client.ID)) }
	if ok, err := consented(); err != nil {
		return nil, internalErr(err)
	} else if !ok {
		return nil, oerr(http.StatusBadRequest, errInvalidGrant, "the user withdrew this machine client's access")
	}
	user, e := s.activeUser(ctx, client.ActsAs)
	if e != nil {
		return nil, e
	}
	return s.issueWithoutRefresh(ctx, user, client, scope, jkt, consented)
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
	id := unverifiedIssuer(assertion)
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
	if c.AuthMethod != AuthPrivateKeyJWT || (c.JWKS == "" && c.JWKSURI == "") {
		return nil, fail("this client does not authenticate with private_key_jwt")
	}
	// An access token, a DPoP proof or an ID-JAG is not a client
	// assertion, whoever signed it (RFC 8725 §3.11): typ is absent, JWT,
	// or the one of draft-ietf-oauth-rfc7523bis.
	v, err := s.jwtVerifier(jwtGrantKind{name: "client assertion", issuer: c.ID, jwks: c.JWKS, jwksURI: c.JWKSURI,
		types: []string{"", "JWT", "client-authentication+jwt"}})
	if err != nil {
		return nil, internalErr(err)
	}
	// RFC 7523 §3 items 1-2: iss and sub are the client_id (§2.2).
	_, reason, e := s.checkJWTGrant(r.Context(), v, assertion, false, func(info *auth.TokenInfo) *oauthError {
		if info.Subject != c.ID {
			return fail("the client assertion is not valid: its sub must be " + c.ID + ", as its iss")
		}
		return nil
	})
	if e != nil {
		return nil, e
	}
	if reason != "" {
		return nil, fail("the client assertion is not valid: " + reason)
	}
	return c, nil
}

// jwtGrantKind names a kind of JWT someone else signs for this server
// (a client assertion, an ID-JAG) and where its issuer's keys are.
type jwtGrantKind struct {
	name, issuer  string
	jwks, jwksURI string // the keys: a JWKS, or where to fetch one ("" both: the issuer's metadata)
	types         []string
}

// jwtVerifiers keeps one verifier per issuer of JWT grants, so that fetched
// keys are cached (and refetched, rate-limited, for an unknown kid); a
// verifier is made anew when the issuer's keys change.
type jwtVerifiers struct {
	mu sync.Mutex // one verifier per key, even when two requests race
	c  *lru.Cache[verifierKey, *auth.JWTVerifier]
}

// verifierKey is a jwtGrantKind without its types, which its name stands
// for.
type verifierKey struct{ name, issuer, jwks, jwksURI string }

// maxJWTVerifiers bounds the verifiers kept; past it the least recently
// used goes (a verifier only saves a key fetch).
const maxJWTVerifiers = 10_000

// jwtVerifier returns the verifier of k's JWTs: signed with
// AssertionAlgorithms by the keys of k, issued by k.issuer for this server
// (aud), of one of k.types. Keys are fetched through the guarded fetcher
// of metadata documents, never from this server's own network.
func (s *Server) jwtVerifier(k jwtGrantKind) (*auth.JWTVerifier, error) {
	key := verifierKey{k.name, k.issuer, k.jwks, k.jwksURI}
	s.verifiers.mu.Lock()
	defer s.verifiers.mu.Unlock()
	if s.verifiers.c == nil {
		s.verifiers.c = lru.New[verifierKey, *auth.JWTVerifier](maxJWTVerifiers)
	}
	if v, ok := s.verifiers.c.Get(key, time.Time{}); ok {
		return v, nil
	}
	opts := auth.JWTOptions{
		Issuer:     k.issuer,
		Resource:   s.issuer, // the audience of these JWTs is this server
		JWKSURL:    k.jwksURI,
		Algorithms: AssertionAlgorithms,
		Types:      k.types,
		HTTPClient: s.docs.http,
		CacheSize:  -1, // each is checked, and spent, once
		Skew:       assertionSkew,
		Now:        s.now,
	}
	if k.jwks != "" {
		keys, err := auth.ParseKeySet([]byte(k.jwks))
		if err != nil {
			return nil, err
		}
		opts.Keys = keys
	}
	v, err := auth.NewJWTVerifier(opts)
	if err != nil {
		return nil, err
	}
	s.verifiers.c.Put(key, v, time.Time{})
	return v, nil
}

// checkJWTGrant verifies a JWT that another party signed for this server
// (a client assertion, an ID-JAG) and applies RFC 7523 §3: signature, iss,
// sub, exp and nbf (the verifier); aud exactly this issuer, one value, so
// that a JWT made for another endpoint or shared with other audiences
// cannot be replayed here (draft-ietf-oauth-rfc7523bis); exp at most
// assertionMaxLifetime ahead; iat not in the future (and present, with
// needIAT); then the caller's own rules about the JWT (check, which
// returns the reason of a refusal or ""); and only then spends the jti, on
// every instance, so that a JWT refused for what it says is not used up. It returns the claims,
// or
// the reason the JWT was refused; an *oauthError only when the server
// could not decide.
func (s *Server) checkJWTGrant(ctx context.Context, v *auth.JWTVerifier, token string, needIAT bool, check func(*auth.TokenInfo) *oauthError) (*auth.TokenInfo, string, *oauthError) {
	info, err := v.Verify(ctx, token)
	var te *auth.TokenError
	switch {
	case errors.As(err, &te):
		return nil, te.Reason, nil
	case errors.Is(err, auth.ErrUnavailable):
		s.log.WarnContext(ctx, "keys of a JWT grant's issuer unavailable", "err", err)
		return nil, "", oerr(http.StatusServiceUnavailable, "temporarily_unavailable", "the issuer's keys could not be fetched; try again shortly")
	case err != nil:
		return nil, "", internalErr(err)
	}
	if len(info.Audience) != 1 || info.Audience[0] != s.issuer {
		return nil, "its aud must be exactly the issuer, " + s.issuer, nil
	}
	now := s.now()
	if info.Expiry.Sub(now) > assertionMaxLifetime {
		return nil, "it lives too long: its exp must be within 10 minutes", nil
	}
	if (needIAT && info.IssuedAt.IsZero()) || info.IssuedAt.After(now.Add(assertionSkew)) {
		return nil, "its iat is missing or in the future", nil
	}
	if e := check(info); e != nil {
		return nil, "", e
	}
	first, err := s.spendJTI(ctx, v.Issuer(), info.StringClaim("jti"), info.Expiry)
	if err != nil {
		return nil, "", internalErr(err)
	}
	if !first {
		return nil, "its jti is missing, or it was used already: make a new one, with a new jti, for each request", nil
	}
	return info, "", nil
}

// found turns a store lookup into whether the row exists: ENOTFOUND is
// false, not an error.
func found[T any](_ T, err error) (bool, error) {
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// unknownScope refuses a scope parameter naming a scope this server does
// not have (RFC 6749 §5.2 invalid_scope); nil when it names none.
func (s *Server) unknownScope(scope string) *oauthError {
	if _, unknown := normalizeScopes(s.scopes, scope); len(unknown) > 0 {
		return oerr(http.StatusBadRequest, errInvalidScope, "unknown scope "+unknown[0])
	}
	return nil
}

// unverifiedIssuer reads the iss claim of a compact JWS without checking
// anything: only to find whose keys verify it.
func unverifiedIssuer(jwt string) string {
	var cl struct {
		Iss string `json:"iss"`
	}
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			json.Unmarshal(raw, &cl)
		}
	}
	return cl.Iss
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
	switch {
	case in.JWKS != "" && in.JWKSURI != "":
		return nil, "", epicme.Invalid("jwks", "give the keys or where to fetch them, not both")
	case in.JWKSURI != "":
		if err := checkKeyURL(in.JWKSURI); err != nil {
			return nil, "", epicme.Invalid("jwks_uri", "jwks_uri: %v", err)
		}
		c.AuthMethod, c.JWKSURI = AuthPrivateKeyJWT, in.JWKSURI
	case in.JWKS != "":
		if len(in.JWKS) > 16<<10 {
			return nil, "", epicme.Invalid("jwks", "the JWKS is larger than 16 KiB")
		}
		keys, err := auth.ParseKeySet([]byte(in.JWKS))
		if err != nil {
			return nil, "", epicme.Invalid("jwks", "%v", err)
		}
		// Only the public signature keys are kept: a private key pasted
		// by mistake next to its public half never reaches the database.
		public, err := json.Marshal(keys)
		if err != nil {
			return nil, "", epicme.Invalid("jwks", "%v", err)
		}
		c.AuthMethod, c.JWKS = AuthPrivateKeyJWT, string(public)
	default:
		secret = randomToken(32)
		c.SecretHash = secretHasher{key: subkey(kek, "client secrets")}.hash(secret)
	}
	if err := store.CreateMachineClient(ctx, c, in.MaxPerUser); err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// MachineClientTx is what a store offers [CreateMachineClientIn] within the
// one transaction of a Store.CreateMachineClient, in which the user's
// machine clients cannot change: the SQL is the store's, the rule is ours.
type MachineClientTx interface {
	// MachineClients counts the machine clients acting for userID that
	// the user still consents to (those listed under connected apps).
	MachineClients(userID string) (int, error)
	// InsertClient and SaveConsent store as Store's CreateClient and
	// SaveConsent do.
	InsertClient(c *Client) error
	SaveConsent(c *Consent) error
}

// CreateMachineClientIn stores c and its user's consent in tx, unless the
// user already holds max machine clients (0: no bound): ECONFLICT then.
func CreateMachineClientIn(tx MachineClientTx, c *Client, max int) error {
	if max > 0 {
		held, err := tx.MachineClients(c.ActsAs)
		if err != nil {
			return err
		}
		if held >= max {
			return epicme.Errorf(epicme.ECONFLICT, "the user holds %d machine clients, the most allowed", held)
		}
	}
	if err := tx.InsertClient(c); err != nil {
		return err
	}
	return tx.SaveConsent(&Consent{UserID: c.ActsAs, ClientID: c.ID, Scope: c.Scope, CreatedAt: c.CreatedAt, UpdatedAt: c.CreatedAt})
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
		// Counted in the store's transaction: concurrent posts cannot
		// pass the bound together.
		MaxPerUser: maxMachineClients,
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
	c, secret, err := AddClient(ctx, s.store, s.cfg.KEK, in, s.now())
	if epicme.ErrorCode(err) == epicme.ECONFLICT {
		s.showAccount(w, r, user, http.StatusConflict, "", fmt.Sprintf("You have as many automations as an account may hold (%d). Revoke one under Connected apps first.", maxMachineClients))
		return
	}
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
