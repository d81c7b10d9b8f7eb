package authserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/internal/dpoptest"
	"github.com/epicme/epicme/sqlite"
)

// machineKey is a private_key_jwt client's signing key and its public JWKS.
type machineKey struct {
	priv *ecdsa.PrivateKey
	kid  string
	jwks string
}

func newMachineKey(t *testing.T) machineKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := machineKey{priv: priv, kid: "k1"}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k.jwks = string(b)
	return k
}

// assertion signs a client assertion (RFC 7523 §3) with claims over the
// defaults for client id and issuer; a nil value deletes a claim.
func (k machineKey) assertion(t *testing.T, e *testserver.Env, id string, claims map[string]any, alg jose.SignatureAlgorithm, typ string) string {
	t.Helper()
	now := e.Clock.Now()
	c := map[string]any{"iss": id, "sub": id, "aud": e.Issuer, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": randomID()}
	for name, v := range claims {
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
	}
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), k.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	var key any = k.priv
	if alg == jose.HS256 {
		key = []byte("a shared secret anyone could guess...")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// machineClient adds a machine client acting for the env's user, with a
// secret, or with jwks for private_key_jwt.
func machineClient(e *testserver.Env, scope, jwks string) (*authserver.Client, string) {
	e.TB.Helper()
	c, secret, err := authserver.AddClient(context.Background(), e.DB, e.Config.KEK, authserver.NewClient{Name: "Nightly backup", ActsAs: e.User.ID, Scope: scope, JWKS: jwks}, e.Clock.Now())
	if err != nil {
		e.TB.Fatal(err)
	}
	return c, secret
}

// clientCredentials asks for a token by the client credentials grant.
func clientCredentials(e *testserver.Env, id, secret string, form url.Values) testserver.Reply {
	e.TB.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	return e.PostForm(authserver.TokenPath, form, id, secret)
}

func withAssertion(a string) url.Values {
	return url.Values{"client_assertion_type": {authserver.ClientAssertionType}, "client_assertion": {a}}
}

// TestRule_RFC6749_4_4_ClientCredentialsActsForItsUser: a machine client
// authenticated with its secret gets an access token for the user it acts
// for, with its scopes, and no refresh token (RFC 6749 §4.4.3).
func TestRule_RFC6749_4_4_ClientCredentialsActsForItsUser(t *testing.T) {
	e := testserver.NewEnv(t)
	c, secret := machineClient(e, "user:read entries:read", "")
	r := clientCredentials(e, c.ID, secret, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if _, ok := m["refresh_token"]; ok {
		t.Fatalf("a client credentials grant must not issue a refresh token: %s", r.Body)
	}
	if m["token_type"] != "Bearer" || m["scope"] != "user:read entries:read" {
		t.Fatalf("token response: %s", r.Body)
	}
	info, err := e.Server.Verifier().Verify(context.Background(), m["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if info.Subject != e.User.ID || info.ClientID != c.ID || strings.Join(info.Scopes, " ") != "user:read entries:read" {
		t.Fatalf("token acts as %q for %q with %v", info.Subject, info.ClientID, info.Scopes)
	}
	// RFC 6749 §3.3: a request gets the scopes it asked for that the
	// client may have, and the response says which; never more.
	for asked, want := range map[string]string{"entries:read": "entries:read", "entries:read entries:write tags:write": "entries:read"} {
		if r := clientCredentials(e, c.ID, secret, url.Values{"scope": {asked}}); r.Status != http.StatusOK || r.JSON(t)["scope"] != want {
			t.Fatalf("asking for %q: %d %s, want scope %q", asked, r.Status, r.Body, want)
		}
	}
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, secret, url.Values{"scope": {"entries:write"}}), http.StatusBadRequest, "invalid_scope")
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, secret, url.Values{"scope": {"entries:read admin"}}), http.StatusBadRequest, "invalid_scope")
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, "wrong-secret", nil), http.StatusUnauthorized, "invalid_client")
}

// TestRule_RFC6749_4_4_OnlyMachineClients: a client that is not a machine
// client (here a confidential client of the code flow) may not use the
// client credentials grant: it acts for nobody.
func TestRule_RFC6749_4_4_OnlyMachineClients(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.ConfidentialClient()
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, c.Secret, nil), http.StatusBadRequest, "unauthorized_client")
	// The metadata says which algorithms may sign a client assertion
	// (RFC 8414 §2); grant_types_supported and
	// token_endpoint_auth_methods_supported are checked with the rest of
	// the metadata.
	b, _ := json.Marshal(e.Get("/.well-known/oauth-authorization-server").JSON(t)["token_endpoint_auth_signing_alg_values_supported"])
	if !strings.Contains(string(b), `"ES256"`) || strings.Contains(string(b), `"HS`) || strings.Contains(string(b), `none`) {
		t.Fatalf("token_endpoint_auth_signing_alg_values_supported = %s", b)
	}
}

// TestRule_RFC7523_2_2_PrivateKeyJWT: a machine client with registered keys
// authenticates with an assertion signed by one of them, and not with a
// secret.
func TestRule_RFC7523_2_2_PrivateKeyJWT(t *testing.T) {
	e := testserver.NewEnv(t)
	k := newMachineKey(t)
	c, secret := machineClient(e, "entries:read", k.jwks)
	if secret != "" {
		t.Fatal("a private_key_jwt client must not get a secret")
	}
	r := clientCredentials(e, "", "", withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, "JWT")))
	if r.Status != http.StatusOK {
		t.Fatalf("private_key_jwt: %d %s", r.Status, r.Body)
	}
	if err := e.Verify(r.JSON(t)["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
	// client_id may be repeated, and must then agree.
	form := withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, ""))
	form.Set("client_id", c.ID)
	if r := clientCredentials(e, "", "", form); r.Status != http.StatusOK {
		t.Fatalf("with client_id: %d %s", r.Status, r.Body)
	}
	form = withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, ""))
	form.Set("client_id", "someone-else")
	testserver.WantOAuthError(t, clientCredentials(e, "", "", form), http.StatusUnauthorized, "invalid_client")
	// No secret authenticates it, even an empty one.
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, "", nil), http.StatusUnauthorized, "invalid_client")
}

// TestRule_RFC7523_3_AssertionClaims: each rule of RFC 7523 §3 (and RFC
// 8725) refuses an assertion that breaks it, with invalid_client, while
// the same assertion without the fault passes (the first case).
func TestRule_RFC7523_3_AssertionClaims(t *testing.T) {
	e := testserver.NewEnv(t)
	k := newMachineKey(t)
	c, _ := machineClient(e, "entries:read", k.jwks)
	other := newMachineKey(t)
	now := e.Clock.Now()
	cases := []struct {
		name   string
		claims map[string]any
		alg    jose.SignatureAlgorithm
		typ    string
		signer machineKey
		ok     bool
		want   string // in the refusal's description
	}{
		{name: "valid", ok: true},
		{name: "aud is the token endpoint, not the issuer", claims: map[string]any{"aud": e.Issuer + authserver.TokenPath}, want: "aud"},
		{name: "aud lists another audience too", claims: map[string]any{"aud": []string{e.Issuer, "https://other.example"}}, want: "aud"},
		{name: "no aud", claims: map[string]any{"aud": nil}, want: "aud"},
		{name: "sub is not the client", claims: map[string]any{"sub": "someone"}, want: "sub must be"},
		{name: "expired", claims: map[string]any{"exp": now.Add(-time.Minute).Unix()}, want: "expired"},
		{name: "no exp", claims: map[string]any{"exp": nil}, want: "no exp"},
		{name: "exp too far ahead", claims: map[string]any{"exp": now.Add(time.Hour).Unix()}, want: "lives too long"},
		{name: "not valid yet", claims: map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}, want: "nbf"},
		{name: "issued in the future", claims: map[string]any{"iat": now.Add(5 * time.Minute).Unix()}, want: "iat"},
		{name: "no jti", claims: map[string]any{"jti": nil}, want: "jti"},
		{name: "signed by another key", signer: other, want: "signature does not verify"},
		{name: "HMAC with a guessable secret", alg: jose.HS256, want: "HMAC"},
		{name: "typ of an access token", typ: "at+jwt", want: "typ"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signer := tc.signer
			if signer.priv == nil {
				signer = k
			}
			alg := tc.alg
			if alg == "" {
				alg = jose.ES256
			}
			signer.kid = k.kid
			r := clientCredentials(e, "", "", withAssertion(signer.assertion(t, e, c.ID, tc.claims, alg, tc.typ)))
			if tc.ok {
				if r.Status != http.StatusOK {
					t.Fatalf("a valid assertion was refused: %d %s", r.Status, r.Body)
				}
				return
			}
			testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
			if d, _ := r.JSON(t)["error_description"].(string); !strings.Contains(d, tc.want) {
				t.Fatalf("refused for another reason: %q, want it to mention %q", d, tc.want)
			}
		})
	}
	// alg none: an unsigned JWT.
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := b64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + b64([]byte(`{"iss":"`+c.ID+`","sub":"`+c.ID+`","aud":"`+e.Issuer+`","exp":`+jsonNumber(now.Add(time.Minute).Unix())+`,"jti":"x"}`)) + "."
	r := clientCredentials(e, "", "", withAssertion(unsigned))
	testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(r.Body, "alg none") {
		t.Fatalf("an unsigned assertion refused for another reason: %s", r.Body)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestAttack_ClientAssertionReplayed: an assertion captured in transit (or
// from a log) is refused the second time, on this instance and on another
// that shares the database (RFC 7523 §3 item 7).
func TestAttack_ClientAssertionReplayed(t *testing.T) {
	e := testserver.NewEnv(t)
	k := newMachineKey(t)
	c, _ := machineClient(e, "entries:read", k.jwks)
	a := k.assertion(t, e, c.ID, nil, jose.ES256, "JWT")
	if r := clientCredentials(e, "", "", withAssertion(a)); r.Status != http.StatusOK {
		t.Fatalf("first use: %d %s", r.Status, r.Body)
	}
	r := clientCredentials(e, "", "", withAssertion(a))
	testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(r.Body, "used already") {
		t.Fatalf("the refusal should say why: %s", r.Body)
	}
	// A second server over the same database refuses it too.
	second, err := authserver.New(context.Background(), e.Config)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	second.Register(mux)
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.TokenPath, strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_assertion_type": {authserver.ClientAssertionType}, "client_assertion": {a},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "used already") {
		t.Fatalf("another instance accepted the replay: %d %s", rec.Code, rec.Body.String())
	}
}

// TestAttack_MachineClientAfterTheUserWithdrewIt: once the user revokes a
// machine client on the connected-apps page (its consent withdrawn), its
// secret gets no more tokens, and the tokens it had stop working.
func TestAttack_MachineClientAfterTheUserWithdrewIt(t *testing.T) {
	e := testserver.NewEnv(t)
	c, secret := machineClient(e, "entries:read", "")
	r := clientCredentials(e, c.ID, secret, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", r.Status, r.Body)
	}
	tok := r.JSON(t)["access_token"].(string)
	b := e.Agent()
	page := b.Get(e.Issuer + authserver.AppsPath)
	page = b.SignIn(page.Body, testserver.Email, testserver.Password)
	if !strings.Contains(page.Body, "Nightly backup") {
		t.Fatalf("the machine client is not among the connected apps:\n%s", page.Body)
	}
	csrf := testserver.CSRFField.FindStringSubmatch(page.Body)
	if csrf == nil {
		t.Fatalf("no CSRF field on the page:\n%s", page.Body)
	}
	form := url.Values{"csrf": {html.UnescapeString(csrf[1])}, "client_id": {c.ID}}
	if r := b.Post(authserver.AppsRevokePath, form); r.Status >= 400 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if err := e.Verify(tok); err == nil {
		t.Fatal("the machine client's token still works after the user revoked it")
	}
	testserver.WantOAuthError(t, clientCredentials(e, c.ID, secret, nil), http.StatusUnauthorized, "invalid_client")
	if _, err := e.DB.ClientByID(context.Background(), c.ID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a revoked machine client should be deleted: %v", err)
	}
}

// TestMachineClientNeedsScopesAndNoRedirects: the operator's and the
// account page's one constructor refuses a machine client without scopes,
// with unknown ones, with redirect URIs, or with a JWKS holding no usable
// public key.
func TestMachineClientNeedsScopesAndNoRedirects(t *testing.T) {
	e := testserver.NewEnv(t)
	ctx := context.Background()
	for name, in := range map[string]authserver.NewClient{
		"no scope":      {Name: "x", ActsAs: e.User.ID},
		"unknown scope": {Name: "x", ActsAs: e.User.ID, Scope: "entries:read admin"},
		"redirects":     {Name: "x", ActsAs: e.User.ID, Scope: "entries:read", RedirectURIs: []string{"https://a.example/cb"}},
		"private JWKS":  {Name: "x", ActsAs: e.User.ID, Scope: "entries:read", JWKS: `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`},
		"JWKS not JSON": {Name: "x", ActsAs: e.User.ID, Scope: "entries:read", JWKS: `keys`},
	} {
		if _, _, err := authserver.AddClient(ctx, e.DB, e.Config.KEK, in, e.Clock.Now()); epicme.ErrorCode(err) != epicme.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
}

var (
	createdClientID = regexp.MustCompile(`<dt>Client ID</dt><dd><code>([^<]+)</code>`)
	createdSecret   = regexp.MustCompile(`<dt>Client secret</dt><dd><code>([^<]+)</code>`)
)

// createAutomation signs in on the account page and submits its automation
// form with name, scopes and password.
func createAutomation(e *testserver.Env, b *testserver.Agent, name, password string, scopes ...string) testserver.Reply {
	e.TB.Helper()
	page := b.SignIn(b.Get(e.Issuer+authserver.AccountPath).Body, testserver.Email, testserver.Password)
	csrf := testserver.CSRFField.FindStringSubmatch(page.Body)
	if csrf == nil || !strings.Contains(page.Body, authserver.AccountMachinePath) {
		e.TB.Fatalf("the account page has no automation form:\n%s", page.Body)
	}
	return b.Post(authserver.AccountMachinePath, url.Values{
		"csrf": {html.UnescapeString(csrf[1])}, "name": {name}, "scope": scopes, "password": {password},
	})
}

// TestMachineClientFromTheAccountPage: a signed-in user creates an
// automation for their own journal on the account page, with their
// password; the page shows its id and secret once, the secret gets a token
// for that user with the scopes ticked, and the automation is listed under
// connected apps as such.
func TestMachineClientFromTheAccountPage(t *testing.T) {
	e := testserver.NewEnv(t)
	b := e.Agent()
	r := createAutomation(e, b, "Nightly backup", testserver.Password, "entries:read", "tags:read")
	id, secret := createdClientID.FindStringSubmatch(r.Body), createdSecret.FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || id == nil || secret == nil {
		t.Fatalf("create: %d, no id or secret shown:\n%s", r.Status, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("a page showing a secret must not be cached: Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	tok := clientCredentials(e, id[1], html.UnescapeString(secret[1]), nil)
	if tok.Status != http.StatusOK || tok.JSON(t)["scope"] != "entries:read tags:read" {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	info, err := e.Server.Verifier().Verify(context.Background(), tok.JSON(t)["access_token"].(string))
	if err != nil || info.Subject != e.User.ID {
		t.Fatalf("the token should act for the user who made the automation: %+v, %v", info, err)
	}
	apps := b.Get(e.Issuer + authserver.AppsPath)
	if !strings.Contains(apps.Body, "Nightly backup") || !strings.Contains(apps.Body, "Automation") {
		t.Fatalf("the automation is not listed as one under connected apps:\n%s", apps.Body)
	}
}

// TestAttack_StolenSessionCannotMintAMachineClient: someone holding only a
// user's session cookie cannot create an automation, a credential that
// would outlive the session and survive sign-out: the form needs the
// password.
func TestAttack_StolenSessionCannotMintAMachineClient(t *testing.T) {
	e := testserver.NewEnv(t)
	r := createAutomation(e, e.Agent(), "Exfiltrator", "not the password", "entries:read")
	if r.Status != http.StatusUnauthorized || createdClientID.MatchString(r.Body) {
		t.Fatalf("without the password: %d\n%s", r.Status, r.Body)
	}
	consents, err := e.DB.ListConsents(context.Background(), e.User.ID)
	if err != nil || len(consents) != 0 {
		t.Fatalf("a client was created without the password: %v, %v", consents, err)
	}
}

// TestLimits_MachineClientsPerUser: a user holds at most 10 automations;
// the account page refuses the 11th and says how to make room.
func TestLimits_MachineClientsPerUser(t *testing.T) {
	e := testserver.NewEnv(t)
	for range 10 {
		machineClient(e, "entries:read", "")
	}
	r := createAutomation(e, e.Agent(), "One too many", testserver.Password, "entries:read")
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "Revoke one") || createdClientID.MatchString(r.Body) {
		t.Fatalf("the 11th automation: %d\n%s", r.Status, r.Body)
	}
}

// TestRule_RFC7523_2_2_KeysFromJWKSURI: a machine client may register where
// its keys are (jwks_uri) instead of the keys; the server fetches them
// through the guarded fetcher, so not from its own network outside
// development.
func TestRule_RFC7523_2_2_KeysFromJWKSURI(t *testing.T) {
	k := newMachineKey(t)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, k.jwks)
	}))
	defer keys.Close()
	for _, dev := range []bool{true, false} {
		e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments.AllowPrivateAddresses = dev })
		c, _, err := authserver.AddClient(context.Background(), e.DB, e.Config.KEK, authserver.NewClient{Name: "Backup", ActsAs: e.User.ID, Scope: "entries:read", JWKSURI: keys.URL + "/jwks.json"}, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		r := clientCredentials(e, "", "", withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, "JWT")))
		if dev && r.Status != http.StatusOK {
			t.Fatalf("keys from jwks_uri: %d %s", r.Status, r.Body)
		}
		if !dev {
			testserver.WantOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
		}
	}
}

// revokedMidIssue is a store where the user withdraws every consent just
// before a grant without refresh token is stored: the revocation commits
// between the token endpoint's consent check and the grant's insert, and so
// cannot see the grant.
type revokedMidIssue struct {
	*sqlite.DB
	user string
}

func (s revokedMidIssue) CreateGrant(ctx context.Context, g *authserver.Grant, at *authserver.AccessToken) error {
	if err := s.DeleteConsent(ctx, s.user, g.ClientID, time.Now()); err != nil {
		return err
	}
	return s.DB.CreateGrant(ctx, g, at)
}

// TestAttack_MachineClientRevokedWhileItsTokenIsIssued: a revocation that
// lands while a machine client's token is being issued is not outlived by
// that token: the token endpoint checks the consent again once the grant is
// stored, revokes the grant, and hands out nothing.
func TestAttack_MachineClientRevokedWhileItsTokenIsIssued(t *testing.T) {
	var e *testserver.Env
	e = testserver.NewEnv(t, func(c *authserver.Config) {
		db := c.Store.(*sqlite.DB)
		u, err := db.LocalUserByEmail(context.Background(), testserver.Email)
		if err != nil {
			t.Fatal(err)
		}
		c.Store = revokedMidIssue{DB: db, user: u.ID}
	})
	c, secret := machineClient(e, "entries:read", "")
	r := clientCredentials(e, c.ID, secret, nil)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(r.Body, "withdrawn") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
	grants, err := e.DB.ListGrants(context.Background(), authserver.GrantFilter{ClientID: c.ID, IncludeRevoked: true})
	if err != nil || len(grants) != 1 || !grants[0].Revoked() {
		t.Fatalf("the grant stored meanwhile should be revoked: %+v, %v", grants, err)
	}
}

// TestMachineClientStoresOnlyPublicKeys: a JWKS pasted with a private key
// next to the public one is stored with the public key alone.
func TestMachineClientStoresOnlyPublicKeys(t *testing.T) {
	e := testserver.NewEnv(t)
	k := newMachineKey(t)
	private, err := json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: "oops", Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var set map[string][]json.RawMessage
	if err := json.Unmarshal([]byte(k.jwks), &set); err != nil {
		t.Fatal(err)
	}
	set["keys"] = append(set["keys"], private)
	both, _ := json.Marshal(set)
	c, _ := machineClient(e, "entries:read", string(both))
	stored, err := e.DB.ClientByID(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.JWKS, `"d"`) || strings.Contains(stored.JWKS, "oops") || !strings.Contains(stored.JWKS, k.kid) {
		t.Fatalf("stored JWKS %s; want the public key only", stored.JWKS)
	}
	// And it still verifies the client's assertions.
	if r := clientCredentials(e, "", "", withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, "JWT"))); r.Status != http.StatusOK {
		t.Fatalf("private_key_jwt with the stored keys: %d %s", r.Status, r.Body)
	}
}

// TestRule_RFC9449_8_NonceRetryKeepsTheAssertion: with server nonces, a
// private_key_jwt client's first DPoP token request gets use_dpop_nonce;
// the same request, with the same assertion and a proof carrying the nonce,
// then succeeds: the refused proof did not spend the assertion's jti.
func TestRule_RFC9449_8_NonceRetryKeepsTheAssertion(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.DPoPNonces = true })
	k := newMachineKey(t)
	c, _ := machineClient(e, "entries:read", k.jwks)
	dk := dpoptest.NewKey(t)
	form := withAssertion(k.assertion(t, e, c.ID, nil, jose.ES256, "JWT"))
	form.Set("grant_type", "client_credentials")
	tokenURL := e.Issuer + authserver.TokenPath
	r := tokenRequest(t, e, form, proof(t, e, dk, "POST", tokenURL, ""))
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "use_dpop_nonce")
	claims := map[string]any{"jti": randomID(), "htm": "POST", "htu": tokenURL, "iat": e.Clock.Now().Unix(), "nonce": r.Header.Get("DPoP-Nonce")}
	r = tokenRequest(t, e, form, dk.Proof(t, claims, nil))
	if r.Status != http.StatusOK || r.JSON(t)["token_type"] != "DPoP" {
		t.Fatalf("the retry with the nonce: %d %s", r.Status, r.Body)
	}
}
