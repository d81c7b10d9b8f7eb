package authserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// Each test is named after a rule of the authorization server.

func TestRule_MetadataAtWellKnownWithExactIssuer(t *testing.T) {
	e := testserver.NewEnv(t)
	r := e.Get("/.well-known/oauth-authorization-server")
	if r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("metadata: %d, CORS %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	m := r.JSON(t)
	if m["issuer"] != e.Issuer {
		t.Fatalf("issuer %v, want exactly %s", m["issuer"], e.Issuer)
	}
	want := map[string]string{
		"response_types_supported":                       `["code"]`,
		"grant_types_supported":                          `["authorization_code","refresh_token","client_credentials","urn:ietf:params:oauth:grant-type:jwt-bearer"]`,
		"code_challenge_methods_supported":               `["S256"]`,
		"token_endpoint_auth_methods_supported":          `["client_secret_basic","client_secret_post","private_key_jwt","none"]`,
		"scopes_supported":                               `["user:read","entries:read","entries:write","tags:read","tags:write"]`,
		"client_id_metadata_document_supported":          `true`,
		"authorization_response_iss_parameter_supported": `true`,
	}
	for k, v := range want {
		b, _ := json.Marshal(m[k])
		if string(b) != v {
			t.Errorf("%s = %s, want %s", k, b, v)
		}
	}
	for k, path := range map[string]string{
		"authorization_endpoint": authserver.AuthorizePath, "token_endpoint": authserver.TokenPath,
		"registration_endpoint": authserver.RegistrationPath, "introspection_endpoint": authserver.IntrospectionPath,
		"revocation_endpoint": authserver.RevocationPath, "jwks_uri": authserver.JWKSPath,
	} {
		if m[k] != e.Issuer+path {
			t.Errorf("%s = %v, want %s", k, m[k], e.Issuer+path)
		}
	}
}

func TestRule_AccessTokenIsAudienceBoundJWT(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c)
	at := tok["access_token"].(string)
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %s", at)
	}
	var h, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(hb, &h)
	json.Unmarshal(cb, &claims)
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] == "" {
		t.Fatalf("header %v: want typ at+jwt, alg ES256 and a kid (RFC 9068 §2.1)", h)
	}
	if claims["iss"] != e.Issuer || claims["aud"] != e.Resource || claims["sub"] != e.User.ID ||
		claims["client_id"] != c.ID || claims["jti"] == "" || claims["scope"] != strings.Join(epicme.AllScopes, " ") {
		t.Fatalf("claims %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 900 {
		t.Fatalf("lifetime %v s, want the 15 minute default", exp-iat)
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) || tok["refresh_token"] == "" {
		t.Fatalf("token response %v", tok)
	}
	// The resource server package verifies it from the published JWKS.
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: e.Issuer, Resource: e.Resource, Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Verify(context.Background(), at)
	if err != nil {
		t.Fatalf("JWKS verification: %v", err)
	}
	if info.Subject != e.User.ID || !info.HasScopes(epicme.ScopeEntriesRead) {
		t.Fatalf("token info %+v", info)
	}
	// A token for this issuer but another resource is refused by both.
	other, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: e.Issuer, Resource: e.Issuer + "/other", Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(context.Background(), at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token for another audience must be invalid, got %v", err)
	}
}

func TestRule_SigningKeysPersistEncryptedAcrossRestart(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	at := e.Tokens(c)["access_token"].(string)
	// A new server on the same database and key-encryption key accepts the
	// token: a restart logs nobody out.
	cfg := e.Config
	srv2, err := authserver.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv2.Verifier().Verify(context.Background(), at); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// The private key is not in the database in clear: with another
	// key-encryption key it cannot be opened.
	cfg.KEK = authserver.NewKEK()
	if _, err := authserver.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "decrypted") {
		t.Fatalf("a wrong key-encryption key must be refused, got %v", err)
	}
}

func TestRule_KeyRotationPublishesBeforeUseAndKeepsOldKey(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.KeyRotation = 10 * time.Hour })
	c := e.PublicClient()
	kidOf := func(at string) string {
		hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(at, ".")[0])
		var h map[string]string
		json.Unmarshal(hb, &h)
		return h["kid"]
	}
	jwks := func() []string {
		var set struct {
			Keys []struct{ Kid string } `json:"keys"`
		}
		json.Unmarshal([]byte(e.Get(authserver.JWKSPath).Body), &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	tok := e.Tokens(c)
	first := kidOf(tok["access_token"].(string))
	if k := jwks(); len(k) != 1 || k[0] != first {
		t.Fatalf("JWKS %v, want only %s", k, first)
	}
	// Nine hours on (rotation 10 h, published one hour ahead): a second key
	// is published but does not sign yet.
	e.Clock.Advance(9*time.Hour + time.Minute)
	keys := jwks()
	if len(keys) != 2 {
		t.Fatalf("JWKS %v, want the next key published early", keys)
	}
	rt := e.Refresh(c, tok["refresh_token"].(string), nil).JSON(t)
	if kidOf(rt["access_token"].(string)) != first {
		t.Fatal("the new key signed before its activation time")
	}
	// After activation the new key signs; the old stays published until its
	// tokens expire.
	e.Clock.Advance(time.Hour)
	rt = e.Refresh(c, rt["refresh_token"].(string), nil).JSON(t)
	if kidOf(rt["access_token"].(string)) != keys[1] {
		t.Fatal("the new key does not sign after activation")
	}
	if k := jwks(); len(k) != 2 {
		t.Fatalf("the retired key left the JWKS too early: %v", k)
	}
	e.Clock.Advance(30 * time.Minute)
	if k := jwks(); len(k) != 1 || k[0] != keys[1] {
		t.Fatalf("JWKS %v, want the retired key gone after its tokens expired", k)
	}
}

func TestRule_DCRRegistersPublicAndConfidentialClients(t *testing.T) {
	e := testserver.NewEnv(t)
	r := e.Register(map[string]any{"client_name": "Editor", "redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	if r.Status != http.StatusCreated {
		t.Fatalf("public registration: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["client_id"] == "" || m["client_name"] != "Editor" || m["token_endpoint_auth_method"] != "none" {
		t.Fatalf("public registration response %v", m)
	}
	if _, ok := m["client_secret"]; ok {
		t.Fatal("a public client must not get a secret")
	}
	if _, ok := m["client_secret_expires_at"]; ok {
		t.Fatal("a public client must not get client_secret_expires_at")
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("headers %v", r.Header)
	}
	// The default method (RFC 7591 §2) is client_secret_basic: confidential.
	r = e.Register(map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	m = r.JSON(t)
	if r.Status != http.StatusCreated || len(m["client_secret"].(string)) < 40 || m["client_secret_expires_at"] != float64(0) {
		t.Fatalf("confidential registration %d %v", r.Status, m)
	}
	if strings.ContainsAny(m["client_secret"].(string)+m["client_id"].(string), "+/=%") {
		t.Fatal("client ids and secrets must be URL-safe")
	}
}

func TestRule_DCRInvalidMetadataRefused(t *testing.T) {
	e := testserver.NewEnv(t)
	for _, tc := range []struct {
		meta map[string]any
		code string
	}{
		{map[string]any{}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"http://app.example/cb"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"https://app.example/cb#frag"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"/relative"}}, "invalid_redirect_uri"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"password"}}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "response_types": []string{"token"}}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "scope": "admin"}, "invalid_client_metadata"},
	} {
		testserver.WantOAuthError(t, e.Register(tc.meta), http.StatusBadRequest, tc.code)
	}
}

func TestRule_DCRRateLimited(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.Registration.PerSource = 3 })
	meta := map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}
	for i := 0; i < 3; i++ {
		if r := e.Register(meta); r.Status != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, r.Status)
		}
	}
	r := e.Register(meta)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth registration from one source: %d %s", r.Status, r.Body)
	}
	e.Clock.Advance(time.Hour)
	if r := e.Register(meta); r.Status != http.StatusCreated {
		t.Fatalf("after the window: %d", r.Status)
	}
}

func TestRule_DCRTotalCapAndUnusedClientsExpire(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.Registration.MaxClients = 2 })
	used := e.PublicClient()
	e.Tokens(used) // completes a flow: kept
	e.PublicClient()
	r := e.Register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("registration over the cap: %d %s", r.Status, r.Body)
	}
	e.Clock.Advance(25 * time.Hour)
	if r := e.Register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}); r.Status != http.StatusCreated {
		t.Fatalf("after the unused client expired: %d %s", r.Status, r.Body)
	}
	if _, err := e.DB.ClientByID(context.Background(), used.ID); err != nil {
		t.Fatalf("a client that completed a flow must be kept: %v", err)
	}
}

func TestRule_PKCEPlainRefused(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	for name, extra := range map[string]url.Values{
		"plain":             {"code_challenge_method": {"plain"}, "code_challenge": {strings.Repeat("a", 43)}},
		"method missing":    {"code_challenge_method": nil},
		"challenge missing": {"code_challenge": nil},
		"bad challenge":     {"code_challenge": {"short"}},
	} {
		q := testserver.Location(t, b.Get(e.AuthzURL(c, ch, extra)), c.Redirect)
		if q.Get("error") != "invalid_request" || q.Get("state") != "st-123" || q.Get("iss") != e.Issuer || q.Get("code") != "" {
			t.Errorf("%s: redirect %v, want invalid_request with state and iss", name, q)
		}
	}
}

func TestRule_TokenRequestWithoutVerifierRefused(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	testserver.WantOAuthError(t, e.Exchange(c, code, "", url.Values{"code_verifier": nil}), http.StatusBadRequest, "invalid_request")
	testserver.WantOAuthError(t, e.Exchange(c, code, strings.Repeat("x", 42), nil), http.StatusBadRequest, "invalid_request")
	testserver.WantOAuthError(t, e.Exchange(c, code, strings.Repeat("x", 49)+" ", nil), http.StatusBadRequest, "invalid_request")
	testserver.WantOAuthError(t, e.Exchange(c, code, strings.Repeat("x", 50), nil), http.StatusBadRequest, "invalid_grant")
	// A wrong verifier does not burn the code.
	if r := e.Exchange(c, code, v, nil); r.Status != http.StatusOK {
		t.Fatalf("the right verifier: %d %s", r.Status, r.Body)
	}
}

func TestRule_RedirectMismatchShownNotRedirected(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	for name, extra := range map[string]url.Values{
		"other host":     {"redirect_uri": {"https://evil.example/callback"}},
		"other path":     {"redirect_uri": {"http://127.0.0.1:9999/other"}},
		"extra query":    {"redirect_uri": {"http://127.0.0.1:9999/callback?x=1"}},
		"unknown client": {"client_id": {"nobody"}},
		"missing client": {"client_id": nil},
		"twice":          {"redirect_uri": {c.Redirect, c.Redirect}},
	} {
		r := b.Get(e.AuthzURL(c, ch, extra))
		if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d Location=%q, want an HTML error page and no redirect", name, r.Status, r.Header.Get("Location"))
		}
	}
}

func TestRule_LoopbackRedirectAnyPort(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient() // registered http://127.0.0.1:9999/callback
	v, ch := testserver.PKCE()
	other := c
	other.Redirect = "http://127.0.0.1:51234/callback"
	code := e.Agent().Authorize(other, ch, nil)
	if r := e.Exchange(other, code, v, nil); r.Status != http.StatusOK {
		t.Fatalf("loopback with another port: %d %s", r.Status, r.Body)
	}
	// Only the port may differ, and only for loopback.
	r := e.Register(map[string]any{"redirect_uris": []string{"https://app.example:8443/cb"}, "token_endpoint_auth_method": "none"})
	id := r.JSON(t)["client_id"].(string)
	r = e.Agent().Get(e.AuthzURL(testserver.Client{ID: id, Redirect: "https://app.example:9443/cb"}, ch, nil))
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("a non-loopback redirect with another port must be refused on a page, got %d", r.Status)
	}
}

func TestRule_ForeignResourceRefused(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	b := e.Agent()
	q := testserver.Location(t, b.Get(e.AuthzURL(c, ch, url.Values{"resource": {"https://other.example/mcp"}})), c.Redirect)
	if q.Get("error") != "invalid_target" || q.Get("state") != "st-123" || q.Get("iss") != e.Issuer {
		t.Fatalf("foreign resource at authorize: %v", q)
	}
	// Spelling differences RFC 8707 ignores are accepted.
	code := b.Authorize(c, ch, url.Values{"resource": {strings.ToUpper(e.Issuer[:4]) + e.Issuer[4:] + "/mcp/"}})
	testserver.WantOAuthError(t, e.Exchange(c, code, v, url.Values{"resource": {"https://other.example/mcp"}}), http.StatusBadRequest, "invalid_target")
	r := e.Exchange(c, code, v, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	testserver.WantOAuthError(t, e.Refresh(c, r.JSON(t)["refresh_token"].(string), url.Values{"resource": {"https://other.example/mcp"}}), http.StatusBadRequest, "invalid_target")
}

func TestRule_ResourceDefaultsToThisServer(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, url.Values{"resource": nil})
	r := e.Exchange(c, code, v, url.Values{"resource": nil})
	if r.Status != http.StatusOK {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	if err := e.Verify(r.JSON(t)["access_token"].(string)); err != nil {
		t.Fatalf("a token issued without resource must be for this server: %v", err)
	}
}

func TestRule_OtherAuthorizeErrorsRedirectWithStateAndIss(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	for extra, code := range map[*url.Values]string{
		{"response_type": {"token"}}: "unsupported_response_type",
		{"response_type": nil}:       "invalid_request",
		{"scope": {"admin"}}:         "invalid_scope",
		{"state": {"a", "b"}}:        "invalid_request",
	} {
		q := testserver.Location(t, b.Get(e.AuthzURL(c, ch, *extra)), c.Redirect)
		if q.Get("error") != code || q.Get("iss") != e.Issuer {
			t.Errorf("%v: got %v, want error %s with iss", *extra, q, code)
		}
	}
}

func TestRule_SignInChecksStoredPasswordHash(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil))
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Test App") {
		t.Fatalf("sign-in page: %d", page.Status)
	}
	for _, bad := range [][2]string{{testserver.Email, "wrong password"}, {"nobody@example.com", testserver.Password}} {
		r := b.SignIn(page.Body, bad[0], bad[1])
		if r.Status != http.StatusUnauthorized || strings.Contains(r.Body, `name="decision"`) {
			t.Fatalf("sign-in with %v: %d", bad, r.Status)
		}
	}
	r := b.SignIn(page.Body, strings.ToUpper(testserver.Email), testserver.Password)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `name="decision"`) {
		t.Fatalf("a right password should lead to consent: %d %s", r.Status, r.Body)
	}
}

func TestRule_SignInAttemptsLimited(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	var r testserver.Reply
	for i := 0; i < 11; i++ {
		r = b.SignIn(page, testserver.Email, "guess")
	}
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("the 11th wrong password: %d", r.Status)
	}
	if r = b.SignIn(page, testserver.Email, testserver.Password); r.Status != http.StatusTooManyRequests {
		t.Fatalf("even the right password waits out the limit: %d", r.Status)
	}
	e.Clock.Advance(16 * time.Minute)
	if r = b.SignIn(page, testserver.Email, testserver.Password); r.Status != http.StatusOK {
		t.Fatalf("after the window: %d", r.Status)
	}
}

func TestRule_FormsRequireCSRFToken(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	f := testserver.FormFields(t, page)
	f.Set("csrf", "forged")
	f.Set("email", testserver.Email)
	f.Set("password", testserver.Password)
	if r := b.Post(authserver.SignInPath, f); r.Status != http.StatusForbidden {
		t.Fatalf("sign-in with a forged CSRF token: %d", r.Status)
	}
	// Another browser (no CSRF cookie) replaying a real token is refused too.
	f = testserver.FormFields(t, page)
	f.Set("email", testserver.Email)
	f.Set("password", testserver.Password)
	if r := e.Agent().Post(authserver.SignInPath, f); r.Status != http.StatusForbidden {
		t.Fatalf("a CSRF token without its cookie: %d", r.Status)
	}
	consent := b.SignIn(page, testserver.Email, testserver.Password).Body
	f = testserver.FormFields(t, consent)
	f.Set("csrf", "")
	f.Set("decision", "allow")
	if r := b.Post(authserver.ConsentPath, f); r.Status != http.StatusForbidden {
		t.Fatalf("consent without CSRF token: %d", r.Status)
	}
}

func TestRule_PagesCannotBeFramed(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	r := e.Agent().Get(e.AuthzURL(c, ch, nil))
	if r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("page headers %v", r.Header)
	}
	for _, ck := range r.Header.Values("Set-Cookie") {
		if !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
			t.Fatalf("cookie %q must be HttpOnly and SameSite=Lax", ck)
		}
	}
}

func TestRule_ConsentNamesClientRedirectHostAndScopes(t *testing.T) {
	e := testserver.NewEnv(t)
	_, page := e.ConsentPage(e.PublicClient(), url.Values{"scope": {"entries:read tags:read"}})
	for _, want := range []string{"Test App", "127.0.0.1:9999", `value="entries:read"`, `value="tags:read"`, epicme.ScopeDescriptions[epicme.ScopeEntriesRead], "not verified"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, `value="entries:write"`) {
		t.Error("consent page offers a scope that was not asked for")
	}
}

func TestRule_ConsentGrantsFewerAndIsRemembered(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	b := e.Agent()
	code := b.Authorize(c, ch, url.Values{"scope": {"entries:read entries:write"}}, "entries:read")
	r := e.Exchange(c, code, v, nil).JSON(t)
	if r["scope"] != "entries:read" {
		t.Fatalf("granted %v, want only the ticked scope", r["scope"])
	}
	cons, err := e.DB.Consent(context.Background(), e.User.ID, c.ID)
	if err != nil || cons.Scope != "entries:read" {
		t.Fatalf("recorded consent %+v, %v", cons, err)
	}
	// Asking again for what was granted skips the consent page.
	v, ch = testserver.PKCE()
	res := b.Get(e.AuthzURL(c, ch, url.Values{"scope": {"entries:read"}}))
	q := testserver.Location(t, res, c.Redirect)
	if q.Get("code") == "" {
		t.Fatalf("remembered consent should redirect with a code: %v", q)
	}
	// Asking for more shows the page again; denying sends access_denied.
	res = b.Get(e.AuthzURL(c, ch, url.Values{"scope": {"entries:read entries:write"}}))
	if res.Status != http.StatusOK || !strings.Contains(res.Body, `name="decision"`) {
		t.Fatalf("asking for more scope must show consent: %d", res.Status)
	}
	f := testserver.FormFields(t, res.Body)
	f.Set("decision", "deny")
	q = testserver.Location(t, b.Post(authserver.ConsentPath, f), c.Redirect)
	if q.Get("error") != "access_denied" || q.Get("state") != "st-123" || q.Get("iss") != e.Issuer {
		t.Fatalf("deny: %v", q)
	}
}

func TestRule_CodeSingleUse(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	if r := e.Exchange(c, code, v, nil); r.Status != http.StatusOK {
		t.Fatal(r.Body)
	}
	testserver.WantOAuthError(t, e.Exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeReplayRevokesTokens(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	tok := e.Exchange(c, code, v, nil).JSON(t)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	if err := e.Verify(at); err != nil {
		t.Fatal(err)
	}
	testserver.WantOAuthError(t, e.Exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
	if err := e.Verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("the access token from a replayed code must be revoked at once, got %v", err)
	}
	testserver.WantOAuthError(t, e.Refresh(c, rt, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeRedeemedOnceUnderConcurrency(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	const n = 8
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i] = e.Exchange(c, code, v, nil).Status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range status {
		if s == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded (%v), want exactly 1", ok, n, status)
	}
}

func TestRule_CodeExpiresWithinTenMinutes(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.CodeTTL = time.Hour })
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	e.Clock.Advance(10*time.Minute + time.Second)
	testserver.WantOAuthError(t, e.Exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeBoundToClientAndRedirect(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	other := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	stolen := other
	stolen.Redirect = c.Redirect
	testserver.WantOAuthError(t, e.Exchange(stolen, code, v, nil), http.StatusBadRequest, "invalid_grant")
	testserver.WantOAuthError(t, e.Exchange(c, code, v, url.Values{"redirect_uri": {"http://127.0.0.1:9999/other"}}), http.StatusBadRequest, "invalid_grant")
	testserver.WantOAuthError(t, e.Exchange(c, code, v, url.Values{"redirect_uri": nil}), http.StatusBadRequest, "invalid_grant")
	testserver.WantOAuthError(t, e.Exchange(c, code, v, url.Values{"scope": {"tags:write admin"}}), http.StatusBadRequest, "invalid_scope")
	if r := e.Exchange(c, code, v, nil); r.Status != http.StatusOK {
		t.Fatalf("the bound request: %d %s", r.Status, r.Body)
	}
}

func TestRule_RefreshRotates(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c)
	r := e.Refresh(c, tok["refresh_token"].(string), nil)
	if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refresh: %d %v", r.Status, r.Header)
	}
	next := r.JSON(t)
	if next["refresh_token"] == tok["refresh_token"] || next["refresh_token"] == "" {
		t.Fatal("the refresh token must rotate")
	}
	if err := e.Verify(next["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
}

func TestRule_RefreshReuseRevokesFamily(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c)
	old := tok["refresh_token"].(string)
	next := e.Refresh(c, old, nil).JSON(t)
	e.Clock.Advance(3 * time.Second) // past the grace for concurrent refreshes
	testserver.WantOAuthError(t, e.Refresh(c, old, nil), http.StatusBadRequest, "invalid_grant")
	// The whole family is gone: the newest refresh token and every access
	// token issued from the family.
	testserver.WantOAuthError(t, e.Refresh(c, next["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
	for _, at := range []string{tok["access_token"].(string), next["access_token"].(string)} {
		if err := e.Verify(at); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("an access token of a revoked family still verifies: %v", err)
		}
	}
}

func TestRule_RefreshGraceForConcurrentRefresh(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	old := e.Tokens(c)["refresh_token"].(string)
	a := e.Refresh(c, old, nil)
	b := e.Refresh(c, old, nil) // the same client, a moment later
	if a.Status != http.StatusOK || b.Status != http.StatusOK {
		t.Fatalf("concurrent refreshes within the grace: %d, %d", a.Status, b.Status)
	}
	if r := e.Refresh(c, b.JSON(t)["refresh_token"].(string), nil); r.Status != http.StatusOK {
		t.Fatalf("the family must survive: %d %s", r.Status, r.Body)
	}
}

func TestRule_RefreshCannotWidenScope(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c, "entries:read", "tags:read")
	rt := tok["refresh_token"].(string)
	testserver.WantOAuthError(t, e.Refresh(c, rt, url.Values{"scope": {"entries:read entries:write"}}), http.StatusBadRequest, "invalid_scope")
	narrow := e.Refresh(c, rt, url.Values{"scope": {"tags:read"}}).JSON(t)
	if narrow["scope"] != "tags:read" {
		t.Fatalf("narrowed scope %v", narrow["scope"])
	}
	info, err := e.Server.Verifier().Verify(context.Background(), narrow["access_token"].(string))
	if err != nil || strings.Join(info.Scopes, " ") != "tags:read" {
		t.Fatalf("narrowed token %+v, %v", info, err)
	}
	// Narrowing one access token does not shrink the grant.
	full := e.Refresh(c, narrow["refresh_token"].(string), nil).JSON(t)
	if full["scope"] != "entries:read tags:read" {
		t.Fatalf("scope after a narrowed refresh %v", full["scope"])
	}
}

func TestRule_RefreshExpiresAfterInactivity(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	rt := e.Tokens(c)["refresh_token"].(string)
	e.Clock.Advance(29 * 24 * time.Hour)
	next := e.Refresh(c, rt, nil).JSON(t)["refresh_token"].(string)
	e.Clock.Advance(29 * 24 * time.Hour) // active use keeps it alive
	next = e.Refresh(c, next, nil).JSON(t)["refresh_token"].(string)
	e.Clock.Advance(31 * 24 * time.Hour)
	testserver.WantOAuthError(t, e.Refresh(c, next, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_ClientAuthenticationMethods(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.ConfidentialClient()
	// client_secret_basic
	tok := e.Tokens(c)
	// client_secret_post
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {c.ID}, "client_secret": {c.Secret}}
	r := e.PostForm(authserver.TokenPath, f, "", "")
	if r.Status != http.StatusOK {
		t.Fatalf("client_secret_post: %d %s", r.Status, r.Body)
	}
	rt := r.JSON(t)["refresh_token"].(string)
	// A wrong secret over Basic: 401 with a Basic challenge.
	bad := e.PostForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, c.ID, "wrong")
	testserver.WantOAuthError(t, bad, http.StatusUnauthorized, "invalid_client")
	if !strings.HasPrefix(bad.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("invalid_client after Basic needs a Basic challenge: %v", bad.Header)
	}
	// A confidential client cannot act as public.
	r = e.PostForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
	testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	if r.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("no Basic challenge when Basic was not tried")
	}
	// Two methods at once.
	r = e.PostForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_secret": {c.Secret}}, c.ID, c.Secret)
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	// A public client presenting a secret.
	p := e.PublicClient()
	r = e.PostForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, p.ID, "secret")
	testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	// Unknown client.
	r = e.PostForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"nobody"}}, "", "")
	testserver.WantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
}

func TestRule_TokenEndpointErrors(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	for _, tc := range []struct {
		form   url.Values
		status int
		code   string
	}{
		{url.Values{"grant_type": {"password"}, "client_id": {c.ID}}, 400, "unsupported_grant_type"},
		{url.Values{"client_id": {c.ID}}, 400, "invalid_request"},
		{url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_request"},
		{url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code": {"nope"}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {"nope"}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"refresh_token", "refresh_token"}, "client_id": {c.ID}}, 400, "invalid_request"},
	} {
		r := e.PostForm(authserver.TokenPath, tc.form, "", "")
		testserver.WantOAuthError(t, r, tc.status, tc.code)
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("error response headers %v", r.Header)
		}
		if _, ok := r.JSON(t)["error_description"]; !ok {
			t.Errorf("error without description: %s", r.Body)
		}
	}
	// JSON bodies are not the token endpoint's format.
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.TokenPath, strings.NewReader(`{"grant_type":"refresh_token"}`))
	req.Header.Set("Content-Type", "application/json")
	testserver.WantOAuthError(t, testserver.Do(t, nil, req), 400, "invalid_request")
}

func TestRule_CORSOnBrowserFacingEndpoints(t *testing.T) {
	e := testserver.NewEnv(t)
	for _, p := range []string{authserver.TokenPath, authserver.RegistrationPath, authserver.RevocationPath, authserver.MetadataPath, authserver.JWKSPath} {
		req, _ := http.NewRequest(http.MethodOptions, e.Issuer+p, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		r := testserver.Do(t, nil, req)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Errorf("%s preflight: %d %v", p, r.Status, r.Header)
		}
	}
}

func TestRule_TokensAndCodesStoredHashed(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.ConfidentialClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, nil)
	tok := e.Exchange(c, code, v, nil).JSON(t)
	secrets := []string{code, tok["refresh_token"].(string), tok["access_token"].(string), c.Secret}
	e.DB.Close()
	dir := filepath.Dir(e.DB.Path())
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Fatalf("%s holds a token, code or secret in clear", filepath.Base(f))
			}
		}
	}
}

func TestRule_IntrospectionRefusedToNonResourceClient(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.ConfidentialClient()
	at := e.Tokens(c)["access_token"].(string)
	r := e.PostForm(authserver.IntrospectionPath, url.Values{"token": {at}}, c.ID, c.Secret)
	if r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"active":false}` {
		t.Fatalf("introspection by a non-resource client: %d %s", r.Status, r.Body)
	}
	// Unauthenticated, or a public client: 401.
	testserver.WantOAuthError(t, e.PostForm(authserver.IntrospectionPath, url.Values{"token": {at}}, "", ""), http.StatusUnauthorized, "invalid_client")
	p := e.PublicClient()
	testserver.WantOAuthError(t, e.PostForm(authserver.IntrospectionPath, url.Values{"token": {at}, "client_id": {p.ID}}, "", ""), http.StatusUnauthorized, "invalid_client")
	testserver.WantOAuthError(t, e.PostForm(authserver.IntrospectionPath, url.Values{"token": {at}}, c.ID, "wrong"), http.StatusUnauthorized, "invalid_client")
}

func resourceServerClient(e *testserver.Env, resource string) testserver.Client {
	e.TB.Helper()
	rs, secret, err := authserver.AddClient(context.Background(), e.DB, e.Config.KEK, authserver.NewClient{Name: "MCP", ResourceServer: true, Resource: resource}, e.Clock.Now())
	if err != nil {
		e.TB.Fatal(err)
	}
	return testserver.Client{ID: rs.ID, Secret: secret}
}

func TestRule_IntrospectionOnlyAboutTokensForTheResourceServer(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c)
	at := tok["access_token"].(string)
	rs := resourceServerClient(e, e.Resource)
	r := e.PostForm(authserver.IntrospectionPath, url.Values{"token": {at}}, rs.ID, rs.Secret)
	m := r.JSON(t)
	if m["active"] != true || m["sub"] != e.User.ID || m["aud"] != e.Resource || m["client_id"] != c.ID || m["iss"] != e.Issuer || m["scope"] == "" {
		t.Fatalf("introspection: %s", r.Body)
	}
	// Its own introspection verifier in the auth package agrees.
	v, err := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{Endpoint: e.Issuer + authserver.IntrospectionPath, ClientID: rs.ID, ClientSecret: rs.Secret, Resource: e.Resource, Issuer: e.Issuer, Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatalf("auth.IntrospectionVerifier: %v", err)
	}
	inactive := func(token string, who testserver.Client) {
		t.Helper()
		r := e.PostForm(authserver.IntrospectionPath, url.Values{"token": {token}}, who.ID, who.Secret)
		if r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"active":false}` {
			t.Fatalf("want only {\"active\":false}, got %d %s", r.Status, r.Body)
		}
	}
	inactive(at, resourceServerClient(e, "https://other.example/mcp")) // not its audience
	inactive(tok["refresh_token"].(string), rs)                        // not an access token
	inactive("garbage", rs)
	e.Clock.Advance(16 * time.Minute)
	inactive(at, rs) // expired
}

func TestRule_RevocationAnswersAndRevokes(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.ConfidentialClient()
	tok := e.Tokens(c)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	revoke := func(token, hint, id, secret string) testserver.Reply {
		f := url.Values{"token": {token}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return e.PostForm(authserver.RevocationPath, f, id, secret)
	}
	if r := revoke("unknown-token", "", c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatalf("unknown token: %d", r.Status)
	}
	testserver.WantOAuthError(t, revoke(at, "", c.ID, "wrong"), http.StatusUnauthorized, "invalid_client")
	testserver.WantOAuthError(t, revoke(at, "id_token", c.ID, c.Secret), http.StatusBadRequest, "unsupported_token_type")
	// Another client's revocation of our token changes nothing.
	other := e.ConfidentialClient()
	if r := revoke(rt, "", other.ID, other.Secret); r.Status != http.StatusOK {
		t.Fatalf("foreign token: %d", r.Status)
	}
	if err := e.Verify(at); err != nil {
		t.Fatalf("another client revoked our token: %v", err)
	}
	// Revoking an access token takes effect at once in process.
	if r := revoke(at, "access_token", c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatal(r.Body)
	}
	if err := e.Verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked access token still verifies: %v", err)
	}
	// Revoking the refresh token ends the family.
	next := e.Refresh(c, rt, nil).JSON(t)
	if r := revoke(next["refresh_token"].(string), "refresh_token", c.ID, c.Secret); r.Status != http.StatusOK {
		t.Fatal(r.Body)
	}
	if err := e.Verify(next["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("an access token of a revoked refresh token still verifies: %v", err)
	}
	testserver.WantOAuthError(t, e.Refresh(c, next["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_InProcessVerifierChecksAudienceExpiryAndRevocation(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	at := e.Tokens(c)["access_token"].(string)
	info, err := e.Server.Verifier().Verify(context.Background(), at)
	if err != nil || info.Issuer != e.Issuer || info.Subject != e.User.ID || info.ClientID != c.ID || !info.HasScopes(epicme.AllScopes...) {
		t.Fatalf("verify: %+v, %v", info, err)
	}
	// The same keys serving another resource: that server refuses the token.
	cfg := e.Config
	cfg.Resource = e.Issuer + "/other"
	other, err := authserver.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verifier().Verify(context.Background(), at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("wrong audience: %v", err)
	}
	// A tampered token.
	parts := strings.Split(at, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"someone"}`)) + "." + parts[2]
	if err := e.Verify(tampered); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("tampered: %v", err)
	}
	// Revocation by another process sharing the database (the CLI removing
	// the client) reaches this one within its sync interval.
	if err := e.DB.DeleteClient(context.Background(), c.ID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Second)
	if err := e.Verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("token of a removed client: %v", err)
	}
	e.Clock.Advance(15 * time.Minute)
	if err := e.Verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("expired: %v", err)
	}
}

func TestRule_UserSeesAndRevokesConnectedApps(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	b := e.Agent()
	tok := e.Exchange(c, b.Authorize(c, ch, nil), v, nil).JSON(t)
	page := b.Get(e.Issuer + authserver.AppsPath)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Test App") || !strings.Contains(page.Body, c.ID) {
		t.Fatalf("connected apps page: %d\n%s", page.Status, page.Body)
	}
	f := url.Values{"csrf": {html.UnescapeString(testserver.CSRFField.FindStringSubmatch(page.Body)[1])}, "client_id": {c.ID}}
	r := b.Post(authserver.AppsRevokePath, f)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "revoked") || strings.Contains(r.Body, c.ID) {
		t.Fatalf("after revoking: %d\n%s", r.Status, r.Body)
	}
	if err := e.Verify(tok["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("the revoked app's access token still verifies: %v", err)
	}
	testserver.WantOAuthError(t, e.Refresh(c, tok["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
	// The next authorization asks for consent again.
	if r := b.Get(e.AuthzURL(c, ch, nil)); !strings.Contains(r.Body, `name="decision"`) {
		t.Fatalf("consent was not withdrawn: %d", r.Status)
	}
	// Without the CSRF token nothing is revoked.
	if r := b.Post(authserver.AppsRevokePath, url.Values{"client_id": {c.ID}}); r.Status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", r.Status)
	}
}

func TestRule_ConnectedAppsPageNeedsSignIn(t *testing.T) {
	e := testserver.NewEnv(t)
	b := e.Agent()
	page := b.Get(e.Issuer + authserver.AppsPath)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `name="password"`) {
		t.Fatalf("apps page without a session: %d", page.Status)
	}
	r := b.SignIn(page.Body, testserver.Email, testserver.Password) // follows the 303 back
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "No application") || !strings.Contains(r.Body, testserver.Email) {
		t.Fatalf("after sign-in: %d\n%s", r.Status, r.Body)
	}
}

func TestRule_PromptNoneAndLogin(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	q := testserver.Location(t, b.Get(e.AuthzURL(c, ch, url.Values{"prompt": {"none"}})), c.Redirect)
	if q.Get("error") != "login_required" || q.Get("iss") != e.Issuer {
		t.Fatalf("prompt=none without a session: %v", q)
	}
	b.Authorize(c, ch, nil) // signs in and consents
	if q := testserver.Location(t, b.Get(e.AuthzURL(c, ch, url.Values{"prompt": {"none"}})), c.Redirect); q.Get("code") == "" {
		t.Fatalf("prompt=none with a session and consent: %v", q)
	}
	if r := b.Get(e.AuthzURL(c, ch, url.Values{"prompt": {"login"}})); r.Status != http.StatusOK || !strings.Contains(r.Body, `name="password"`) {
		t.Fatalf("prompt=login must ask for the password again: %d", r.Status)
	}
	if r := b.Get(e.AuthzURL(c, ch, url.Values{"prompt": {"consent"}})); !strings.Contains(r.Body, `name="decision"`) {
		t.Fatalf("prompt=consent must show the consent page: %d", r.Status)
	}
}

func TestRule_HostPrefixedSecureCookiesOverHTTPS(t *testing.T) {
	e := testserver.NewEnv(t)
	var handler http.Handler
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer ts.Close()
	cfg := e.Config
	cfg.Issuer, cfg.Resource = ts.URL, ts.URL+"/mcp"
	srv, err := authserver.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler = srv.Handler()
	c := e.PublicClient() // the same database: the client is known to both
	_, ch := testserver.PKCE()
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.Redirect}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
	resp, err := ts.Client().Get(ts.URL + authserver.AuthorizePath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) == 0 {
		t.Fatal("no cookie set")
	}
	for _, ck := range cookies {
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteLaxMode {
			t.Fatalf("cookie %+v must be __Host-, Secure, HttpOnly, SameSite=Lax, Path=/ and host-only", ck)
		}
	}
}

func TestRule_PlainHTTPOnlyForLoopbackDevelopment(t *testing.T) {
	e := testserver.NewEnv(t)
	for _, issuer := range []string{"http://journal.example.com", "http://192.0.2.10:8080", "https://journal.example.com/path", "ftp://journal.example.com"} {
		cfg := e.Config
		cfg.Issuer = issuer
		if _, err := authserver.New(context.Background(), cfg); err == nil {
			t.Errorf("issuer %s accepted", issuer)
		}
	}
	for _, issuer := range []string{"https://journal.example.com", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		cfg := e.Config
		cfg.Issuer = issuer
		if _, err := authserver.New(context.Background(), cfg); err != nil {
			t.Errorf("issuer %s refused: %v", issuer, err)
		}
	}
}

func TestRule_DCRRateLimitedPerSourceBehindProxy(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.Registration.PerSource = 2
		c.SourceAddress = authserver.ForwardedFor
	})
	register := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.RegistrationPath,
			strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		return testserver.Do(t, nil, req).Status
	}
	// Only the address the proxy appended counts; what the client put
	// before it does not.
	for _, xff := range []string{"198.51.100.1", "203.0.113.9, 198.51.100.1"} {
		if s := register(xff); s != http.StatusCreated {
			t.Fatalf("%s: %d", xff, s)
		}
	}
	if s := register("192.0.2.77, 198.51.100.1"); s != http.StatusTooManyRequests {
		t.Fatalf("third registration of one source: %d", s)
	}
	if s := register("198.51.100.2"); s != http.StatusCreated {
		t.Fatalf("another source: %d", s)
	}
}
