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
)

// Each test is named after a rule of the authorization server.

func TestRule_MetadataAtWellKnownWithExactIssuer(t *testing.T) {
	e := newEnv(t)
	r := e.get("/.well-known/oauth-authorization-server")
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("metadata: %d, CORS %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
	m := r.json(t)
	if m["issuer"] != e.issuer {
		t.Fatalf("issuer %v, want exactly %s", m["issuer"], e.issuer)
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
		if m[k] != e.issuer+path {
			t.Errorf("%s = %v, want %s", k, m[k], e.issuer+path)
		}
	}
}

func TestRule_AccessTokenIsAudienceBoundJWT(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c)
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
	if claims["iss"] != e.issuer || claims["aud"] != e.resource || claims["sub"] != e.user.ID ||
		claims["client_id"] != c.id || claims["jti"] == "" || claims["scope"] != strings.Join(epicme.AllScopes, " ") {
		t.Fatalf("claims %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 900 {
		t.Fatalf("lifetime %v s, want the 15 minute default", exp-iat)
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(900) || tok["refresh_token"] == "" {
		t.Fatalf("token response %v", tok)
	}
	// The resource server package verifies it from the published JWKS.
	v, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: e.issuer, Resource: e.resource, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	info, err := v.Verify(context.Background(), at)
	if err != nil {
		t.Fatalf("JWKS verification: %v", err)
	}
	if info.Subject != e.user.ID || !info.HasScopes(epicme.ScopeEntriesRead) {
		t.Fatalf("token info %+v", info)
	}
	// A token for this issuer but another resource is refused by both.
	other, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: e.issuer, Resource: e.issuer + "/other", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(context.Background(), at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token for another audience must be invalid, got %v", err)
	}
}

func TestRule_SigningKeysPersistEncryptedAcrossRestart(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	at := e.tokens(c)["access_token"].(string)
	// A new server on the same database and key-encryption key accepts the
	// token: a restart logs nobody out.
	cfg := e.cfg
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
	e := newEnv(t, func(c *authserver.Config) { c.KeyRotation = 10 * time.Hour })
	c := e.publicClient()
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
		json.Unmarshal([]byte(e.get(authserver.JWKSPath).body), &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	tok := e.tokens(c)
	first := kidOf(tok["access_token"].(string))
	if k := jwks(); len(k) != 1 || k[0] != first {
		t.Fatalf("JWKS %v, want only %s", k, first)
	}
	// Nine hours on (rotation 10 h, published one hour ahead): a second key
	// is published but does not sign yet.
	e.clock.Advance(9*time.Hour + time.Minute)
	keys := jwks()
	if len(keys) != 2 {
		t.Fatalf("JWKS %v, want the next key published early", keys)
	}
	rt := e.refresh(c, tok["refresh_token"].(string), nil).json(t)
	if kidOf(rt["access_token"].(string)) != first {
		t.Fatal("the new key signed before its activation time")
	}
	// After activation the new key signs; the old stays published until its
	// tokens expire.
	e.clock.Advance(time.Hour)
	rt = e.refresh(c, rt["refresh_token"].(string), nil).json(t)
	if kidOf(rt["access_token"].(string)) != keys[1] {
		t.Fatal("the new key does not sign after activation")
	}
	if k := jwks(); len(k) != 2 {
		t.Fatalf("the retired key left the JWKS too early: %v", k)
	}
	e.clock.Advance(30 * time.Minute)
	if k := jwks(); len(k) != 1 || k[0] != keys[1] {
		t.Fatalf("JWKS %v, want the retired key gone after its tokens expired", k)
	}
}

func TestRule_DCRRegistersPublicAndConfidentialClients(t *testing.T) {
	e := newEnv(t)
	r := e.register(map[string]any{"client_name": "Editor", "redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	if r.status != http.StatusCreated {
		t.Fatalf("public registration: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["client_id"] == "" || m["client_name"] != "Editor" || m["token_endpoint_auth_method"] != "none" {
		t.Fatalf("public registration response %v", m)
	}
	if _, ok := m["client_secret"]; ok {
		t.Fatal("a public client must not get a secret")
	}
	if _, ok := m["client_secret_expires_at"]; ok {
		t.Fatal("a public client must not get client_secret_expires_at")
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("headers %v", r.header)
	}
	// The default method (RFC 7591 §2) is client_secret_basic: confidential.
	r = e.register(map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	m = r.json(t)
	if r.status != http.StatusCreated || len(m["client_secret"].(string)) < 40 || m["client_secret_expires_at"] != float64(0) {
		t.Fatalf("confidential registration %d %v", r.status, m)
	}
	if strings.ContainsAny(m["client_secret"].(string)+m["client_id"].(string), "+/=%") {
		t.Fatal("client ids and secrets must be URL-safe")
	}
}

func TestRule_DCRInvalidMetadataRefused(t *testing.T) {
	e := newEnv(t)
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
		wantOAuthError(t, e.register(tc.meta), http.StatusBadRequest, tc.code)
	}
}

func TestRule_DCRRateLimited(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.Registration.PerSource = 3 })
	meta := map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}
	for i := 0; i < 3; i++ {
		if r := e.register(meta); r.status != http.StatusCreated {
			t.Fatalf("registration %d: %d", i, r.status)
		}
	}
	r := e.register(meta)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth registration from one source: %d %s", r.status, r.body)
	}
	e.clock.Advance(time.Hour)
	if r := e.register(meta); r.status != http.StatusCreated {
		t.Fatalf("after the window: %d", r.status)
	}
}

func TestRule_DCRTotalCapAndUnusedClientsExpire(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.Registration.MaxClients = 2 })
	used := e.publicClient()
	e.tokens(used) // completes a flow: kept
	e.publicClient()
	r := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("registration over the cap: %d %s", r.status, r.body)
	}
	e.clock.Advance(25 * time.Hour)
	if r := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"}); r.status != http.StatusCreated {
		t.Fatalf("after the unused client expired: %d %s", r.status, r.body)
	}
	if _, err := e.db.ClientByID(context.Background(), used.id); err != nil {
		t.Fatalf("a client that completed a flow must be kept: %v", err)
	}
}

func TestRule_PKCEPlainRefused(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	for name, extra := range map[string]url.Values{
		"plain":             {"code_challenge_method": {"plain"}, "code_challenge": {strings.Repeat("a", 43)}},
		"method missing":    {"code_challenge_method": nil},
		"challenge missing": {"code_challenge": nil},
		"bad challenge":     {"code_challenge": {"short"}},
	} {
		q := location(t, b.get(e.authzURL(c, ch, extra)), c.redirect)
		if q.Get("error") != "invalid_request" || q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("code") != "" {
			t.Errorf("%s: redirect %v, want invalid_request with state and iss", name, q)
		}
	}
}

func TestRule_TokenRequestWithoutVerifierRefused(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	wantOAuthError(t, e.exchange(c, code, "", url.Values{"code_verifier": nil}), http.StatusBadRequest, "invalid_request")
	wantOAuthError(t, e.exchange(c, code, strings.Repeat("x", 42), nil), http.StatusBadRequest, "invalid_request")
	wantOAuthError(t, e.exchange(c, code, strings.Repeat("x", 49)+" ", nil), http.StatusBadRequest, "invalid_request")
	wantOAuthError(t, e.exchange(c, code, strings.Repeat("x", 50), nil), http.StatusBadRequest, "invalid_grant")
	// A wrong verifier does not burn the code.
	if r := e.exchange(c, code, v, nil); r.status != http.StatusOK {
		t.Fatalf("the right verifier: %d %s", r.status, r.body)
	}
}

func TestRule_RedirectMismatchShownNotRedirected(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	for name, extra := range map[string]url.Values{
		"other host":     {"redirect_uri": {"https://evil.example/callback"}},
		"other path":     {"redirect_uri": {"http://127.0.0.1:9999/other"}},
		"extra query":    {"redirect_uri": {"http://127.0.0.1:9999/callback?x=1"}},
		"unknown client": {"client_id": {"nobody"}},
		"missing client": {"client_id": nil},
		"twice":          {"redirect_uri": {c.redirect, c.redirect}},
	} {
		r := b.get(e.authzURL(c, ch, extra))
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d Location=%q, want an HTML error page and no redirect", name, r.status, r.header.Get("Location"))
		}
	}
}

func TestRule_LoopbackRedirectAnyPort(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient() // registered http://127.0.0.1:9999/callback
	v, ch := pkce()
	other := c
	other.redirect = "http://127.0.0.1:51234/callback"
	code := e.browser().authorize(other, ch, nil)
	if r := e.exchange(other, code, v, nil); r.status != http.StatusOK {
		t.Fatalf("loopback with another port: %d %s", r.status, r.body)
	}
	// Only the port may differ, and only for loopback.
	r := e.register(map[string]any{"redirect_uris": []string{"https://app.example:8443/cb"}, "token_endpoint_auth_method": "none"})
	id := r.json(t)["client_id"].(string)
	r = e.browser().get(e.authzURL(testClient{id: id, redirect: "https://app.example:9443/cb"}, ch, nil))
	if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
		t.Fatalf("a non-loopback redirect with another port must be refused on a page, got %d", r.status)
	}
}

func TestRule_ForeignResourceRefused(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	b := e.browser()
	q := location(t, b.get(e.authzURL(c, ch, url.Values{"resource": {"https://other.example/mcp"}})), c.redirect)
	if q.Get("error") != "invalid_target" || q.Get("state") != "st-123" || q.Get("iss") != e.issuer {
		t.Fatalf("foreign resource at authorize: %v", q)
	}
	// Spelling differences RFC 8707 ignores are accepted.
	code := b.authorize(c, ch, url.Values{"resource": {strings.ToUpper(e.issuer[:4]) + e.issuer[4:] + "/mcp/"}})
	wantOAuthError(t, e.exchange(c, code, v, url.Values{"resource": {"https://other.example/mcp"}}), http.StatusBadRequest, "invalid_target")
	r := e.exchange(c, code, v, nil)
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	wantOAuthError(t, e.refresh(c, r.json(t)["refresh_token"].(string), url.Values{"resource": {"https://other.example/mcp"}}), http.StatusBadRequest, "invalid_target")
}

func TestRule_ResourceDefaultsToThisServer(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, url.Values{"resource": nil})
	r := e.exchange(c, code, v, url.Values{"resource": nil})
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	if err := e.verify(r.json(t)["access_token"].(string)); err != nil {
		t.Fatalf("a token issued without resource must be for this server: %v", err)
	}
}

func TestRule_OtherAuthorizeErrorsRedirectWithStateAndIss(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	for extra, code := range map[*url.Values]string{
		{"response_type": {"token"}}: "unsupported_response_type",
		{"response_type": nil}:       "invalid_request",
		{"scope": {"admin"}}:         "invalid_scope",
		{"state": {"a", "b"}}:        "invalid_request",
	} {
		q := location(t, b.get(e.authzURL(c, ch, *extra)), c.redirect)
		if q.Get("error") != code || q.Get("iss") != e.issuer {
			t.Errorf("%v: got %v, want error %s with iss", *extra, q, code)
		}
	}
}

func TestRule_SignInChecksStoredPasswordHash(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil))
	if page.status != http.StatusOK || !strings.Contains(page.body, "Test App") {
		t.Fatalf("sign-in page: %d", page.status)
	}
	for _, bad := range [][2]string{{testEmail, "wrong password"}, {"nobody@example.com", testPassword}} {
		r := b.signIn(page.body, bad[0], bad[1])
		if r.status != http.StatusUnauthorized || strings.Contains(r.body, `name="decision"`) {
			t.Fatalf("sign-in with %v: %d", bad, r.status)
		}
	}
	r := b.signIn(page.body, strings.ToUpper(testEmail), testPassword)
	if r.status != http.StatusOK || !strings.Contains(r.body, `name="decision"`) {
		t.Fatalf("a right password should lead to consent: %d %s", r.status, r.body)
	}
}

func TestRule_SignInAttemptsLimited(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	var r reply
	for i := 0; i < 11; i++ {
		r = b.signIn(page, testEmail, "guess")
	}
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("the 11th wrong password: %d", r.status)
	}
	if r = b.signIn(page, testEmail, testPassword); r.status != http.StatusTooManyRequests {
		t.Fatalf("even the right password waits out the limit: %d", r.status)
	}
	e.clock.Advance(16 * time.Minute)
	if r = b.signIn(page, testEmail, testPassword); r.status != http.StatusOK {
		t.Fatalf("after the window: %d", r.status)
	}
}

func TestRule_FormsRequireCSRFToken(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	f := formFields(t, page)
	f.Set("csrf", "forged")
	f.Set("email", testEmail)
	f.Set("password", testPassword)
	if r := b.post(authserver.SignInPath, f); r.status != http.StatusForbidden {
		t.Fatalf("sign-in with a forged CSRF token: %d", r.status)
	}
	// Another browser (no CSRF cookie) replaying a real token is refused too.
	f = formFields(t, page)
	f.Set("email", testEmail)
	f.Set("password", testPassword)
	if r := e.browser().post(authserver.SignInPath, f); r.status != http.StatusForbidden {
		t.Fatalf("a CSRF token without its cookie: %d", r.status)
	}
	consent := b.signIn(page, testEmail, testPassword).body
	f = formFields(t, consent)
	f.Set("csrf", "")
	f.Set("decision", "allow")
	if r := b.post(authserver.ConsentPath, f); r.status != http.StatusForbidden {
		t.Fatalf("consent without CSRF token: %d", r.status)
	}
}

func TestRule_PagesCannotBeFramed(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	r := e.browser().get(e.authzURL(c, ch, nil))
	if r.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		r.header.Get("Cache-Control") != "no-store" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("page headers %v", r.header)
	}
	for _, ck := range r.header.Values("Set-Cookie") {
		if !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
			t.Fatalf("cookie %q must be HttpOnly and SameSite=Lax", ck)
		}
	}
}

func TestRule_ConsentNamesClientRedirectHostAndScopes(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.signIn(b.get(e.authzURL(c, ch, url.Values{"scope": {"entries:read tags:read"}})).body, testEmail, testPassword).body
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
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	b := e.browser()
	code := b.authorize(c, ch, url.Values{"scope": {"entries:read entries:write"}}, "entries:read")
	r := e.exchange(c, code, v, nil).json(t)
	if r["scope"] != "entries:read" {
		t.Fatalf("granted %v, want only the ticked scope", r["scope"])
	}
	cons, err := e.db.Consent(context.Background(), e.user.ID, c.id)
	if err != nil || cons.Scope != "entries:read" {
		t.Fatalf("recorded consent %+v, %v", cons, err)
	}
	// Asking again for what was granted skips the consent page.
	v, ch = pkce()
	res := b.get(e.authzURL(c, ch, url.Values{"scope": {"entries:read"}}))
	q := location(t, res, c.redirect)
	if q.Get("code") == "" {
		t.Fatalf("remembered consent should redirect with a code: %v", q)
	}
	// Asking for more shows the page again; denying sends access_denied.
	res = b.get(e.authzURL(c, ch, url.Values{"scope": {"entries:read entries:write"}}))
	if res.status != http.StatusOK || !strings.Contains(res.body, `name="decision"`) {
		t.Fatalf("asking for more scope must show consent: %d", res.status)
	}
	f := formFields(t, res.body)
	f.Set("decision", "deny")
	q = location(t, b.post(authserver.ConsentPath, f), c.redirect)
	if q.Get("error") != "access_denied" || q.Get("state") != "st-123" || q.Get("iss") != e.issuer {
		t.Fatalf("deny: %v", q)
	}
}

func TestRule_CodeSingleUse(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	if r := e.exchange(c, code, v, nil); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	wantOAuthError(t, e.exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeReplayRevokesTokens(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	tok := e.exchange(c, code, v, nil).json(t)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	if err := e.verify(at); err != nil {
		t.Fatal(err)
	}
	wantOAuthError(t, e.exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
	if err := e.verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("the access token from a replayed code must be revoked at once, got %v", err)
	}
	wantOAuthError(t, e.refresh(c, rt, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeRedeemedOnceUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	const n = 8
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i] = e.exchange(c, code, v, nil).status
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
	e := newEnv(t, func(c *authserver.Config) { c.CodeTTL = time.Hour })
	c := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	e.clock.Advance(10*time.Minute + time.Second)
	wantOAuthError(t, e.exchange(c, code, v, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_CodeBoundToClientAndRedirect(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	other := e.publicClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	stolen := other
	stolen.redirect = c.redirect
	wantOAuthError(t, e.exchange(stolen, code, v, nil), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.exchange(c, code, v, url.Values{"redirect_uri": {"http://127.0.0.1:9999/other"}}), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.exchange(c, code, v, url.Values{"redirect_uri": nil}), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.exchange(c, code, v, url.Values{"scope": {"tags:write admin"}}), http.StatusBadRequest, "invalid_scope")
	if r := e.exchange(c, code, v, nil); r.status != http.StatusOK {
		t.Fatalf("the bound request: %d %s", r.status, r.body)
	}
}

func TestRule_RefreshRotates(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c)
	r := e.refresh(c, tok["refresh_token"].(string), nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refresh: %d %v", r.status, r.header)
	}
	next := r.json(t)
	if next["refresh_token"] == tok["refresh_token"] || next["refresh_token"] == "" {
		t.Fatal("the refresh token must rotate")
	}
	if err := e.verify(next["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
}

func TestRule_RefreshReuseRevokesFamily(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c)
	old := tok["refresh_token"].(string)
	next := e.refresh(c, old, nil).json(t)
	e.clock.Advance(3 * time.Second) // past the grace for concurrent refreshes
	wantOAuthError(t, e.refresh(c, old, nil), http.StatusBadRequest, "invalid_grant")
	// The whole family is gone: the newest refresh token and every access
	// token issued from the family.
	wantOAuthError(t, e.refresh(c, next["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
	for _, at := range []string{tok["access_token"].(string), next["access_token"].(string)} {
		if err := e.verify(at); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("an access token of a revoked family still verifies: %v", err)
		}
	}
}

func TestRule_RefreshGraceForConcurrentRefresh(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	old := e.tokens(c)["refresh_token"].(string)
	a := e.refresh(c, old, nil)
	b := e.refresh(c, old, nil) // the same client, a moment later
	if a.status != http.StatusOK || b.status != http.StatusOK {
		t.Fatalf("concurrent refreshes within the grace: %d, %d", a.status, b.status)
	}
	if r := e.refresh(c, b.json(t)["refresh_token"].(string), nil); r.status != http.StatusOK {
		t.Fatalf("the family must survive: %d %s", r.status, r.body)
	}
}

func TestRule_RefreshCannotWidenScope(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c, "entries:read", "tags:read")
	rt := tok["refresh_token"].(string)
	wantOAuthError(t, e.refresh(c, rt, url.Values{"scope": {"entries:read entries:write"}}), http.StatusBadRequest, "invalid_scope")
	narrow := e.refresh(c, rt, url.Values{"scope": {"tags:read"}}).json(t)
	if narrow["scope"] != "tags:read" {
		t.Fatalf("narrowed scope %v", narrow["scope"])
	}
	info, err := e.srv.Verifier().Verify(context.Background(), narrow["access_token"].(string))
	if err != nil || strings.Join(info.Scopes, " ") != "tags:read" {
		t.Fatalf("narrowed token %+v, %v", info, err)
	}
	// Narrowing one access token does not shrink the grant.
	full := e.refresh(c, narrow["refresh_token"].(string), nil).json(t)
	if full["scope"] != "entries:read tags:read" {
		t.Fatalf("scope after a narrowed refresh %v", full["scope"])
	}
}

func TestRule_RefreshExpiresAfterInactivity(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	rt := e.tokens(c)["refresh_token"].(string)
	e.clock.Advance(29 * 24 * time.Hour)
	next := e.refresh(c, rt, nil).json(t)["refresh_token"].(string)
	e.clock.Advance(29 * 24 * time.Hour) // active use keeps it alive
	next = e.refresh(c, next, nil).json(t)["refresh_token"].(string)
	e.clock.Advance(31 * 24 * time.Hour)
	wantOAuthError(t, e.refresh(c, next, nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_ClientAuthenticationMethods(t *testing.T) {
	e := newEnv(t)
	c := e.confidentialClient()
	// client_secret_basic
	tok := e.tokens(c)
	// client_secret_post
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {c.id}, "client_secret": {c.secret}}
	r := e.postForm(authserver.TokenPath, f, "", "")
	if r.status != http.StatusOK {
		t.Fatalf("client_secret_post: %d %s", r.status, r.body)
	}
	rt := r.json(t)["refresh_token"].(string)
	// A wrong secret over Basic: 401 with a Basic challenge.
	bad := e.postForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, c.id, "wrong")
	wantOAuthError(t, bad, http.StatusUnauthorized, "invalid_client")
	if !strings.HasPrefix(bad.header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("invalid_client after Basic needs a Basic challenge: %v", bad.header)
	}
	// A confidential client cannot act as public.
	r = e.postForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}}, "", "")
	wantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	if r.header.Get("WWW-Authenticate") != "" {
		t.Fatal("no Basic challenge when Basic was not tried")
	}
	// Two methods at once.
	r = e.postForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_secret": {c.secret}}, c.id, c.secret)
	wantOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	// A public client presenting a secret.
	p := e.publicClient()
	r = e.postForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, p.id, "secret")
	wantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	// Unknown client.
	r = e.postForm(authserver.TokenPath, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"nobody"}}, "", "")
	wantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
}

func TestRule_TokenEndpointErrors(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	for _, tc := range []struct {
		form   url.Values
		status int
		code   string
	}{
		{url.Values{"grant_type": {"password"}, "client_id": {c.id}}, 400, "unsupported_grant_type"},
		{url.Values{"client_id": {c.id}}, 400, "invalid_request"},
		{url.Values{"grant_type": {"authorization_code"}, "client_id": {c.id}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_request"},
		{url.Values{"grant_type": {"authorization_code"}, "client_id": {c.id}, "code": {"nope"}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"refresh_token"}, "client_id": {c.id}, "refresh_token": {"nope"}}, 400, "invalid_grant"},
		{url.Values{"grant_type": {"refresh_token", "refresh_token"}, "client_id": {c.id}}, 400, "invalid_request"},
	} {
		r := e.postForm(authserver.TokenPath, tc.form, "", "")
		wantOAuthError(t, r, tc.status, tc.code)
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("error response headers %v", r.header)
		}
		if _, ok := r.json(t)["error_description"]; !ok {
			t.Errorf("error without description: %s", r.body)
		}
	}
	// JSON bodies are not the token endpoint's format.
	req, _ := http.NewRequest(http.MethodPost, e.issuer+authserver.TokenPath, strings.NewReader(`{"grant_type":"refresh_token"}`))
	req.Header.Set("Content-Type", "application/json")
	wantOAuthError(t, do(t, nil, req), 400, "invalid_request")
}

func TestRule_CORSOnBrowserFacingEndpoints(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{authserver.TokenPath, authserver.RegistrationPath, authserver.RevocationPath, authserver.MetadataPath, authserver.JWKSPath} {
		req, _ := http.NewRequest(http.MethodOptions, e.issuer+p, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		r := do(t, nil, req)
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
			t.Errorf("%s preflight: %d %v", p, r.status, r.header)
		}
	}
}

func TestRule_TokensAndCodesStoredHashed(t *testing.T) {
	e := newEnv(t)
	c := e.confidentialClient()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil)
	tok := e.exchange(c, code, v, nil).json(t)
	secrets := []string{code, tok["refresh_token"].(string), tok["access_token"].(string), c.secret}
	e.db.Close()
	dir := filepath.Dir(e.db.Path())
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
	e := newEnv(t)
	c := e.confidentialClient()
	at := e.tokens(c)["access_token"].(string)
	r := e.postForm(authserver.IntrospectionPath, url.Values{"token": {at}}, c.id, c.secret)
	if r.status != http.StatusOK || strings.TrimSpace(r.body) != `{"active":false}` {
		t.Fatalf("introspection by a non-resource client: %d %s", r.status, r.body)
	}
	// Unauthenticated, or a public client: 401.
	wantOAuthError(t, e.postForm(authserver.IntrospectionPath, url.Values{"token": {at}}, "", ""), http.StatusUnauthorized, "invalid_client")
	p := e.publicClient()
	wantOAuthError(t, e.postForm(authserver.IntrospectionPath, url.Values{"token": {at}, "client_id": {p.id}}, "", ""), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, e.postForm(authserver.IntrospectionPath, url.Values{"token": {at}}, c.id, "wrong"), http.StatusUnauthorized, "invalid_client")
}

func (e *env) resourceServerClient(resource string) testClient {
	e.t.Helper()
	rs, secret, err := authserver.AddClient(context.Background(), e.db, e.kek, authserver.NewClient{Name: "MCP", ResourceServer: true, Resource: resource}, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return testClient{id: rs.ID, secret: secret}
}

func TestRule_IntrospectionOnlyAboutTokensForTheResourceServer(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c)
	at := tok["access_token"].(string)
	rs := e.resourceServerClient(e.resource)
	r := e.postForm(authserver.IntrospectionPath, url.Values{"token": {at}}, rs.id, rs.secret)
	m := r.json(t)
	if m["active"] != true || m["sub"] != e.user.ID || m["aud"] != e.resource || m["client_id"] != c.id || m["iss"] != e.issuer || m["scope"] == "" {
		t.Fatalf("introspection: %s", r.body)
	}
	// Its own introspection verifier in the auth package agrees.
	v, err := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{Endpoint: e.issuer + authserver.IntrospectionPath, ClientID: rs.id, ClientSecret: rs.secret, Resource: e.resource, Issuer: e.issuer, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatalf("auth.IntrospectionVerifier: %v", err)
	}
	inactive := func(token string, who testClient) {
		t.Helper()
		r := e.postForm(authserver.IntrospectionPath, url.Values{"token": {token}}, who.id, who.secret)
		if r.status != http.StatusOK || strings.TrimSpace(r.body) != `{"active":false}` {
			t.Fatalf("want only {\"active\":false}, got %d %s", r.status, r.body)
		}
	}
	inactive(at, e.resourceServerClient("https://other.example/mcp")) // not its audience
	inactive(tok["refresh_token"].(string), rs)                       // not an access token
	inactive("garbage", rs)
	e.clock.Advance(16 * time.Minute)
	inactive(at, rs) // expired
}

func TestRule_RevocationAnswersAndRevokes(t *testing.T) {
	e := newEnv(t)
	c := e.confidentialClient()
	tok := e.tokens(c)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	revoke := func(token, hint, id, secret string) reply {
		f := url.Values{"token": {token}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return e.postForm(authserver.RevocationPath, f, id, secret)
	}
	if r := revoke("unknown-token", "", c.id, c.secret); r.status != http.StatusOK {
		t.Fatalf("unknown token: %d", r.status)
	}
	wantOAuthError(t, revoke(at, "", c.id, "wrong"), http.StatusUnauthorized, "invalid_client")
	wantOAuthError(t, revoke(at, "id_token", c.id, c.secret), http.StatusBadRequest, "unsupported_token_type")
	// Another client's revocation of our token changes nothing.
	other := e.confidentialClient()
	if r := revoke(rt, "", other.id, other.secret); r.status != http.StatusOK {
		t.Fatalf("foreign token: %d", r.status)
	}
	if err := e.verify(at); err != nil {
		t.Fatalf("another client revoked our token: %v", err)
	}
	// Revoking an access token takes effect at once in process.
	if r := revoke(at, "access_token", c.id, c.secret); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if err := e.verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked access token still verifies: %v", err)
	}
	// Revoking the refresh token ends the family.
	next := e.refresh(c, rt, nil).json(t)
	if r := revoke(next["refresh_token"].(string), "refresh_token", c.id, c.secret); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if err := e.verify(next["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("an access token of a revoked refresh token still verifies: %v", err)
	}
	wantOAuthError(t, e.refresh(c, next["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
}

func TestRule_InProcessVerifierChecksAudienceExpiryAndRevocation(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	at := e.tokens(c)["access_token"].(string)
	info, err := e.srv.Verifier().Verify(context.Background(), at)
	if err != nil || info.Issuer != e.issuer || info.Subject != e.user.ID || info.ClientID != c.id || !info.HasScopes(epicme.AllScopes...) {
		t.Fatalf("verify: %+v, %v", info, err)
	}
	// The same keys serving another resource: that server refuses the token.
	cfg := e.cfg
	cfg.Resource = e.issuer + "/other"
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
	if err := e.verify(tampered); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("tampered: %v", err)
	}
	// Revocation by another process sharing the database (the CLI removing
	// the client) reaches this one within its sync interval.
	if err := e.db.DeleteClient(context.Background(), c.id, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if err := e.verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("token of a removed client: %v", err)
	}
	e.clock.Advance(15 * time.Minute)
	if err := e.verify(at); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("expired: %v", err)
	}
}

func TestRule_UserSeesAndRevokesConnectedApps(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	v, ch := pkce()
	b := e.browser()
	tok := e.exchange(c, b.authorize(c, ch, nil), v, nil).json(t)
	page := b.get(e.issuer + authserver.AppsPath)
	if page.status != http.StatusOK || !strings.Contains(page.body, "Test App") || !strings.Contains(page.body, c.id) {
		t.Fatalf("connected apps page: %d\n%s", page.status, page.body)
	}
	f := url.Values{"csrf": {html.UnescapeString(csrfField.FindStringSubmatch(page.body)[1])}, "client_id": {c.id}}
	r := b.post(authserver.AppsRevokePath, f)
	if r.status != http.StatusOK || !strings.Contains(r.body, "revoked") || strings.Contains(r.body, c.id) {
		t.Fatalf("after revoking: %d\n%s", r.status, r.body)
	}
	if err := e.verify(tok["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("the revoked app's access token still verifies: %v", err)
	}
	wantOAuthError(t, e.refresh(c, tok["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
	// The next authorization asks for consent again.
	if r := b.get(e.authzURL(c, ch, nil)); !strings.Contains(r.body, `name="decision"`) {
		t.Fatalf("consent was not withdrawn: %d", r.status)
	}
	// Without the CSRF token nothing is revoked.
	if r := b.post(authserver.AppsRevokePath, url.Values{"client_id": {c.id}}); r.status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", r.status)
	}
}

func TestRule_ConnectedAppsPageNeedsSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.get(e.issuer + authserver.AppsPath)
	if page.status != http.StatusOK || !strings.Contains(page.body, `name="password"`) {
		t.Fatalf("apps page without a session: %d", page.status)
	}
	r := b.signIn(page.body, testEmail, testPassword) // follows the 303 back
	if r.status != http.StatusOK || !strings.Contains(r.body, "No application") || !strings.Contains(r.body, testEmail) {
		t.Fatalf("after sign-in: %d\n%s", r.status, r.body)
	}
}

func TestRule_PromptNoneAndLogin(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	q := location(t, b.get(e.authzURL(c, ch, url.Values{"prompt": {"none"}})), c.redirect)
	if q.Get("error") != "login_required" || q.Get("iss") != e.issuer {
		t.Fatalf("prompt=none without a session: %v", q)
	}
	b.authorize(c, ch, nil) // signs in and consents
	if q := location(t, b.get(e.authzURL(c, ch, url.Values{"prompt": {"none"}})), c.redirect); q.Get("code") == "" {
		t.Fatalf("prompt=none with a session and consent: %v", q)
	}
	if r := b.get(e.authzURL(c, ch, url.Values{"prompt": {"login"}})); r.status != http.StatusOK || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("prompt=login must ask for the password again: %d", r.status)
	}
	if r := b.get(e.authzURL(c, ch, url.Values{"prompt": {"consent"}})); !strings.Contains(r.body, `name="decision"`) {
		t.Fatalf("prompt=consent must show the consent page: %d", r.status)
	}
}

func TestRule_HostPrefixedSecureCookiesOverHTTPS(t *testing.T) {
	e := newEnv(t)
	var handler http.Handler
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer ts.Close()
	cfg := e.cfg
	cfg.Issuer, cfg.Resource = ts.URL, ts.URL+"/mcp"
	srv, err := authserver.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler = srv.Handler()
	c := e.publicClient() // the same database: the client is known to both
	_, ch := pkce()
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "code_challenge": {ch}, "code_challenge_method": {"S256"}}
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
	e := newEnv(t)
	for _, issuer := range []string{"http://journal.example.com", "http://192.0.2.10:8080", "https://journal.example.com/path", "ftp://journal.example.com"} {
		cfg := e.cfg
		cfg.Issuer = issuer
		if _, err := authserver.New(context.Background(), cfg); err == nil {
			t.Errorf("issuer %s accepted", issuer)
		}
	}
	for _, issuer := range []string{"https://journal.example.com", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		cfg := e.cfg
		cfg.Issuer = issuer
		if _, err := authserver.New(context.Background(), cfg); err != nil {
			t.Errorf("issuer %s refused: %v", issuer, err)
		}
	}
}

func TestRule_DCRRateLimitedPerSourceBehindProxy(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) {
		c.Registration.PerSource = 2
		c.SourceAddress = authserver.ForwardedFor
	})
	register := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+authserver.RegistrationPath,
			strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		return do(t, nil, req).status
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
