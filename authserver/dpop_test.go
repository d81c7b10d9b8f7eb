package authserver_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/internal/dpoptest"
)

// proof signs a DPoP proof by k for method and u at the env's time, with
// ath when token is set (RFC 9449 §4.2).
func proof(t *testing.T, e *testserver.Env, k dpoptest.Key, method, u, token string) string {
	t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": u, "iat": e.Clock.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return k.Proof(t, claims, nil)
}

// tokenRequest posts form to the token endpoint with a DPoP header.
func tokenRequest(t *testing.T, e *testserver.Env, form url.Values, proof string) testserver.Reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return testserver.Do(t, nil, req)
}

// TestRule_RFC9449_5_TokenEndpointBindsTokensToTheProofKey: a token
// request with a DPoP proof gets token_type DPoP and an access token whose
// cnf.JKT is the proof key's thumbprint, in the JWT (§6.1) and in
// introspection (§6.2); the refresh keeps the binding; the metadata lists
// the proof algorithms (§5.1); and the resource server takes the token
// only with a proof by that key, never as a bearer token (§7).
func TestRule_RFC9449_5_TokenEndpointBindsTokensToTheProofKey(t *testing.T) {
	e := testserver.NewEnv(t)
	e.MountMCP()
	if algs := e.Get("/.well-known/oauth-authorization-server").JSON(t)["dpop_signing_alg_values_supported"]; algs == nil || !strings.Contains(mustString(algs), "ES256") {
		t.Fatalf("dpop_signing_alg_values_supported = %v", algs)
	}
	k := dpoptest.NewKey(t)
	form, tokenURL := codeForm(t, e, nil)
	r := tokenRequest(t, e, form, proof(t, e, k, "POST", tokenURL, ""))
	if r.Status != http.StatusOK {
		t.Fatalf("token request with a proof: %d %s", r.Status, r.Body)
	}
	tok := r.JSON(t)
	if tok["token_type"] != "DPoP" {
		t.Fatalf("token_type = %v, want DPoP", tok["token_type"])
	}
	access := tok["access_token"].(string)
	parts := strings.Split(access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if json.Unmarshal(payload, &claims); claims.Cnf.JKT != k.JKT {
		t.Fatalf("cnf.JKT = %q, want the proof key's %q", claims.Cnf.JKT, k.JKT)
	}

	// The resource server: the proof of the key, yes; as Bearer, no.
	call := func(scheme, proof string) int {
		req, _ := http.NewRequest(http.MethodPost, e.Resource, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Authorization", scheme+" "+access)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		return testserver.Do(t, nil, req).Status
	}
	if got := call("DPoP", proof(t, e, k, "POST", e.Resource, access)); got != http.StatusOK {
		t.Fatalf("the bound token with its proof = %d, want 200", got)
	}
	if got := call("Bearer", ""); got != http.StatusUnauthorized {
		t.Fatalf("the bound token as a bearer token = %d, want 401", got)
	}
	thief := dpoptest.NewKey(t)
	if got := call("DPoP", proof(t, e, thief, "POST", e.Resource, access)); got != http.StatusUnauthorized {
		t.Fatalf("the bound token with another key's proof = %d, want 401", got)
	}

	// The public client's refresh token is bound to the key too: without
	// a proof, or with another key's, it is refused and nothing rotates.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": form["client_id"]}
	testserver.WantOAuthError(t, tokenRequest(t, e, refresh, ""), http.StatusBadRequest, "invalid_dpop_proof")
	testserver.WantOAuthError(t, tokenRequest(t, e, refresh, proof(t, e, thief, "POST", tokenURL, "")), http.StatusBadRequest, "invalid_dpop_proof")
	// With a proof by the key it refreshes, and the binding carries on.
	r = tokenRequest(t, e, refresh, proof(t, e, k, "POST", tokenURL, ""))
	if r.Status != http.StatusOK || r.JSON(t)["token_type"] != "DPoP" {
		t.Fatalf("refresh with a proof: %d %s", r.Status, r.Body)
	}
	refresh.Set("refresh_token", r.JSON(t)["refresh_token"].(string))
	testserver.WantOAuthError(t, tokenRequest(t, e, refresh, ""), http.StatusBadRequest, "invalid_dpop_proof")
	if r := tokenRequest(t, e, refresh, proof(t, e, k, "POST", tokenURL, "")); r.Status != http.StatusOK {
		t.Fatalf("the next refresh with a proof: %d %s", r.Status, r.Body)
	}
}

// TestRule_RFC9449_5_BadProofAtTheTokenEndpoint: a proof for another URL
// or method, unsigned, or replayed gets 400 invalid_dpop_proof, and no
// token; the code stays unredeemed.
func TestRule_RFC9449_5_BadProofAtTheTokenEndpoint(t *testing.T) {
	e := testserver.NewEnv(t)
	k := dpoptest.NewKey(t)
	form, tokenURL := codeForm(t, e, nil)
	good := proof(t, e, k, "POST", tokenURL, "")
	for name, proof := range map[string]string{
		"another URL":    proof(t, e, k, "POST", e.Issuer+"/elsewhere", ""),
		"another method": proof(t, e, k, "GET", tokenURL, ""),
		"unsigned":       strings.Join(strings.Split(good, ".")[:2], ".") + ".",
		"not a JWT":      "hello",
	} {
		testserver.WantOAuthError(t, tokenRequest(t, e, form, proof), http.StatusBadRequest, "invalid_dpop_proof")
		_ = name
	}
	if r := tokenRequest(t, e, form, good); r.Status != http.StatusOK {
		t.Fatalf("the good proof after the bad ones: %d %s", r.Status, r.Body)
	}
	testserver.WantOAuthError(t, tokenRequest(t, e, form, good), http.StatusBadRequest, "invalid_dpop_proof")
}

// TestRule_RFC9449_10_DPoPJKTBindsTheCode: an authorization request with
// dpop_jkt binds its code to that key; the code is redeemed only with a
// proof by it, and a malformed dpop_jkt is refused at the authorization
// endpoint.
func TestRule_RFC9449_10_DPoPJKTBindsTheCode(t *testing.T) {
	e := testserver.NewEnv(t)
	k, thief := dpoptest.NewKey(t), dpoptest.NewKey(t)
	form, tokenURL := codeForm(t, e, url.Values{"dpop_jkt": {k.JKT}})
	testserver.WantOAuthError(t, tokenRequest(t, e, form, ""), http.StatusBadRequest, "invalid_dpop_proof")
	testserver.WantOAuthError(t, tokenRequest(t, e, form, proof(t, e, thief, "POST", tokenURL, "")), http.StatusBadRequest, "invalid_dpop_proof")
	if r := tokenRequest(t, e, form, proof(t, e, k, "POST", tokenURL, "")); r.Status != http.StatusOK {
		t.Fatalf("the code with a proof by its key: %d %s", r.Status, r.Body)
	}

	c := e.PublicClient()
	_, ch := testserver.PKCE()
	r := e.Agent().Get(e.AuthzURL(c, ch, url.Values{"dpop_jkt": {"not-a-thumbprint"}}))
	if q := testserver.Location(t, r, c.Redirect); q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "dpop_jkt") {
		t.Fatalf("a malformed dpop_jkt: %v", q)
	}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRule_RFC9449_8_TokenEndpointNonce: with DPoPNonces, a token request
// whose proof has no nonce gets 400 use_dpop_nonce and a DPoP-Nonce header
// (RFC 9449 §8); the same request with a proof carrying that nonce gets a
// DPoP-bound token, from another instance sharing the key-encryption key
// too.
func TestRule_RFC9449_8_TokenEndpointNonce(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.DPoPNonces = true })
	k := dpoptest.NewKey(t)
	form, tokenURL := codeForm(t, e, nil)
	r := tokenRequest(t, e, form, proof(t, e, k, "POST", tokenURL, ""))
	testserver.WantOAuthError(t, r, http.StatusBadRequest, "use_dpop_nonce")
	nonce := r.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	claims := map[string]any{"jti": rand.Text(), "htm": "POST", "htu": tokenURL, "iat": e.Clock.Now().Unix(), "nonce": nonce}
	r = tokenRequest(t, e, form, k.Proof(t, claims, nil))
	if r.Status != http.StatusOK || r.JSON(t)["token_type"] != "DPoP" {
		t.Fatalf("with the nonce: %d %s", r.Status, r.Body)
	}
	// The resource server of the same process shares the checker: the
	// nonce the token endpoint gave is good at /mcp as well.
	if got := e.Server.DPoP().Nonce(); got != nonce {
		t.Fatalf("the shared checker's nonce %q differs from the token endpoint's %q", got, nonce)
	}
	second, err := authserver.New(context.Background(), e.Config)
	if err != nil {
		t.Fatal(err)
	}
	if second.DPoP().Nonce() != nonce {
		t.Fatal("another instance with the same key-encryption key issues other nonces")
	}
}

// codeForm authorizes a public client in the browser (with extra
// authorization parameters) and returns the form that redeems its code,
// and the token endpoint's URL.
func codeForm(t *testing.T, e *testserver.Env, extra url.Values) (url.Values, string) {
	t.Helper()
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	code := e.Agent().Authorize(c, ch, extra)
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.Redirect},
		"code_verifier": {v}, "resource": {e.Resource}, "client_id": {c.ID},
	}, e.Issuer + authserver.TokenPath
}
