package authserver_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/internal/idptest"
)

// idpEnv is an authorization server that trusts a test IdP for one
// confidential client.
type idpEnv struct {
	*testserver.Env
	idp    *idptest.IdP
	client testserver.Client
}

func newIdPEnv(t *testing.T, scope string) *idpEnv {
	t.Helper()
	// The IdP listens on loopback, which the guarded fetcher refuses
	// unless told this is development.
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments.AllowPrivateAddresses = true })
	ie := &idpEnv{Env: e, idp: idptest.New(t), client: e.ConfidentialClient()}
	ie.trust(ie.idp, scope, ie.client.ID)
	return ie
}

func (e *idpEnv) trust(p *idptest.IdP, scope string, clients ...string) {
	e.TB.Helper()
	if _, err := authserver.TrustIdentityProvider(context.Background(), e.DB, authserver.NewIdentityProvider{Issuer: p.Issuer, Clients: clients, Scope: scope}, e.Clock.Now()); err != nil {
		e.TB.Fatal(err)
	}
}

// jag signs an ID-JAG of the env's IdP for employee sub, for the env's
// client, with extra claims over the defaults.
func (e *idpEnv) jag(sub string, extra map[string]any) string {
	return e.idp.IDJAG(sub, e.Issuer, e.client.ID, e.Resource, extra)
}

// exchange presents an ID-JAG by the jwt-bearer grant as client c.
func (e *idpEnv) exchange(c testserver.Client, assertion string, form url.Values) testserver.Reply {
	e.TB.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", authserver.GrantJWTBearer)
	form.Set("assertion", assertion)
	return e.PostForm(authserver.TokenPath, form, c.ID, c.Secret)
}

// TestRule_RFC7523_2_1_IDJAGGrantIssuesATokenForTheIdPsUser: an ID-JAG from
// a trusted IdP gets an access token, without consent and without a refresh
// token, for the IdP's (issuer, subject): a new user, never the local
// account that shares the email.
func TestRule_RFC7523_2_1_IDJAGGrantIssuesATokenForTheIdPsUser(t *testing.T) {
	e := newIdPEnv(t, "")
	r := e.exchange(e.client, e.jag("employee-7", map[string]any{"email": testserver.Email, "scope": "entries:read user:read"}), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("jwt-bearer: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if _, ok := m["refresh_token"]; ok || m["scope"] != "user:read entries:read" {
		t.Fatalf("token response: %s", r.Body)
	}
	info, err := e.Server.Verifier().Verify(context.Background(), m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.DB.UserByID(context.Background(), info.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if u.Issuer != e.idp.Issuer || u.Subject != "employee-7" || u.ID == e.User.ID {
		t.Fatalf("the token acts as %+v; want the IdP's employee-7, not the local account with the same email", u)
	}
	// The same employee again is the same user.
	r = e.exchange(e.client, e.jag("employee-7", nil), nil)
	if info2, err := e.Server.Verifier().Verify(context.Background(), r.JSON(t)["access_token"].(string)); err != nil || info2.Subject != u.ID {
		t.Fatalf("second exchange: %v, %v", info2, err)
	}
}

// TestRule_RFC7523_3_IDJAGClaims: each rule an ID-JAG must meet (RFC 7523
// §3, the ID-JAG draft §3-4) refuses an assertion that breaks it with
// invalid_grant, for the reason named, while the same assertion without the
// fault passes (the first case).
func TestRule_RFC7523_3_IDJAGClaims(t *testing.T) {
	e := newIdPEnv(t, "")
	now := time.Now()
	cases := []struct {
		name      string
		assertion func() string
		want      string
	}{
		{"valid", func() string { return e.jag("emp", nil) }, ""},
		{"typ JWT, not oauth-id-jag+jwt", func() string {
			return e.idp.Sign("JWT", map[string]any{"iss": e.idp.Issuer, "sub": "emp", "aud": e.Issuer, "client_id": e.client.ID, "resource": e.Resource, "jti": "j1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
		}, "typ"},
		{"for another authorization server", func() string { return e.jag("emp", map[string]any{"aud": "https://other-as.example"}) }, "aud"},
		{"for another resource", func() string { return e.jag("emp", map[string]any{"resource": "https://other.example/mcp"}) }, "not for this resource"},
		{"no resource", func() string { return e.jag("emp", map[string]any{"resource": nil}) }, "not for this resource"},
		{"expired", func() string {
			return e.jag("emp", map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-5 * time.Minute).Unix()})
		}, "expired"},
		{"no iat", func() string { return e.jag("emp", map[string]any{"iat": nil}) }, "iat"},
		{"exp too far ahead", func() string { return e.jag("emp", map[string]any{"exp": now.Add(time.Hour).Unix()}) }, "lives too long"},
		{"no jti", func() string { return e.jag("emp", map[string]any{"jti": nil}) }, "jti"},
		{"no subject", func() string { return e.jag("", nil) }, "subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.exchange(e.client, tc.assertion(), nil)
			if tc.want == "" {
				if r.Status != http.StatusOK {
					t.Fatalf("a valid ID-JAG was refused: %d %s", r.Status, r.Body)
				}
				return
			}
			testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
			if d, _ := r.JSON(t)["error_description"].(string); !strings.Contains(d, tc.want) {
				t.Fatalf("refused for another reason: %q, want it to mention %q", d, tc.want)
			}
		})
	}
}

// TestAttack_IDJAGFromUntrustedIdP: an ID-JAG from an IdP the operator did
// not add, or one signed by another key under a trusted IdP's name, is
// refused.
func TestAttack_IDJAGFromUntrustedIdP(t *testing.T) {
	e := newIdPEnv(t, "")
	rogue := idptest.New(t)
	r := e.exchange(e.client, rogue.IDJAG("emp", e.Issuer, e.client.ID, e.Resource, nil), nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "not an identity provider this server trusts") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
	// The rogue signs a grant in the trusted IdP's name, with the same kid.
	forged := rogue.IDJAG("emp", e.Issuer, e.client.ID, e.Resource, map[string]any{"iss": e.idp.Issuer})
	r = e.exchange(e.client, forged, nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "signature") {
		t.Fatalf("a forged signature refused for another reason: %s", r.Body)
	}
}

// TestAttack_IDJAGForAnotherClient: an ID-JAG issued to one client cannot
// be redeemed by another, and an IdP cannot vouch for a client the
// operator did not list.
func TestAttack_IDJAGForAnotherClient(t *testing.T) {
	e := newIdPEnv(t, "")
	other := e.ConfidentialClient()
	// other is not listed for the IdP.
	r := e.exchange(other, e.idp.IDJAG("emp", e.Issuer, other.ID, e.Resource, nil), nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "may not vouch for this client") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
	// Listed, it still cannot redeem the grant issued to the first client,
	// nor use it up: the first client redeems it afterwards.
	e.trust(e.idp, "", e.client.ID, other.ID)
	stolen := e.jag("emp", nil)
	r = e.exchange(other, stolen, nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "issued for another client") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
	if r := e.exchange(e.client, stolen, nil); r.Status != http.StatusOK {
		t.Fatalf("the grant's own client could not redeem it after another tried: %d %s", r.Status, r.Body)
	}
	// A public client may not use the grant at all.
	pub := e.PublicClient()
	r = e.exchange(pub, e.idp.IDJAG("emp", e.Issuer, pub.ID, e.Resource, nil), url.Values{"client_id": {pub.ID}})
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "unauthorized_client")
}

// TestAttack_IDJAGReplayed: an ID-JAG is redeemed once (RFC 7523 §3 item
// 7), whoever presents it again.
func TestAttack_IDJAGReplayed(t *testing.T) {
	e := newIdPEnv(t, "")
	a := e.jag("emp", nil)
	if r := e.exchange(e.client, a, nil); r.Status != http.StatusOK {
		t.Fatalf("first use: %d %s", r.Status, r.Body)
	}
	r := e.exchange(e.client, a, nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "used already") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
}

// TestRule_IDJAGScopeWithinPolicy: the token gets what the assertion
// grants, within the operator's policy for the IdP, the client's scopes
// and the request; nothing left is invalid_scope.
func TestRule_IDJAGScopeWithinPolicy(t *testing.T) {
	e := newIdPEnv(t, "user:read entries:read")
	r := e.exchange(e.client, e.jag("emp", map[string]any{"scope": "entries:read entries:write"}), nil)
	if r.Status != http.StatusOK || r.JSON(t)["scope"] != "entries:read" {
		t.Fatalf("want entries:read only (policy ∩ assertion): %d %s", r.Status, r.Body)
	}
	r = e.exchange(e.client, e.jag("emp", nil), url.Values{"scope": {"user:read"}})
	if r.Status != http.StatusOK || r.JSON(t)["scope"] != "user:read" {
		t.Fatalf("want user:read (policy ∩ request): %d %s", r.Status, r.Body)
	}
	testserver.WantOAuthError(t, e.exchange(e.client, e.jag("emp", map[string]any{"scope": "tags:write"}), nil), http.StatusBadRequest, "invalid_scope")
}

// TestRule_IdPRemovedRevokesItsUsersTokens: removing an IdP (epicme idp
// remove) revokes the tokens its users hold, and its grants are refused
// from then on.
func TestRule_IdPRemovedRevokesItsUsersTokens(t *testing.T) {
	e := newIdPEnv(t, "")
	r := e.exchange(e.client, e.jag("emp", nil), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("jwt-bearer: %d %s", r.Status, r.Body)
	}
	tok := r.JSON(t)["access_token"].(string)
	local := e.Tokens(e.client)["access_token"].(string)
	if err := e.DB.DeleteIdentityProvider(context.Background(), e.idp.Issuer, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Second) // the revocation list syncs with the store
	if err := e.Verify(tok); err == nil {
		t.Fatal("the removed IdP's user still holds a working token")
	}
	if err := e.Verify(local); err != nil {
		t.Fatalf("a local user's token stopped too: %v", err)
	}
	r = e.exchange(e.client, e.jag("emp", nil), nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
}

// TestTrustIdentityProviderChecksItsInput: the IdP's URLs must be https
// (http on loopback), and it may vouch only for existing confidential
// clients of the code flow.
func TestTrustIdentityProviderChecksItsInput(t *testing.T) {
	e := testserver.NewEnv(t)
	ctx := context.Background()
	conf := e.ConfidentialClient()
	pub := e.PublicClient()
	for name, in := range map[string]authserver.NewIdentityProvider{
		"http issuer":    {Issuer: "http://idp.example.com", Clients: []string{conf.ID}},
		"issuer query":   {Issuer: "https://idp.example.com?x=1", Clients: []string{conf.ID}},
		"no client":      {Issuer: "https://idp.example.com"},
		"unknown client": {Issuer: "https://idp.example.com", Clients: []string{"nope"}},
		"public client":  {Issuer: "https://idp.example.com", Clients: []string{pub.ID}},
		"unknown scope":  {Issuer: "https://idp.example.com", Clients: []string{conf.ID}, Scope: "admin"},
		"http jwks_uri":  {Issuer: "https://idp.example.com", JWKSURI: "http://keys.example.com/jwks", Clients: []string{conf.ID}},
	} {
		if _, err := authserver.TrustIdentityProvider(ctx, e.DB, in, e.Clock.Now()); epicme.ErrorCode(err) != epicme.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
}

// TestAttack_IdPKeyFetchGuarded: the IdP's metadata and keys are fetched
// through the guarded fetcher of metadata documents, so an IdP entry (or
// its metadata's jwks_uri) cannot point the server at its own network: on
// a server not in development mode, a loopback IdP's keys are not fetched
// and its grants wait, with a clear error.
func TestAttack_IdPKeyFetchGuarded(t *testing.T) {
	e := testserver.NewEnv(t)
	idp := idptest.New(t)
	c := e.ConfidentialClient()
	if _, err := authserver.TrustIdentityProvider(context.Background(), e.DB, authserver.NewIdentityProvider{Issuer: idp.Issuer, Clients: []string{c.ID}}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {authserver.GrantJWTBearer}, "assertion": {idp.IDJAG("emp", e.Issuer, c.ID, e.Resource, nil)}}
	r := e.PostForm(authserver.TokenPath, form, c.ID, c.Secret)
	testserver.WantOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	if !strings.Contains(r.Body, "keys could not be fetched") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
}
