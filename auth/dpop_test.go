package auth_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/dpoptest"
)

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var dpopNow = time.Unix(1_800_000_000, 0)

const dpopToken = "an-access-token"

func dpopClaims(method, htu string) map[string]any {
	return map[string]any{
		"jti": rand.Text(), "htm": method, "htu": htu,
		"iat": dpopNow.Unix(), "ath": ath(dpopToken),
	}
}

func newChecker(t testing.TB) *auth.DPoPChecker {
	t.Helper()
	c, err := auth.NewDPoPChecker(auth.DPoPOptions{Now: func() time.Time { return dpopNow }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// wantDPoPError asserts err is an invalid_dpop_proof whose reason says why.
func wantDPoPError(t *testing.T, err error, reason string) {
	t.Helper()
	var de *auth.DPoPError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want a *DPoPError", err)
	}
	if de.Code != auth.ErrorInvalidDPoPProof || !strings.Contains(de.Reason, reason) {
		t.Fatalf("err = %q %q, want invalid_dpop_proof about %q", de.Code, de.Reason, reason)
	}
}

func TestRule_RFC9449_4_3_ValidProofAccepted(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"), nil)
	got, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	if err != nil || got != k.JKT {
		t.Fatalf("Check = %q, %v; want %q", got, err, k.JKT)
	}
}

func TestRule_RFC9449_4_3_TypIsDPoPJWT(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"), map[jose.HeaderKey]any{jose.HeaderType: "JWT"})
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "typ")
}

func TestRule_RFC9449_4_3_HTMMatchesRequest(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("GET", "https://mcp.example/mcp"), nil)
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "method")
}

func TestRule_RFC9449_4_3_HTUMatchesRequest(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://other.example/mcp"), nil)
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "another URL")

	p = k.Proof(t, dpopClaims("POST", "https://mcp.example/other"), nil)
	_, err = c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "another URL")
}

func TestRule_RFC9449_4_3_HTUNormalised(t *testing.T) {
	// Query and fragment are ignored; scheme and host compare without
	// case; default ports and percent-encoded unreserved characters
	// normalise (RFC 3986 §6.2.2, §6.2.3).
	for _, tc := range []struct{ htu, target string }{
		{"https://mcp.example/mcp", "https://mcp.example/mcp?session=1"},
		{"https://mcp.example/mcp#frag", "https://mcp.example/mcp"},
		{"HTTPS://MCP.Example/mcp", "https://mcp.example/mcp"},
		{"https://mcp.example:443/mcp", "https://mcp.example/mcp"},
		{"http://127.0.0.1:80/mcp", "http://127.0.0.1/mcp"},
		{"https://mcp.example/%6Dcp", "https://mcp.example/mcp"},
		{"https://mcp.example", "https://mcp.example/"},
	} {
		c, k := newChecker(t), dpoptest.NewKey(t)
		p := k.Proof(t, dpopClaims("POST", tc.htu), nil)
		if _, err := c.Check("POST", mustURL(tc.target), p, dpopToken, k.JKT); err != nil {
			t.Errorf("htu %s for %s: %v", tc.htu, tc.target, err)
		}
	}
	// Path case is significant.
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/MCP"), nil)
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "another URL")
}

func TestRule_RFC9449_4_3_IATWithinWindow(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		cl := dpopClaims("POST", "https://mcp.example/mcp")
		cl["iat"] = dpopNow.Add(skew).Unix()
		_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), k.Proof(t, cl, nil), dpopToken, k.JKT)
		wantDPoPError(t, err, "iat")
	}
}

func TestRule_RFC9449_11_1_JTINotReplayed(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"), nil)
	if _, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	wantDPoPError(t, err, "already used")
}

func TestRule_RFC9449_4_3_ATHMatchesToken(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	cl := dpopClaims("POST", "https://mcp.example/mcp")
	cl["ath"] = ath("another-token")
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), k.Proof(t, cl, nil), dpopToken, k.JKT)
	wantDPoPError(t, err, "ath")
	delete(cl, "ath")
	_, err = c.Check("POST", mustURL("https://mcp.example/mcp"), k.Proof(t, cl, nil), dpopToken, k.JKT)
	wantDPoPError(t, err, "ath")
}

func TestRule_RFC9449_4_3_RequiredClaims(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	for _, name := range []string{"jti", "htm", "htu", "iat"} {
		cl := dpopClaims("POST", "https://mcp.example/mcp")
		delete(cl, name)
		_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), k.Proof(t, cl, nil), dpopToken, k.JKT)
		wantDPoPError(t, err, "lacks")
	}
}

// TestAttack_StolenDPoPTokenWithoutKey: an attacker who stole a DPoP-bound
// token makes proofs with a key of their own; the thumbprint is not the
// token's cnf.JKT.
func TestAttack_StolenDPoPTokenWithoutKey(t *testing.T) {
	c, owner, thief := newChecker(t), dpoptest.NewKey(t), dpoptest.NewKey(t)
	p := thief.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"), nil)
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, owner.JKT)
	wantDPoPError(t, err, "bound")
}

func TestRule_RFC9449_4_3_SignatureVerifiesWithJWK(t *testing.T) {
	c, k, other := newChecker(t), dpoptest.NewKey(t), dpoptest.NewKey(t)
	// The header carries other's public key but k signed the proof.
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"),
		map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: &other.Priv.PublicKey}})
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, other.JKT)
	wantDPoPError(t, err, "signature")
}

func TestRule_RFC9449_4_3_JWKIsPublic(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"),
		map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: k.Priv}})
	_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), p, dpopToken, k.JKT)
	if err == nil {
		t.Fatal("a proof carrying a private key was accepted")
	}
}

// forgedProof builds a JWS with the given alg by hand, as an attacker
// would; go-jose does not sign with "none".
func forgedProof(alg, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": alg,
		"jwk": map[string]string{"kty": "oct", "k": enc([]byte("secret"))}})
	cl, _ := json.Marshal(dpopClaims("POST", "https://mcp.example/mcp"))
	return enc(h) + "." + enc(cl) + "." + sig
}

func TestRule_RFC9449_4_2_AlgNoneRefused(t *testing.T) {
	_, err := newChecker(t).Check("POST", mustURL("https://mcp.example/mcp"), forgedProof("none", ""), dpopToken, "")
	wantDPoPError(t, err, "none")
}

func TestRule_RFC9449_4_2_HMACRefused(t *testing.T) {
	_, err := newChecker(t).Check("POST", mustURL("https://mcp.example/mcp"),
		forgedProof("HS256", base64.RawURLEncoding.EncodeToString(make([]byte, 32))), dpopToken, "")
	wantDPoPError(t, err, "HMAC")
	if _, err := auth.NewDPoPChecker(auth.DPoPOptions{Algorithms: []string{"HS256"}}); err == nil {
		t.Fatal("a checker accepting HS256 was built")
	}
}

func TestRule_RFC9449_4_3_OneProofOnly(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	p := k.Proof(t, dpopClaims("POST", "https://mcp.example/mcp"), nil)
	for _, bad := range []string{"", "garbage", p + ", " + p} {
		_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), bad, dpopToken, k.JKT)
		if err == nil {
			t.Fatalf("proof %q accepted", bad)
		}
	}
}

func BenchmarkDPoPCheckES256(b *testing.B) {
	c, err := auth.NewDPoPChecker(auth.DPoPOptions{})
	if err != nil {
		b.Fatal(err)
	}
	k := dpoptest.NewKey(b)
	u := mustURL("https://mcp.example/mcp")
	// A proof is new on every request: sign them beforehand, check in the
	// loop.
	proofs := make([]string, b.N)
	for i := range proofs {
		cl := dpopClaims("POST", u.String())
		cl["iat"] = time.Now().Unix()
		proofs[i] = k.Proof(b, cl, nil)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Check("POST", u, proofs[i], dpopToken, k.JKT); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRule_RFC9449_4_3_IATOutOfRangeRefused(t *testing.T) {
	c, k := newChecker(t), dpoptest.NewKey(t)
	for _, iat := range []any{1e300, -1e300, "now"} {
		cl := dpopClaims("POST", "https://mcp.example/mcp")
		cl["iat"] = iat
		_, err := c.Check("POST", mustURL("https://mcp.example/mcp"), k.Proof(t, cl, nil), dpopToken, k.JKT)
		if err == nil {
			t.Fatalf("iat %v accepted", iat)
		}
	}
}
