package auth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/dpoptest"
	"github.com/epicme/epicme/internal/testenv"
)

const listTools = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

// dpopPost sends listTools to the fixture's MCP endpoint with
// Authorization: DPoP and a fresh proof by k.
func (f *fixture) dpopPost(t *testing.T, k dpoptest.Key, token string) reply {
	t.Helper()
	cl := map[string]any{"jti": randomToken(), "htm": "POST", "htu": f.MCP, "iat": time.Now().Unix(), "ath": ath(token)}
	return do(t, http.MethodPost, f.MCP, listTools, "Authorization", "DPoP "+token, "DPoP", k.Proof(t, cl, nil))
}

// boundToken is a token bound to jkt: a JWT with cnf.JKT (RFC 9449 §6.1),
// or an opaque token whose introspection answer has it (§6.2).
func (f *fixture) boundToken(verifier, jkt string) string {
	if verifier == "introspection" {
		return f.is.opaque(f.is.claims(f.MCP, "cnf", map[string]any{"jkt": jkt}, "token_type", "DPoP"))
	}
	return f.jwt("cnf", map[string]any{"jkt": jkt})
}

func wantDPoPChallenge(t *testing.T, r reply, code string) {
	t.Helper()
	h := r.Header.Get("WWW-Authenticate")
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(h, "DPoP ") || !strings.Contains(h, `algs="ES256`) ||
		(code != "" && !strings.Contains(h, `error="`+code+`"`)) {
		t.Fatalf("status %d, WWW-Authenticate %q; want 401 DPoP challenge with %q", r.StatusCode, h, code)
	}
}

func TestRule_RFC9449_7_1_DPoPBoundTokenWithProofAccepted(t *testing.T) {
	for _, verifier := range []string{"jwt", "introspection"} {
		f, k := newFixture(t, fixtureConfig{verifier: verifier}), dpoptest.NewKey(t)
		tok := f.boundToken(verifier, k.JKT)
		if r := f.dpopPost(t, k, tok); r.StatusCode != 200 {
			t.Fatalf("%s: status %d %s %s", verifier, r.StatusCode, r.Header.Get("WWW-Authenticate"), r.Body)
		}
	}
}

// TestAttack_StolenDPoPTokenReplayedWithoutKey: the thief has the token but
// not the key: as Bearer it is refused, and proofs by another key too.
func TestAttack_StolenDPoPTokenReplayedWithoutKey(t *testing.T) {
	f, owner, thief := newFixture(t, fixtureConfig{}), dpoptest.NewKey(t), dpoptest.NewKey(t)
	tok := f.jwt("cnf", map[string]any{"jkt": owner.JKT})
	wantDPoPChallenge(t, f.post(t, tok, listTools), auth.ErrorInvalidToken)
	wantDPoPChallenge(t, f.dpopPost(t, thief, tok), auth.ErrorInvalidDPoPProof)
	// And a proof captured from the owner cannot be replayed.
	cl := map[string]any{"jti": randomToken(), "htm": "POST", "htu": f.MCP, "iat": time.Now().Unix(), "ath": ath(tok)}
	p := owner.Proof(t, cl, nil)
	if r := do(t, http.MethodPost, f.MCP, listTools, "Authorization", "DPoP "+tok, "DPoP", p); r.StatusCode != 200 {
		t.Fatalf("first use: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	r := do(t, http.MethodPost, f.MCP, listTools, "Authorization", "DPoP "+tok, "DPoP", p)
	wantDPoPChallenge(t, r, auth.ErrorInvalidDPoPProof)
	if strings.Contains(r.Body, "ey") || !strings.Contains(r.Body, "invalid_dpop_proof") {
		t.Fatalf("body %q: want only the OAuth error", r.Body)
	}
}

func TestRule_RFC9449_7_2_BoundTokenAsBearerRefused(t *testing.T) {
	f, k := newFixture(t, fixtureConfig{verifier: "introspection"}), dpoptest.NewKey(t)
	wantDPoPChallenge(t, f.post(t, f.boundToken("introspection", k.JKT), listTools), auth.ErrorInvalidToken)
}

func TestRule_RFC9449_7_1_ProofRequiredWithDPoPScheme(t *testing.T) {
	f, k := newFixture(t, fixtureConfig{}), dpoptest.NewKey(t)
	tok := f.jwt("cnf", map[string]any{"jkt": k.JKT})
	wantDPoPChallenge(t, do(t, http.MethodPost, f.MCP, listTools, "Authorization", "DPoP "+tok), auth.ErrorInvalidDPoPProof)
	// An unbound token cannot be sent with the DPoP scheme.
	wantDPoPChallenge(t, f.dpopPost(t, k, f.jwt()), auth.ErrorInvalidToken)
}

func TestRule_RFC9449_7_1_RequireDPoPRefusesBearer(t *testing.T) {
	f := newFixture(t, fixtureConfig{opts: func(o *auth.Options) { o.RequireDPoP = true }})
	wantDPoPChallenge(t, f.post(t, f.jwt(), listTools), auth.ErrorInvalidToken)
	wantDPoPChallenge(t, f.post(t, "", listTools), "")
	m := do(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp", "").json(t)
	if m["dpop_bound_access_tokens_required"] != true {
		t.Fatalf("metadata %v lacks dpop_bound_access_tokens_required", m)
	}
	k := dpoptest.NewKey(t)
	if r := f.dpopPost(t, k, f.jwt("cnf", map[string]any{"jkt": k.JKT})); r.StatusCode != 200 {
		t.Fatalf("DPoP with RequireDPoP: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

func TestRule_RFC9449_7_BearerClientsKeepWorking(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	if r := f.post(t, f.jwt(), listTools); r.StatusCode != 200 {
		t.Fatalf("bearer: %d", r.StatusCode)
	}
	m := do(t, http.MethodGet, f.srv.URL+"/.well-known/oauth-protected-resource/mcp", "").json(t)
	if _, ok := m["dpop_bound_access_tokens_required"]; ok {
		t.Fatalf("metadata %v requires DPoP without the option", m)
	}
}

// TestRule_RFC9449_7_CORSAllowsTheDPoPHeader: a browser client sends its
// proof in the DPoP header, which the preflight must allow.
func TestRule_RFC9449_7_CORSAllowsTheDPoPHeader(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	r := do(t, http.MethodOptions, f.MCP, "", "Origin", "http://localhost:6274",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, dpop")
	if r.StatusCode != http.StatusNoContent || !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "dpop") {
		t.Fatalf("preflight: %d allows %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Headers"))
	}
}

// noncePost sends listTools with a proof by k carrying nonce ("" for none).
func (f *fixture) noncePost(t *testing.T, k dpoptest.Key, token, nonce string) reply {
	t.Helper()
	cl := map[string]any{"jti": randomToken(), "htm": "POST", "htu": f.MCP, "iat": time.Now().Unix(), "ath": ath(token)}
	if nonce != "" {
		cl["nonce"] = nonce
	}
	return do(t, http.MethodPost, f.MCP, listTools, "Authorization", "DPoP "+token, "DPoP", k.Proof(t, cl, nil))
}

// TestRule_RFC9449_9_ResourceServerNonce: with server nonces on, a proof
// without one gets 401 use_dpop_nonce and a DPoP-Nonce header (§9); a
// proof with that nonce passes, on any instance holding the same key; a
// made-up nonce or an expired one is refused; nonces off, none is needed.
func TestRule_RFC9449_9_ResourceServerNonce(t *testing.T) {
	key := []byte("a nonce key of at least thirty-two bytes")
	newChecker := func(now func() time.Time) *auth.DPoPChecker {
		c, err := auth.NewDPoPChecker(auth.DPoPOptions{NonceKey: key, NonceLifetime: 20 * time.Second, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clock := testenv.NewClock(time.Now())
	now := clock.Now
	f := newFixture(t, fixtureConfig{opts: func(o *auth.Options) { o.DPoP = newChecker(now) }})
	k := dpoptest.NewKey(t)
	tok := f.jwt("cnf", map[string]any{"jkt": k.JKT})

	r := f.noncePost(t, k, tok, "")
	wantDPoPChallenge(t, r, auth.ErrorUseDPoPNonce)
	nonce := r.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("a use_dpop_nonce challenge must carry a DPoP-Nonce header")
	}
	if r := f.noncePost(t, k, tok, nonce); r.StatusCode != 200 {
		t.Fatalf("with the nonce: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	// Another instance, same key: the same nonce passes.
	g := newFixture(t, fixtureConfig{opts: func(o *auth.Options) { o.DPoP = newChecker(now) }})
	gtok := g.jwt("cnf", map[string]any{"jkt": k.JKT})
	if r := g.noncePost(t, k, gtok, nonce); r.StatusCode != 200 {
		t.Fatalf("another instance refused the nonce: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	wantDPoPChallenge(t, f.noncePost(t, k, tok, "bm90LWEtbm9uY2UtdGhpcy1zZXJ2ZXItbWFkZQ"), auth.ErrorUseDPoPNonce)
	// Two steps later the nonce has expired (the proof's iat still within
	// the 60 s window, so the nonce is what refuses it).
	clock.Advance(41 * time.Second)
	wantDPoPChallenge(t, f.noncePost(t, k, tok, nonce), auth.ErrorUseDPoPNonce)
}

// TestRule_RFC9449_9_NoncesOffByDefault: without a nonce key no nonce is
// asked for nor handed out.
func TestRule_RFC9449_9_NoncesOffByDefault(t *testing.T) {
	f, k := newFixture(t, fixtureConfig{}), dpoptest.NewKey(t)
	r := f.noncePost(t, k, f.jwt("cnf", map[string]any{"jkt": k.JKT}), "")
	if r.StatusCode != 200 || r.Header.Get("DPoP-Nonce") != "" {
		t.Fatalf("status %d, DPoP-Nonce %q", r.StatusCode, r.Header.Get("DPoP-Nonce"))
	}
}
