// Package idptest is a small enterprise identity provider for tests: it
// publishes RFC 8414 metadata and a JWKS, signs ID tokens for its users,
// and exchanges them for Identity Assertion JWT Authorization Grants
// (ID-JAG) by RFC 8693 token exchange, as
// draft-ietf-oauth-identity-assertion-authz-grant §4 describes. It signs
// with go-jose, a library EpicMe's verifier does not share code with
// beyond the JOSE parsing, and runs on a loopback httptest server.
package idptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token types of RFC 8693 §3 and the ID-JAG draft.
const (
	TokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeIDJAG   = "urn:ietf:params:oauth:token-type:id-jag"
	GrantExchange    = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// App is a client registered at the IdP: its secret there, and its
// client_id at the authorization server its ID-JAGs are for.
type App struct {
	Secret     string
	ASClientID string
}

// IdP is the identity provider.
type IdP struct {
	t      testing.TB
	Issuer string
	key    *ecdsa.PrivateKey
	kid    string
	srv    *httptest.Server

	mu sync.Mutex
	// Apps are the IdP's clients, by client id; set them before the first
	// exchange.
	Apps map[string]App
	// Scope, when set, is the scope claim of the ID-JAGs it issues ("" copies
	// the token request's scope).
	Scope     string
	exchanges int
}

// Exchanges counts the token exchanges that issued an ID-JAG.
func (p *IdP) Exchanges() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exchanges
}

// New starts an IdP until t ends.
func New(t testing.TB) *IdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &IdP{t: t, key: key, kid: "idp-key-1", Apps: map[string]App{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.serveMetadata)
	mux.HandleFunc("GET /jwks", p.serveJWKS)
	mux.HandleFunc("POST /token", p.serveToken)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.Issuer = p.srv.URL
	return p
}

func (p *IdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                   p.Issuer,
		"authorization_endpoint":   p.Issuer + "/authorize", // where employees sign in; not served here
		"token_endpoint":           p.Issuer + "/token",
		"jwks_uri":                 p.Issuer + "/jwks",
		"response_types_supported": []string{"code"},
		"grant_types_supported":    []string{"authorization_code", GrantExchange},
	})
}

func (p *IdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: "ES256", Use: "sig"}}})
}

// Sign signs claims with the IdP's key and the typ header given.
func (p *IdP) Sign(typ string, claims map[string]any) string {
	p.t.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", p.kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, opts)
	if err != nil {
		p.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// IDToken signs an OpenID Connect ID token for user sub (with email) issued
// to the IdP's client app.
func (p *IdP) IDToken(sub, email, app string) string {
	now := time.Now()
	return p.Sign("JWT", map[string]any{
		"iss": p.Issuer, "sub": sub, "aud": app, "email": email,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
}

// IDJAG signs an ID-JAG for sub, for the authorization server audience,
// its client clientID and resource; extra claims replace the defaults (a
// nil value deletes one).
func (p *IdP) IDJAG(sub, audience, clientID, resource string, extra map[string]any) string {
	now := time.Now()
	claims := map[string]any{
		"iss": p.Issuer, "sub": sub, "aud": audience, "client_id": clientID, "resource": resource,
		"jti": randomID(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return p.Sign("oauth-id-jag+jwt", claims)
}

// serveToken is RFC 8693 token exchange: an ID token of one of the IdP's
// users, issued to the requesting app, for an ID-JAG.
func (p *IdP) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "bad form")
		return
	}
	f := r.PostForm
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if u, pw, ok := r.BasicAuth(); ok {
		id, secret = u, pw
	}
	p.mu.Lock()
	app, known := p.Apps[id]
	scope := p.Scope
	p.mu.Unlock()
	if !known || app.Secret != secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if f.Get("grant_type") != GrantExchange || f.Get("requested_token_type") != TokenTypeIDJAG || f.Get("subject_token_type") != TokenTypeIDToken {
		oauthError(w, "unsupported_grant_type", "this IdP exchanges ID tokens for ID-JAGs only")
		return
	}
	tok, err := jwt.ParseSigned(f.Get("subject_token"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		oauthError(w, "invalid_grant", "the subject token is not a JWT")
		return
	}
	var idt jwt.Claims
	var extra struct {
		Email string `json:"email"`
	}
	if err := tok.Claims(&p.key.PublicKey, &idt, &extra); err != nil {
		oauthError(w, "invalid_grant", "the subject token is not this IdP's")
		return
	}
	if err := idt.Validate(jwt.Expected{Issuer: p.Issuer, AnyAudience: jwt.Audience{id}, Time: time.Now()}); err != nil {
		oauthError(w, "invalid_grant", "the ID token is not for this app: "+err.Error())
		return
	}
	if scope == "" {
		scope = f.Get("scope")
	}
	claims := map[string]any{"email": extra.Email}
	if scope != "" {
		claims["scope"] = scope
	}
	jag := p.IDJAG(idt.Subject, f.Get("audience"), app.ASClientID, f.Get("resource"), claims)
	p.mu.Lock()
	p.exchanges++
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      jag,
		"issued_token_type": TokenTypeIDJAG,
		"token_type":        "N_A",
		"expires_in":        300,
		"scope":             scope,
	})
}

func oauthError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
