package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/testenv"
)

// Each test is named after a rule of the resource-server section of the MCP
// authorization rules (RFC 9728, RFC 6750, RFC 8707, RFC 9068, RFC 7662 and
// the MCP transport and authorization chapters).

func TestRule_Metadata_ServedAtPathSuffixedAndRootURLs(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		r := do(t, http.MethodGet, f.srv.URL+path, "")
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
		m := r.json(t)
		if m["resource"] != f.MCP {
			t.Errorf("%s: resource = %v, want exactly %s", path, m["resource"], f.MCP)
		}
		if as, _ := m["authorization_servers"].([]any); len(as) != 1 || as[0] != f.is.URL {
			t.Errorf("authorization_servers = %v", m["authorization_servers"])
		}
		if bm, _ := m["bearer_methods_supported"].([]any); len(bm) != 1 || bm[0] != "header" {
			t.Errorf("bearer_methods_supported = %v", m["bearer_methods_supported"])
		}
		if sc, _ := m["scopes_supported"].([]any); len(sc) != 5 {
			t.Errorf("scopes_supported = %v", m["scopes_supported"])
		}
		if m["resource_name"] != "Test Journal" || m["resource_documentation"] != f.srv.URL+"/docs" {
			t.Errorf("resource_name/documentation = %v / %v", m["resource_name"], m["resource_documentation"])
		}
		if r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("metadata not CORS-readable: %q", r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestRule_Metadata_CORSPreflight204(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := do(t, http.MethodOptions, f.srv.URL+"/.well-known/oauth-protected-resource/mcp", "",
		"Origin", "https://somewhere.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "mcp-protocol-version")
	if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "mcp-protocol-version") {
		t.Fatalf("preflight: %d %v", r.StatusCode, r.Header)
	}
}

func TestRule_Metadata_ResourceIsThePublicURL(t *testing.T) {
	// Behind a proxy the public URL differs from the listener: the metadata
	// and challenges name the public one.
	f := newFixture(t, fixtureConfig{opts: func(o *auth.Options) {
		o.ResourceURL = "https://Journal.Example.com:8443/mcp"
	}})
	m := do(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp", "").json(t)
	if m["resource"] != "https://Journal.Example.com:8443/mcp" {
		t.Fatalf("resource = %v", m["resource"])
	}
	c := f.post(t, "", initialize).challenge(t)
	if c.ResourceMetadata != "https://Journal.Example.com:8443/.well-known/oauth-protected-resource/mcp" {
		t.Fatalf("resource_metadata = %q", c.ResourceMetadata)
	}
}

func TestRule_NoCredentials_401WithoutError(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	cases := []struct {
		name, body, scope string
	}{
		{"initialize needs no scope: the challenge names the useful ones", initialize, "user:read entries:read entries:write tags:read tags:write"},
		{"a tool call names its scope", call("create_entry"), "entries:write"},
		{"a templated resource names its scope", read("epicme://entries/7"), "entries:read"},
		{"a batch names every scope", "[" + call("create_entry") + "," + call("whoami") + "]", "entries:write user:read"},
		{"a garbage body still gets the challenge", "not json", "user:read entries:read entries:write tags:read tags:write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(t, "", tc.body)
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", r.StatusCode)
			}
			raw := r.Header.Get("WWW-Authenticate")
			c := r.challenge(t)
			if c.Error != "" || c.ErrorDescription != "" || strings.Contains(raw, "error") {
				t.Errorf("no-credentials challenge carries error information: %s", raw)
			}
			if c.Realm != "EpicMe" || c.ResourceMetadata != f.srv.URL+"/.well-known/oauth-protected-resource/mcp" {
				t.Errorf("challenge %s", raw)
			}
			if c.Scope != tc.scope {
				t.Errorf("scope = %q, want %q", c.Scope, tc.scope)
			}
			for _, p := range []string{`realm="`, `resource_metadata="`, `scope="`} {
				if !strings.Contains(raw, p) {
					t.Errorf("%s not quoted in %s", p, raw)
				}
			}
		})
	}
}

func TestRule_OtherSchemeIsNoCredentials_401(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := f.post(t, "", initialize, "Authorization", "Basic dXNlcjpwYXNz")
	if r.StatusCode != http.StatusUnauthorized || r.challenge(t).Error != "" {
		t.Fatalf("Basic credentials: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRule_BearerSchemeIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt()
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		r := f.post(t, "", initialize, "Authorization", scheme+" "+tok)
		if r.StatusCode != 200 {
			t.Errorf("%s: %d %s", scheme, r.StatusCode, r.Body)
		}
	}
}

func TestRule_TokenInQuery_400(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt()
	for _, withHeader := range []bool{false, true} {
		var h []string
		if withHeader {
			h = []string{"Authorization", "Bearer " + tok}
		}
		r := do(t, http.MethodPost, f.MCP+"?access_token="+tok, initialize, h...)
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("header=%v: status %d", withHeader, r.StatusCode)
		}
		if c := r.challenge(t); c.Error != auth.ErrorInvalidRequest {
			t.Errorf("error = %q", c.Error)
		}
		if r.json(t)["error"] != "invalid_request" {
			t.Errorf("body %s", r.Body)
		}
	}
}

func TestRule_TokenInFormBody_400(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := do(t, http.MethodPost, f.MCP, "access_token="+f.jwt(), "Content-Type", "application/x-www-form-urlencoded")
	if r.StatusCode != http.StatusBadRequest || r.challenge(t).Error != auth.ErrorInvalidRequest {
		t.Fatalf("status %d, %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRule_DuplicateAuthorization_400(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt()
	r := f.post(t, "", initialize, "Authorization", "Bearer "+tok, "Authorization", "Bearer "+tok)
	if r.StatusCode != http.StatusBadRequest || r.challenge(t).Error != auth.ErrorInvalidRequest {
		t.Fatalf("status %d, %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRule_MalformedAuthorization_400(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	for _, h := range []string{"Bearer", "Bearer ", "Bearer a b", "Bearer a,Bearer b", "Bearer tok\"en", "Bearer =abc", "Bearer \x01"} {
		req, _ := http.NewRequest(http.MethodPost, f.MCP, strings.NewReader(initialize))
		req.Header["Authorization"] = []string{h}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The client itself refuses some invalid header values.
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d", h, resp.StatusCode)
			continue
		}
		c, err := parseChallenge(resp.Header.Get("WWW-Authenticate"))
		if err != nil || c.Error != auth.ErrorInvalidRequest {
			t.Errorf("%q: challenge %q", h, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestRule_AuthenticateBeforeParsing_GarbageBodyWithBadToken401(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := f.post(t, "not-a-real-token", "{{{ garbage")
	if r.StatusCode != http.StatusUnauthorized || r.challenge(t).Error != auth.ErrorInvalidToken {
		t.Fatalf("status %d %s", r.StatusCode, r.Body)
	}
}

func TestRule_SessionIdIsNotACredential_401(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	first := f.post(t, f.jwt(), initialize)
	sid := first.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session minted")
	}
	r := f.post(t, "", call("get_entry"), "Mcp-Session-Id", sid)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session id without token: %d", r.StatusCode)
	}
}

func TestRule_InvalidToken_401(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	is := f.is
	now := time.Now()
	enc := func(s string) string {
		return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(b64std(s)), "=")
	}
	valid := f.jwt()
	parts := strings.Split(valid, ".")
	cases := []struct{ name, token, reason string }{
		{"unknown opaque string", "opaque-token-nobody-issued", "not a JWT"},
		{"expired", f.jwt("exp", now.Add(-2*time.Minute).Unix()), "expired"},
		{"not yet valid", f.jwt("nbf", now.Add(5*time.Minute).Unix()), "not valid yet"},
		{"no expiry", f.jwt("exp", nil), "no expiry"},
		{"other issuer", f.jwt("iss", "https://evil.example"), "another issuer"},
		{"no subject", f.jwt("sub", nil), "no subject"},
		{"badly signed", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), "signature"},
		{"claims swapped under a valid signature", parts[0] + "." + enc(`{"iss":"`+is.URL+`","sub":"admin","aud":"`+f.MCP+`","exp":9999999999}`) + "." + parts[2], "signature"},
		{"alg none", enc(`{"alg":"none","typ":"at+jwt"}`) + "." + parts[1] + ".", "unsigned"},
		{"alg none with a signature", enc(`{"alg":"none","typ":"at+jwt"}`) + "." + parts[1] + "." + parts[2], "alg none"},
		{"unsigned (two parts)", parts[0] + "." + parts[1], "compact JWS"},
		{"HMAC with the public key", hmacWithPublicKey(f), "HMAC"},
		{"typ JWT not allowed", is.sign("rsa-1", map[string]any{"typ": "JWT"}, is.claims(f.MCP)), "typ"},
		{"typ missing", is.sign("rsa-1", map[string]any{"typ": nil}, is.claims(f.MCP)), "typ"},
		{"id token typ", is.sign("rsa-1", map[string]any{"typ": "id_token+jwt"}, is.claims(f.MCP)), "typ"},
		{"unknown kid", is.sign("rsa-1", map[string]any{"kid": "nope"}, is.claims(f.MCP)), "unknown key"},
		{"kid of another algorithm's key", is.sign("rsa-1", map[string]any{"kid": "ec-1"}, is.claims(f.MCP)), "unknown key"},
		{"critical extension", is.sign("rsa-1", map[string]any{"crit": []string{"exp"}}, is.claims(f.MCP)), "critical"},
		{"algorithm outside the allow-list", is.sign("rsa-1", map[string]any{"alg": "PS256"}, is.claims(f.MCP)), "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(t, tc.token, initialize)
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d: %s", r.StatusCode, r.Body)
			}
			c := r.challenge(t)
			if c.Error != auth.ErrorInvalidToken || c.ErrorDescription == "" {
				t.Fatalf("challenge %+v", c)
			}
			if !strings.Contains(c.ErrorDescription, tc.reason) {
				t.Errorf("description %q does not mention %q", c.ErrorDescription, tc.reason)
			}
			if b := r.json(t); b["error"] != "invalid_token" || b["error_description"] == "" {
				t.Errorf("body %s", r.Body)
			}
		})
	}
}

func TestRule_JWT_TypJWTAllowedWhenConfigured(t *testing.T) {
	f := newFixture(t, fixtureConfig{jwt: func(o *auth.JWTOptions) { o.AllowTypJWT = true }})
	tok := f.is.sign("rsa-1", map[string]any{"typ": "JWT"}, f.is.claims(f.MCP))
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatalf("typ JWT with allowance: %d %s", r.StatusCode, r.Body)
	}
}

func TestRule_JWT_AlgorithmAllowList_RS256_ES256_EdDSA(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	for _, kid := range []string{"rsa-1", "ec-1", "ed-1"} {
		tok := f.is.sign(kid, nil, f.is.claims(f.MCP))
		r := f.post(t, tok, initialize)
		if r.StatusCode != 200 {
			t.Errorf("%s: %d %s", kid, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestRule_JWT_EveryAcceptedAlgorithm: each algorithm the verifier can be
// configured to accept (RFC 7518 §3.3-3.5, RFC 8037 §3.1) verifies a token
// signed by hand with crypto/* (not by the verifier's JOSE library), refuses
// the same token with its signature's last byte changed, and is refused
// while it is outside the default allow-list (RFC 8725 §3.1).
func TestRule_JWT_EveryAcceptedAlgorithm(t *testing.T) {
	all := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	f := newFixture(t, fixtureConfig{jwt: func(o *auth.JWTOptions) { o.Algorithms = all }})
	def := newFixture(t, fixtureConfig{})
	kids := map[string]string{
		"RS256": "rsa-1", "RS384": "rs384", "RS512": "rs512",
		"PS256": "ps256", "PS384": "ps384", "PS512": "ps512",
		"ES256": "ec-1", "ES384": "es384", "ES512": "es512", "EdDSA": "ed-1",
	}
	for _, alg := range all {
		t.Run(alg, func(t *testing.T) {
			tok := f.is.sign(kids[alg], nil, f.is.claims(f.MCP))
			if r := f.post(t, tok, initialize); r.StatusCode != 200 {
				t.Fatalf("valid: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
			sig := []byte(tok[strings.LastIndexByte(tok, '.')+1:])
			// Change a character in the middle, not the padding bits at the end.
			if sig[len(sig)/2] == 'A' {
				sig[len(sig)/2] = 'B'
			} else {
				sig[len(sig)/2] = 'A'
			}
			bad := tok[:strings.LastIndexByte(tok, '.')+1] + string(sig)
			if r := f.post(t, bad, initialize); r.StatusCode != 401 || !strings.Contains(r.challenge(t).ErrorDescription, "signature") {
				t.Fatalf("tampered: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
			r := def.post(t, def.is.sign(kids[alg], nil, def.is.claims(def.MCP)), initialize)
			switch alg {
			case "RS256", "ES256", "EdDSA":
				if r.StatusCode != 200 {
					t.Fatalf("default allow-list: %d", r.StatusCode)
				}
			default:
				if r.StatusCode != 401 || !strings.Contains(r.challenge(t).ErrorDescription, "not allowed") {
					t.Fatalf("outside the default allow-list: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestRule_JWT_ExpAndNbfWithSmallSkew(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	now := f.clock.Now()
	ok := []string{
		f.jwt("exp", now.Add(-10*time.Second).Unix()), // within 30 s skew
		f.jwt("nbf", now.Add(10*time.Second).Unix()),
	}
	for i, tok := range ok {
		if r := f.post(t, tok, initialize); r.StatusCode != 200 {
			t.Errorf("case %d: %d %s", i, r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
	if r := f.post(t, f.jwt("exp", now.Add(-40*time.Second).Unix()), initialize); r.StatusCode != 401 {
		t.Errorf("expired beyond skew: %d", r.StatusCode)
	}
}

func TestRule_JWT_ScopesFromScopeAndScp(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	for _, tok := range []string{
		f.jwt("scope", "entries:write"),
		f.jwt("scope", nil, "scp", []string{"entries:write", "tags:read"}),
	} {
		r := f.post(t, tok, call("create_entry"))
		if r.StatusCode != 200 {
			t.Errorf("%d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestRule_JWT_UnknownKidRefetchesJWKS_RateLimited(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	if r := f.post(t, f.jwt(), initialize); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	base := f.is.JWKSHits.Load()
	// A key the issuer has not published yet: one refetch, then refused.
	newTok := f.is.sign("rsa-new", nil, f.is.claims(f.MCP))
	f.clock.Advance(11 * time.Second)
	if r := f.post(t, newTok, initialize); r.StatusCode != 401 {
		t.Fatalf("unpublished key: %d", r.StatusCode)
	}
	if got := f.is.JWKSHits.Load() - base; got != 1 {
		t.Fatalf("unknown kid caused %d JWKS fetches, want 1", got)
	}
	// A flood of unknown kids within the interval causes no more fetches.
	for i := 0; i < 20; i++ {
		f.post(t, f.is.sign("rsa-1", map[string]any{"kid": "forged-" + randomToken()}, f.is.claims(f.MCP)), initialize)
	}
	if got := f.is.JWKSHits.Load() - base; got != 1 {
		t.Fatalf("forged kids caused %d JWKS fetches, want 1 (rate limit)", got)
	}
	// The issuer rotates: after the interval the new key is fetched and works.
	f.is.reveal("rsa-new")
	f.clock.Advance(11 * time.Second)
	if r := f.post(t, newTok, initialize); r.StatusCode != 200 {
		t.Fatalf("rotated key after refetch: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRule_JWT_PeriodicJWKSRefresh(t *testing.T) {
	f := newFixture(t, fixtureConfig{jwt: func(o *auth.JWTOptions) { o.RefreshInterval = time.Minute }})
	f.post(t, f.jwt(), initialize)
	base := f.is.JWKSHits.Load()
	f.clock.Advance(2 * time.Minute)
	f.post(t, f.jwt(), initialize) // a fresh token: not in the cache
	testenv.Eventually(t, 5*time.Second, func() error {
		if f.is.JWKSHits.Load() == base {
			return errors.New("the stale JWKS has not been refreshed")
		}
		return nil
	})
}

func TestRule_JWT_VerifiedTokensCachedUntilExpiry(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt("exp", f.clock.Now().Add(time.Minute).Unix())
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	f.is.Down.Store(true) // the issuer is gone; the cached token still works
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatalf("cached token: %d", r.StatusCode)
	}
	f.clock.Advance(2 * time.Minute)
	if r := f.post(t, tok, initialize); r.StatusCode != 401 {
		t.Fatalf("expired cached token: %d", r.StatusCode)
	}
}

func TestRule_Audience_OtherResource_401(t *testing.T) {
	for _, kind := range []string{"jwt", "introspection"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureConfig{verifier: kind})
			for _, aud := range []any{"https://other.example/mcp", []string{"https://other.example/mcp", "api"}, f.MCP + "/other", nil} {
				var tok string
				if kind == "jwt" {
					tok = f.jwt("aud", aud)
				} else {
					tok = f.is.opaque(map[string]any{"sub": "u", "aud": aud, "scope": "entries:read", "exp": time.Now().Add(time.Hour).Unix()})
				}
				r := f.post(t, tok, initialize)
				if r.StatusCode != 401 || r.challenge(t).Error != auth.ErrorInvalidToken {
					t.Errorf("aud %v: %d", aud, r.StatusCode)
				}
			}
		})
	}
}

func TestRule_Audience_CaseOfSchemeAndHostAndOneTrailingSlashIgnored(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	upper := strings.Replace(strings.Replace(f.MCP, "http://", "HTTP://", 1), "127.0.0.1", "127.0.0.1", 1)
	for _, aud := range []any{upper, f.MCP + "/", []string{"api", f.MCP}} {
		if r := f.post(t, f.jwt("aud", aud), initialize); r.StatusCode != 200 {
			t.Errorf("aud %v: %d", aud, r.StatusCode)
		}
	}
	if !auth.SameResource("HTTPS://Example.COM/mcp/", "https://example.com/mcp") {
		t.Error("scheme/host case or trailing slash not ignored")
	}
	for _, other := range []string{"https://example.com/MCP", "https://example.com/mcp//", "https://example.com:443/mcp", "https://example.com/mcp?x=1"} {
		if auth.SameResource(other, "https://example.com/mcp") {
			t.Errorf("%s treated as the same resource", other)
		}
	}
}

func TestRule_Introspection_AuthenticatedAsClient(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection"})
	tok := f.is.opaque(map[string]any{"sub": "u1", "aud": f.MCP, "scope": "entries:read", "client_id": "c"})
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatalf("%d %s", r.StatusCode, r.Body)
	}
	// Wrong credentials: the issuer says 401, which is our misconfiguration
	// and not the user's fault: 503, never a 401.
	g := newFixture(t, fixtureConfig{verifier: "introspection", intro: func(o *auth.IntrospectionOptions) { o.ClientSecret = "wrong" }})
	tok = g.is.opaque(map[string]any{"sub": "u1", "aud": g.MCP})
	r := g.post(t, tok, initialize)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("bad client credentials: %d", r.StatusCode)
	}
}

func TestRule_Introspection_InactiveIs401(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection"})
	r := f.post(t, "never-issued", initialize)
	if r.StatusCode != 401 || r.challenge(t).Error != auth.ErrorInvalidToken {
		t.Fatalf("%d", r.StatusCode)
	}
	tok := f.is.opaque(map[string]any{"sub": "u1", "aud": f.MCP, "exp": time.Now().Add(-time.Minute).Unix()})
	if r := f.post(t, tok, initialize); r.StatusCode != 401 {
		t.Fatalf("expired per exp: %d", r.StatusCode)
	}
}

func TestRule_Introspection_RevocationBitesAfterCacheBound(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection", intro: func(o *auth.IntrospectionOptions) { o.CacheTTL = 30 * time.Second }})
	tok := f.is.opaque(map[string]any{"sub": "u1", "aud": f.MCP, "exp": time.Now().Add(time.Hour).Unix()})
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	f.is.revoke(tok)
	f.clock.Advance(20 * time.Second)
	if r := f.post(t, tok, initialize); r.StatusCode != 200 {
		t.Fatalf("within the cache bound the answer is reused: %d", r.StatusCode)
	}
	f.clock.Advance(11 * time.Second)
	if r := f.post(t, tok, initialize); r.StatusCode != 401 {
		t.Fatalf("after the cache bound a revoked token is refused: %d", r.StatusCode)
	}
}

func TestRule_Introspection_CacheNoLongerThanExp(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection", intro: func(o *auth.IntrospectionOptions) { o.CacheTTL = time.Hour }})
	tok := f.is.opaque(map[string]any{"sub": "u1", "aud": f.MCP, "exp": f.clock.Now().Add(10 * time.Second).Unix()})
	f.post(t, tok, initialize)
	hits := f.is.IntrospectHits.Load()
	f.clock.Advance(15 * time.Second)
	f.post(t, tok, initialize)
	if f.is.IntrospectHits.Load() == hits {
		t.Fatal("cached past the token's exp")
	}
}

func TestRule_Introspection_NegativeAnswersCachedBriefly(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection"})
	f.post(t, "unknown-token", initialize)
	f.post(t, "unknown-token", initialize)
	if got := f.is.IntrospectHits.Load(); got != 1 {
		t.Fatalf("%d introspection calls for a repeated inactive token, want 1", got)
	}
	f.clock.Advance(6 * time.Second)
	f.post(t, "unknown-token", initialize)
	if got := f.is.IntrospectHits.Load(); got != 2 {
		t.Fatalf("negative entry lived too long: %d calls", got)
	}
}

func TestRule_Introspection_OneInFlightCallPerToken(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection"})
	f.is.IntrospectDelay = 200 * time.Millisecond
	tok := f.is.opaque(map[string]any{"sub": "u1", "aud": f.MCP})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := f.post(t, tok, initialize); r.StatusCode != 200 {
				t.Errorf("%d", r.StatusCode)
			}
		}()
	}
	wg.Wait()
	if got := f.is.IntrospectHits.Load(); got != 1 {
		t.Fatalf("%d introspection calls for 10 concurrent requests, want 1", got)
	}
}

func TestRule_Unavailable_503WithRetryAfterNever401(t *testing.T) {
	for _, kind := range []string{"jwt", "introspection"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureConfig{verifier: kind})
			f.is.Down.Store(true)
			tok := f.jwt()
			if kind == "introspection" {
				tok = f.is.opaque(map[string]any{"sub": "u", "aud": f.MCP})
			}
			for i := 0; i < 3; i++ {
				r := f.post(t, tok, initialize)
				if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
					t.Fatalf("status %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
				}
				if r.Header.Get("WWW-Authenticate") != "" {
					t.Fatalf("503 must not challenge: %s", r.Header.Get("WWW-Authenticate"))
				}
			}
			if kind == "jwt" {
				// Keys are not refetched on every request while the issuer is down.
				if hits := f.is.MetadataHits.Load() + f.is.JWKSHits.Load(); hits > 1 {
					t.Errorf("%d fetches from a down issuer for 3 requests, want 1", hits)
				}
			}
			if n := strings.Count(f.logs.String(), `"msg":"auth: token verification unavailable`); n != 1 {
				t.Fatalf("unavailability logged %d times, want once per interval", n)
			}
			// Once it is back, the same token works.
			f.is.Down.Store(false)
			f.clock.Advance(time.Minute)
			if r := f.post(t, tok, initialize); r.StatusCode != 200 {
				t.Fatalf("after recovery: %d", r.StatusCode)
			}
		})
	}
	// Nothing listening at all.
	v, _ := auth.NewJWTVerifier(auth.JWTOptions{Issuer: "http://127.0.0.1:1", Resource: "http://127.0.0.1/mcp"})
	if _, err := v.Verify(t.Context(), "a.b.c"); err == nil {
		t.Fatal("no error")
	}
}

func TestRule_InsufficientScope_403NamesEveryNeededAndGrantedScope(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	cases := []struct {
		name, granted, body, want string
	}{
		{"tool", "entries:read tags:read", call("create_entry"), "entries:write entries:read tags:read"},
		{"prompt needing two, one granted", "tags:read", `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"suggest_tags","arguments":{"entryId":"1"}}}`, "entries:read tags:read"},
		{"resource template", "user:read", read("epicme://entries/12"), "entries:read user:read"},
		{"no scope granted at all", "", call("whoami"), "user:read"},
		{"completion judged by its prompt", "user:read", `{"jsonrpc":"2.0","id":4,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"suggest_tags"},"argument":{"name":"entryId","value":"1"}}}`, "entries:read tags:read user:read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(t, f.jwt("scope", tc.granted), tc.body)
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d", r.StatusCode)
			}
			c := r.challenge(t)
			if c.Error != auth.ErrorInsufficientScope || c.ResourceMetadata == "" {
				t.Fatalf("challenge %+v", c)
			}
			if c.Scope != tc.want {
				t.Errorf("scope = %q, want %q", c.Scope, tc.want)
			}
			if strings.Contains(r.Header.Get("WWW-Authenticate"), `scope=""`) {
				t.Error(`scope=""`)
			}
			if r.json(t)["error"] != "insufficient_scope" {
				t.Errorf("body %s", r.Body)
			}
		})
	}
}

func TestRule_ScopeCheckedPerRequestNotPerSession(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	narrow := f.jwt("scope", "entries:read")
	sid := f.post(t, narrow, initialize).Header.Get("Mcp-Session-Id")
	if r := f.post(t, narrow, call("create_entry"), "Mcp-Session-Id", sid); r.StatusCode != 403 {
		t.Fatalf("narrow token: %d", r.StatusCode)
	}
	wide := f.jwt("scope", "entries:read entries:write")
	if r := f.post(t, wide, call("create_entry"), "Mcp-Session-Id", sid); r.StatusCode != 200 {
		t.Fatalf("same session, stepped-up token: %d %s", r.StatusCode, r.Body)
	}
}

func TestRule_OperationReadFromBody_EveryMessageOfABatch(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt("scope", "entries:read")
	batch := "[" + call("get_entry") + "," + call("create_entry") + "]"
	if r := f.post(t, tok, batch); r.StatusCode != 403 || r.challenge(t).Scope != "entries:read entries:write" {
		t.Fatalf("batch with one forbidden call: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	// Headers are never trusted instead of the body.
	r := f.post(t, tok, call("create_entry"), "Mcp-Method", "tools/call", "Mcp-Name", "get_entry")
	if r.StatusCode != 400 {
		t.Fatalf("lying Mcp-Name: %d", r.StatusCode)
	}
	// Member names differing only in case are refused (two JSON decoders
	// must not read two different operations).
	r = f.post(t, tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","NAME":"create_entry"}}`)
	if r.StatusCode != 400 {
		t.Fatalf("ambiguous member names: %d", r.StatusCode)
	}
}

func TestRule_HeaderMismatch_400WithJSONRPCError32020(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt("scope", "entries:read entries:write")
	cases := []struct {
		name    string
		headers []string
	}{
		{"method differs", []string{"Mcp-Method", "tools/list"}},
		{"name differs", []string{"Mcp-Method", "tools/call", "Mcp-Name", "create_entry"}},
		{"2026-07-28 without Mcp-Method", []string{"Mcp-Protocol-Version", "2026-07-28"}},
		{"2026-07-28 without Mcp-Name", []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call"}},
		{"bad base64 name", []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?***?="}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(t, tok, call("get_entry"), tc.headers...)
			if r.StatusCode != 400 {
				t.Fatalf("status %d", r.StatusCode)
			}
			m := r.json(t)
			e, _ := m["error"].(map[string]any)
			if m["jsonrpc"] != "2.0" || e == nil || e["code"] != float64(auth.HeaderMismatchCode) || m["id"] != float64(1) {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
	ok := f.post(t, tok, call("get_entry"), "Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?"+b64std("get_entry")+"?=")
	if ok.StatusCode != 200 {
		t.Fatalf("matching headers: %d %s", ok.StatusCode, ok.Body)
	}
}

func TestRule_ChallengeValuesQuotedWithinRFC6750Charset(t *testing.T) {
	c := auth.Challenge{Realm: `Epic"Me\`, ResourceMetadata: "https://h/x", Scope: "a  b\tc", Error: "invalid_token", ErrorDescription: "bad \"token\" é\n\\ here"}
	s := c.String()
	for _, ch := range s {
		if ch < 0x20 || ch > 0x7e {
			t.Fatalf("non-printable %q in %s", ch, s)
		}
	}
	back, err := parseChallenge(s)
	if err != nil || back != c.Sanitized() {
		t.Fatalf("%s -> %+v, %v", s, back, err)
	}
	if back.ErrorDescription != "bad token  here" || back.Scope != "a b c" {
		t.Fatalf("%+v", back)
	}
	if strings.Count(s, "Bearer") != 1 {
		t.Fatal("more than one challenge")
	}
}

func TestRule_TokenDependentAnswersArePrivate(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := f.post(t, f.jwt(), `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Cache-Control"), "private") {
		t.Fatalf("%d Cache-Control %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}
}

func TestRule_SessionBoundToIssuerSubjectClient(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	ada := f.jwt("sub", "ada")
	sid := f.post(t, ada, initialize).Header.Get("Mcp-Session-Id")
	if r := f.post(t, ada, call("get_entry"), "Mcp-Session-Id", sid); r.StatusCode != 200 {
		t.Fatalf("owner: %d", r.StatusCode)
	}
	for _, other := range []string{f.jwt("sub", "bob"), f.jwt("sub", "ada", "client_id", "other-client")} {
		r := f.post(t, other, call("get_entry"), "Mcp-Session-Id", sid)
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("another identity on the session: %d", r.StatusCode)
		}
	}
	// A session id first seen in a request is bound to that request's
	// identity too.
	f.post(t, ada, call("get_entry"), "Mcp-Session-Id", "made-up")
	if r := f.post(t, f.jwt("sub", "bob"), call("get_entry"), "Mcp-Session-Id", "made-up"); r.StatusCode != 404 {
		t.Fatalf("%d", r.StatusCode)
	}
}

// With HandlerBindsSessions the handler owns the binding (EpicMe's, in a
// store every instance shares) and the resource server binds nothing, so
// one place decides: here, any identity's session id reaches the handler,
// which refuses it.
func TestRule_SessionLeftToTheHandlerWhenItBindsSessions(t *testing.T) {
	f := newFixture(t, fixtureConfig{opts: func(o *auth.Options) { o.HandlerBindsSessions = true }})
	ada, bob := f.jwt("sub", "ada"), f.jwt("sub", "bob")
	if r := f.post(t, bob, call("get_entry"), "Mcp-Session-Id", "begun-elsewhere"); r.StatusCode != 200 {
		t.Fatalf("first sight: %d", r.StatusCode)
	}
	if r := f.post(t, ada, call("get_entry"), "Mcp-Session-Id", "begun-elsewhere"); r.StatusCode != 200 {
		t.Fatalf("the owner after another identity's first use: %d, want it left to the handler", r.StatusCode)
	}
	sid := f.post(t, ada, initialize).Header.Get("Mcp-Session-Id")
	if r := f.post(t, bob, call("get_entry"), "Mcp-Session-Id", sid); r.StatusCode != http.StatusOK {
		t.Fatalf("another identity on a session issued here: %d, want it left to the handler", r.StatusCode)
	}
}

func TestRule_Origin_UnknownBrowserOriginIs403(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt()
	if r := f.post(t, tok, initialize, "Origin", "https://evil.example"); r.StatusCode != 403 {
		t.Fatalf("unknown origin: %d", r.StatusCode)
	}
	if r := do(t, http.MethodOptions, f.MCP, "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from an unknown origin: %d", r.StatusCode)
	}
	if r := f.post(t, tok, initialize, "Origin", "null"); r.StatusCode != 403 {
		t.Fatalf("opaque origin: %d", r.StatusCode)
	}
	for _, o := range []string{f.srv.URL, "http://localhost:6274", "http://127.0.0.1:9", "http://[::1]:5173"} {
		r := f.post(t, tok, initialize, "Origin", o)
		if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != o {
			t.Errorf("%s: %d ACAO %q", o, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	g := newFixture(t, fixtureConfig{opts: func(o *auth.Options) { o.AllowedOrigins = []string{"https://app.example"} }})
	if r := g.post(t, g.jwt(), initialize, "Origin", "http://localhost:3000"); r.StatusCode != 403 {
		t.Fatalf("configured list replaces the default: %d", r.StatusCode)
	}
	if r := g.post(t, g.jwt(), initialize, "Origin", "https://app.example"); r.StatusCode != 200 {
		t.Fatalf("configured origin: %d", r.StatusCode)
	}
}

func TestRule_CORSPreflightAnsweredBeforeAuthentication(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := do(t, http.MethodOptions, f.MCP, "", "Origin", "http://localhost:6274",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version, mcp-param-region")
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: %d", r.StatusCode)
	}
	allow := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "last-event-id", "mcp-param-region"} {
		if !strings.Contains(allow, h) {
			t.Errorf("preflight does not allow %s: %s", h, allow)
		}
	}
	if !strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Error(r.Header.Get("Access-Control-Allow-Methods"))
	}
}

func TestRule_CORSExposesChallengeAndSessionHeaders(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	for _, r := range []reply{
		f.post(t, "", initialize, "Origin", "http://localhost:6274"),
		f.post(t, f.jwt(), initialize, "Origin", "http://localhost:6274"),
	} {
		exp := strings.ToLower(r.Header.Get("Access-Control-Expose-Headers"))
		for _, h := range []string{"www-authenticate", "mcp-session-id", "mcp-protocol-version"} {
			if !strings.Contains(exp, h) {
				t.Errorf("%d: %s not exposed (%q)", r.StatusCode, h, exp)
			}
		}
		if r.Header.Get("Access-Control-Allow-Origin") != "http://localhost:6274" {
			t.Errorf("%d: ACAO %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestRule_UnsupportedProtocolVersion_400(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	if r := f.post(t, f.jwt(), initialize, "Mcp-Protocol-Version", "1999-01-01"); r.StatusCode != 400 {
		t.Fatalf("%d", r.StatusCode)
	}
	if r := f.post(t, f.jwt(), initialize, "Mcp-Protocol-Version", "2025-06-18"); r.StatusCode != 200 {
		t.Fatalf("%d", r.StatusCode)
	}
}

func TestRule_TokensNeverLogged_AuditLinePerDecision(t *testing.T) {
	f := newFixture(t, fixtureConfig{verifier: "introspection"})
	good := f.is.opaque(map[string]any{"sub": "ada", "aud": f.MCP, "client_id": "cli", "scope": "entries:read"})
	f.post(t, good, call("get_entry"))
	f.post(t, good, call("create_entry"))
	f.post(t, "bad-token-value", call("get_entry"))
	do(t, http.MethodPost, f.MCP+"?access_token=query-token-value", "{}")
	logs := f.logs.String()
	for _, secret := range []string{good, "bad-token-value", "query-token-value", f.is.ClientSecret} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the log:\n%s", logs)
		}
	}
	for _, want := range []string{
		`"decision":"allow"`, `"subject":"ada"`, `"client":"cli"`, `"operation":"tools/call get_entry"`,
		`"decision":"deny","method":"POST","reason":"insufficient scope: needs entries:write"`, `"issuer":"` + f.is.URL,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s:\n%s", want, logs)
		}
	}
}

func TestRule_BodyReadOnceAndHandedOn(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	body := call("get_entry")
	r := f.post(t, f.jwt(), body)
	if r.json(t)["body"] != body {
		t.Fatalf("handler saw %q", r.json(t)["body"])
	}
	// The handler gets the operations read, not only the bytes.
	if ops, _ := r.json(t)["ops"].([]any); len(ops) != 1 || ops[0] != "tools/call get_entry" {
		t.Fatalf("handler saw operations %v", r.json(t)["ops"])
	}
	g := newFixture(t, fixtureConfig{maxBody: 64})
	if r := g.post(t, g.jwt(), `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"`+strings.Repeat("x", 100)+`"}}`); r.StatusCode != 413 {
		t.Fatalf("oversized body: %d", r.StatusCode)
	}
}

func TestRule_VerifiedIdentityReachesHandler(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	m := f.post(t, f.jwt("sub", "ada", "client_id", "inspector", "scope", "entries:read tags:read"), initialize).json(t)
	if m["subject"] != "ada" || m["client"] != "inspector" {
		t.Fatalf("%v", m)
	}
	if sc, _ := m["scopes"].([]any); len(sc) != 2 {
		t.Fatalf("%v", m["scopes"])
	}
}

func TestRule_ScopeMap_TemplatesExactAndDefault(t *testing.T) {
	m := auth.ScopeMap{
		"resources/read": {
			"epicme://entries/{id}":      {"entries:read"},
			"epicme://entries/{id}/tags": {"entries:read", "tags:read"},
			"epicme://tags":              {"tags:read"},
			"*":                          {"anything"},
		},
		"tools/call": {"x": {"s"}},
	}
	cases := []struct {
		method, name string
		want         []string
	}{
		{"resources/read", "epicme://entries/12", []string{"entries:read"}},
		{"resources/read", "epicme://entries/12/tags", []string{"entries:read", "tags:read"}},
		{"resources/read", "epicme://tags", []string{"tags:read"}},
		{"resources/read", "epicme://entries/", []string{"entries:read"}}, // {id} may expand to nothing, and the libraries dispatch it so
		{"resources/read", "epicme://other", []string{"anything"}},
		{"resources/subscribe", "epicme://entries/3", []string{"entries:read"}},
		{"tools/call", "x", []string{"s"}},
		{"tools/call", "unknown", nil},
		{"initialize", "", nil},
		{"tools/list", "", nil},
	}
	for _, tc := range cases {
		if got := m.Required(tc.method, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s = %v, want %v", tc.method, tc.name, got, tc.want)
		}
	}
}

// TestRule_ScopeMap_URITemplateForms: a resource URI needs the scopes of
// the template that the MCP libraries would dispatch it to (RFC 6570
// matching, as github.com/yosida95/uritemplate does it for both).
func TestRule_ScopeMap_URITemplateForms(t *testing.T) {
	m := auth.ScopeMap{"resources/read": {
		"files:///{+path}":           {"files"},
		"search://q{?text,limit}":    {"search"},
		"docs://{id}.json":           {"docs"},
		"tree://root{/a,b}":          {"tree"},
		"frag://page{#section}":      {"frag"},
		"exact://a/{x}/b":            {"ab"},
		"exact://a/{x}/{y}/c/{z}":    {"deep"},
		"label://host{.domain}/info": {"label"},
	}}
	cases := map[string]string{
		"files:///etc/passwd":        "files",
		"search://q":                 "search",
		"search://q?text=hi&limit=3": "search",
		"docs://12.json":             "docs",
		"tree://root/x":              "tree",
		"frag://page#intro":          "frag",
		"exact://a/1/b":              "ab",
		"exact://a/1/2/c/3":          "deep",
		"label://host.example/info":  "label",
		"exact://a/1/b/extra":        "",
		"search://qx":                "",
		"other://a/1/b":              "",
		// An expression may expand to nothing (RFC 6570 §3.2.1): mcp-go
		// and the Go SDK dispatch these URIs to the template's handler, so
		// they need that template's scopes.
		"exact://a//b": "ab",
		"docs://.json": "docs",
		"frag://page":  "frag",
	}
	for uri, want := range cases {
		got := m.Required("resources/read", uri)
		if (want == "" && got != nil) || (want != "" && (len(got) != 1 || got[0] != want)) {
			t.Errorf("%s: %v, want %q", uri, got, want)
		}
	}
}

// TestAttack_LongResourceURIBeforeAuthentication: the middleware decides a
// request's scopes before its token (to name them in the 401), so matching
// a resource URI against the templates must cost about the URI's length,
// not a multiple of it: a 1 MiB URI, sent without a token, allocates less
// than its own size again.
func TestAttack_LongResourceURIBeforeAuthentication(t *testing.T) {
	m := auth.ScopeMap{"resources/read": {"epicme://entries/{id}": {"entries:read"}, "epicme://entries/{id}/tags": {"tags:read"}}}
	uri := "epicme://entries/" + strings.Repeat("a", 1<<20)
	m.Required("resources/read", "epicme://entries/1") // compile the templates first
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := m.Required("resources/read", uri)
	runtime.ReadMemStats(&after)
	if !slices.Equal(got, []string{"entries:read"}) {
		t.Fatalf("scopes %v", got)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("matching a 1 MiB URI allocated %d bytes", n)
	}
}

// TestRule_ScopeMap_CheckTemplates: a resource row holding "{" that is not
// an RFC 6570 template would match nothing; CheckTemplates names it.
func TestRule_ScopeMap_CheckTemplates(t *testing.T) {
	good := auth.ScopeMap{"resources/read": {"epicme://entries/{id}": {"a"}, "*": {"b"}}, "tools/call": {"{odd}": {"c"}}}
	if err := good.CheckTemplates(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"epicme://entries/{entry-id}", "epicme://entries/{ id }", "epicme://entries/{id"} {
		m := auth.ScopeMap{"resources/subscribe": {bad: {"a"}}}
		if err := m.CheckTemplates(); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestRule_RequireBearerMiddleware(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RequireBearer accepted options without a resource URL")
		}
	}()
	v := auth.VerifierFunc(func(context.Context, string) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{Issuer: "i", Subject: "s", Scopes: []string{"a"}}, nil
	})
	mw := auth.RequireBearer(v, auth.Options{ResourceURL: "https://x.example/mcp", AuthorizationServers: []string{"https://i.example"}})
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "https://x.example/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer t")
	var seen *auth.TokenInfo
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = auth.TokenInfoFromContext(r.Context())
	})).ServeHTTP(w, req)
	if seen == nil || seen.Subject != "s" || !seen.HasScopes("a") || seen.HasScopes("b") {
		t.Fatalf("%+v", seen)
	}
	auth.RequireBearer(v, auth.Options{})
}
