package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.Hash.New needs the hashes linked in
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testIssuer is a small but real authorization server on loopback: RFC 8414
// metadata, a JWKS, an RFC 7662 introspection endpoint with client
// authentication, and real signatures in every algorithm the verifier
// accepts, made by hand with crypto/*.
type testIssuer struct {
	t    testing.TB
	srv  *httptest.Server
	URL  string
	keys map[string]*signingKey // by kid

	ClientID, ClientSecret string

	mu     sync.Mutex
	tokens map[string]map[string]any // opaque token → introspection answer

	JWKSHits       atomic.Int64
	MetadataHits   atomic.Int64
	IntrospectHits atomic.Int64
	Down           atomic.Bool // every endpoint answers 500
	// IntrospectDelay slows introspection so concurrent calls overlap.
	IntrospectDelay time.Duration
	// HiddenKids are left out of the JWKS until revealed.
	hidden sync.Map
}

type signingKey struct {
	kid string
	alg string
	key crypto.Signer
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	ec384Key *ecdsa.PrivateKey
	ec521Key *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys() {
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if ec521Key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	testKeys()
	is := &testIssuer{
		t:            t,
		ClientID:     "mcp-resource",
		ClientSecret: "s3cret:with/odd+chars",
		tokens:       map[string]map[string]any{},
		keys: map[string]*signingKey{
			"rsa-1":   {"rsa-1", "RS256", rsaKey},
			"rsa-new": {"rsa-new", "RS256", rsaKey2},
			"ec-1":    {"ec-1", "ES256", ecKey},
			"ed-1":    {"ed-1", "EdDSA", edKey},
			// One key per further algorithm the verifier accepts, each JWK
			// pinning its alg.
			"rs384": {"rs384", "RS384", rsaKey},
			"rs512": {"rs512", "RS512", rsaKey},
			"ps256": {"ps256", "PS256", rsaKey},
			"ps384": {"ps384", "PS384", rsaKey},
			"ps512": {"ps512", "PS512", rsaKey},
			"es384": {"es384", "ES384", ec384Key},
			"es512": {"es512", "ES512", ec521Key},
		},
	}
	is.hidden.Store("rsa-new", true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", is.metadata)
	mux.HandleFunc("GET /jwks", is.jwks)
	mux.HandleFunc("POST /introspect", is.introspect)
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) metadata(w http.ResponseWriter, r *http.Request) {
	is.MetadataHits.Add(1)
	if is.Down.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                 is.URL,
		"jwks_uri":               is.URL + "/jwks",
		"introspection_endpoint": is.URL + "/introspect",
	})
}

func (is *testIssuer) jwks(w http.ResponseWriter, r *http.Request) {
	is.JWKSHits.Add(1)
	if is.Down.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var keys []map[string]any
	for kid, k := range is.keys {
		if _, hidden := is.hidden.Load(kid); hidden {
			continue
		}
		keys = append(keys, publicJWK(k))
	}
	// A key this package must skip: symmetric keys have no place here.
	keys = append(keys, map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
	writeJSON(w, map[string]any{"keys": keys})
}

func (is *testIssuer) reveal(kid string) { is.hidden.Delete(kid) }

func publicJWK(k *signingKey) map[string]any {
	enc := base64.RawURLEncoding.EncodeToString
	switch p := k.key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": k.kid, "use": "sig", "alg": k.alg, "n": enc(p.N.Bytes()), "e": enc(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, _ := p.Bytes() // 0x04 || X || Y
		n := (len(b) - 1) / 2
		return map[string]any{"kty": "EC", "kid": k.kid, "use": "sig", "crv": p.Curve.Params().Name, "x": enc(b[1 : 1+n]), "y": enc(b[1+n:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": k.kid, "crv": "Ed25519", "x": enc(p)}
	}
	panic("unknown key")
}

func (is *testIssuer) introspect(w http.ResponseWriter, r *http.Request) {
	is.IntrospectHits.Add(1)
	if is.Down.Load() {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != urlEscape(is.ClientID) || secret != urlEscape(is.ClientSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="issuer"`)
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]any{"error": "invalid_client"})
		return
	}
	if is.IntrospectDelay > 0 {
		time.Sleep(is.IntrospectDelay)
	}
	is.mu.Lock()
	ans, ok := is.tokens[r.PostFormValue("token")]
	is.mu.Unlock()
	if !ok {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	writeJSON(w, ans)
}

// opaque registers an opaque token whose introspection answer is active with
// claims, and returns it.
func (is *testIssuer) opaque(claims map[string]any) string {
	tok := randomToken()
	ans := map[string]any{"active": true, "iss": is.URL, "token_type": "Bearer"}
	for k, v := range claims {
		ans[k] = v
	}
	is.mu.Lock()
	is.tokens[tok] = ans
	is.mu.Unlock()
	return tok
}

// revoke makes a token inactive.
func (is *testIssuer) revoke(tok string) {
	is.mu.Lock()
	delete(is.tokens, tok)
	is.mu.Unlock()
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a compact JWS with the key kid; header entries override the
// defaults (alg of the key, typ at+jwt).
func (is *testIssuer) sign(kid string, header, claims map[string]any) string {
	k := is.keys[kid]
	h := map[string]any{"alg": k.alg, "kid": kid, "typ": "at+jwt"}
	for name, v := range header {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	return signWith(k, h, claims)
}

// signWith assembles a compact JWS by hand with crypto/* (RFC 7515 §7.1,
// RFC 7518 §3, RFC 8037 §3.1), so the verifier's JOSE library never checks
// its own output. The hash follows the header's alg, the key its type.
func signWith(k *signingKey, header, claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := enc(hb) + "." + enc(cb)
	alg, _ := header["alg"].(string)
	h := crypto.SHA256
	switch {
	case strings.HasSuffix(alg, "384"):
		h = crypto.SHA384
	case strings.HasSuffix(alg, "512"):
		h = crypto.SHA512
	}
	hasher := h.New()
	hasher.Write([]byte(input))
	digest := hasher.Sum(nil)
	var sig []byte
	var err error
	switch key := k.key.(type) {
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "PS") {
			sig, err = rsa.SignPSS(rand.Reader, key, h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, h, digest)
		}
	case *ecdsa.PrivateKey:
		// R || S, each the size of the curve (RFC 7518 §3.4), not DER.
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, key, digest)
		size := (key.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, []byte(input))
	}
	if err != nil {
		panic(err)
	}
	return input + "." + enc(sig)
}

// claims returns a valid claim set for resource, changed by the pairs in
// kv (a nil value deletes the claim).
func (is *testIssuer) claims(resource string, kv ...any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":       is.URL,
		"sub":       "user-42",
		"aud":       resource,
		"client_id": "client-7",
		"scope":     "entries:read tags:read",
		"iat":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       randomToken(),
		"email":     "ada@example.com",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func urlEscape(s string) string {
	r := strings.NewReplacer(":", "%3A", "/", "%2F", "+", "%2B")
	return r.Replace(s)
}
