package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestEmbeddedAuthorizationServer serves the journal with the embedded
// authorization server, as `epicme serve` does by default, and walks one
// client through registration, sign-in, consent, token and a tool call.
func TestEmbeddedAuthorizationServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hash, _ := password.HashWith("a good password", password.Params{Memory: 1024, Time: 1, Threads: 1})
	if _, err := store.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "me@example.com", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	logger := slog.New(slog.DiscardHandler)
	setup, err := embeddedAuth(ctx, &authServerFlags{accessTokenTTL: 15 * time.Minute, kek: kekSource()}, ts.URL, dir, store, logger)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	m, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	srv, err := httpserver.New(httpserver.Config{MCP: m.HTTPHandler(), Auth: setup.Middleware, Ready: store.Ping, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	setup.Mount(srv)
	handler = srv.HTTP.Handler

	getJSON := func(path string) map[string]any {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return v
	}
	if md := getJSON("/.well-known/oauth-authorization-server"); md["issuer"] != ts.URL {
		t.Fatalf("issuer %v, want %s", md["issuer"], ts.URL)
	}
	if prm := getJSON("/.well-known/oauth-protected-resource/mcp"); prm["resource"] != ts.URL+"/mcp" {
		t.Fatalf("protected resource metadata %v", prm)
	}

	access := obtainToken(t, ts.URL, ts.URL+"/mcp", "me@example.com", "a good password")

	// The token works on /mcp and names the signed-in user.
	j := &journal{URL: ts.URL, store: store}
	c := j.client(t, access)
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	if b, _ := json.Marshal(res.StructuredContent); !strings.Contains(string(b), "me@example.com") {
		t.Fatalf("whoami answered %s", b)
	}

	// A restart on the same data directory keeps the token valid.
	again, err := embeddedAuth(ctx, &authServerFlags{kek: kekSource()}, ts.URL, dir, store, logger)
	if err != nil {
		t.Fatal(err)
	}
	_ = again
	kek1, _ := loadKEK(dir)
	kek2, _ := loadKEK(dir)
	if string(kek1) != string(kek2) || len(kek1) != authserver.KEKSize {
		t.Fatal("the key-encryption key must be created once and kept")
	}
}

// obtainToken plays a client and its user's browser against the
// authorization server at issuer: registration, authorization, sign-in,
// consent to every scope, and the code exchange for a token for resource.
func obtainToken(t *testing.T, issuer, resource, email, pw string) string {
	t.Helper()
	return obtainTokens(t, issuer, resource, email, pw).access
}

// tokens are what a code exchange gave a public client.
type tokens struct {
	access, refresh, clientID string
}

// obtainTokens is obtainToken returning the refresh token and client id too.
func obtainTokens(t *testing.T, issuer, resource, email, pw string) tokens {
	t.Helper()
	ts := struct{ URL string }{issuer}
	// Register, authorize, sign in, consent.
	reg, _ := http.Post(ts.URL+authserver.RegistrationPath, "application/json",
		strings.NewReader(`{"client_name":"cli test","redirect_uris":["http://127.0.0.1:5000/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`))
	var client map[string]any
	json.NewDecoder(reg.Body).Decode(&client)
	reg.Body.Close()
	clientID, _ := client["client_id"].(string)
	if reg.StatusCode != http.StatusCreated || clientID == "" {
		t.Fatalf("registration: %d %v", reg.StatusCode, client)
	}
	verifier := strings.Repeat("x", 43)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"http://127.0.0.1:5000/cb"},
		"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(resp *http.Response, err error) (string, *http.Response) {
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp
	}
	body, _ := page(browser.Get(ts.URL + authserver.AuthorizePath + "?" + q.Encode()))
	fields := func(body string) url.Values {
		f := url.Values{}
		for _, m := range regexp.MustCompile(`name="(csrf|request|consent)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
			f.Set(m[1], html.UnescapeString(m[2]))
		}
		return f
	}
	f := fields(body)
	f.Set("email", email)
	f.Set("password", pw)
	body, _ = page(browser.PostForm(ts.URL+authserver.SignInPath, f))
	f = fields(body)
	f.Set("decision", "allow")
	f["scope"] = epicme.AllScopes
	_, resp := page(browser.PostForm(ts.URL+authserver.ConsentPath, f))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if resp.StatusCode != http.StatusFound || code == "" || loc.Query().Get("iss") != ts.URL {
		t.Fatalf("consent answered %d, Location %s", resp.StatusCode, loc)
	}
	tokResp, err := http.PostForm(ts.URL+authserver.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"http://127.0.0.1:5000/cb"}, "code_verifier": {verifier}, "client_id": {clientID}, "resource": {resource}})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	json.NewDecoder(tokResp.Body).Decode(&tok)
	tokResp.Body.Close()
	access, _ := tok["access_token"].(string)
	if access == "" {
		t.Fatalf("token response %v", tok)
	}
	refresh, _ := tok["refresh_token"].(string)
	return tokens{access: access, refresh: refresh, clientID: clientID}
}

// TestSplitDeployment runs `epicme authserver` and `epicme serve --issuer`
// as two servers with two databases: /mcp verifies the tokens by JWT and by
// introspection.
func TestSplitDeployment(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	var asHandler, mcpHandler http.Handler
	asTS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asHandler.ServeHTTP(w, r) }))
	t.Cleanup(asTS.Close)
	mcpTS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mcpHandler.ServeHTTP(w, r) }))
	t.Cleanup(mcpTS.Close)
	resource := mcpTS.URL + httpserver.MCPPath

	asDir := t.TempDir()
	asStore, err := sqlite.Open(ctx, filepath.Join(asDir, "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { asStore.Close() })
	hash, _ := password.HashWith("split password", password.Params{Memory: 1024, Time: 1, Threads: 1})
	if _, err := asStore.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "split@example.com", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	asSrv, issuer, err := authServerOnly(ctx, &authServerFlags{accessTokenTTL: 15 * time.Minute, kek: kekSource()}, asTS.URL, resource, asDir, asStore, logger)
	if err != nil {
		t.Fatal(err)
	}
	asHandler = asSrv.HTTP.Handler
	if resp, _ := http.Post(asTS.URL+"/mcp", "application/json", strings.NewReader("{}")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the authorization server alone must not serve /mcp: %d", resp.StatusCode)
	}
	kek, _ := loadKEK(asDir)
	rs, rsSecret, err := authserver.AddClient(ctx, asStore, kek, authserver.NewClient{Name: "journal", ResourceServer: true, Resource: resource}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	for _, verifier := range []string{"jwt", "introspection"} {
		t.Run(verifier, func(t *testing.T) {
			mcpStore, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mcpStore.Close() })
			flags := oauthFlags{issuer: issuer, tokenVerifier: verifier, introspectionClientID: rs.ID,
				introspectionClientSecret: rsSecret, verifierCacheTTL: time.Nanosecond}
			setup, err := externalAuth(ctx, &flags, mcpTS.URL, mcpStore, logger, env{})
			if err != nil {
				t.Fatal(err)
			}
			secret := make([]byte, 32)
			rand.Read(secret)
			m, err := mcpserver.New(mcpStore, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			srv, err := httpserver.New(httpserver.Config{MCP: m.HTTPHandler(), Auth: setup.Middleware, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			setup.Mount(srv)
			mcpHandler = srv.HTTP.Handler

			access := obtainToken(t, asTS.URL, resource, "split@example.com", "split password")
			c := (&journal{URL: mcpTS.URL, store: mcpStore}).client(t, access)
			res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
			if err != nil || res.IsError {
				t.Fatalf("whoami: %v %+v", err, res)
			}
			if b, _ := json.Marshal(res.StructuredContent); !strings.Contains(string(b), issuer) {
				t.Fatalf("whoami answered %s, want a user of issuer %s", b, issuer)
			}
			if verifier != "introspection" {
				return
			}
			// Revocation at the authorization server reaches /mcp at the
			// next introspection.
			var tokenClient string
			parts := strings.Split(access, ".")
			claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
			var cl map[string]any
			json.Unmarshal(claims, &cl)
			tokenClient, _ = cl["client_id"].(string)
			resp, err := http.PostForm(asTS.URL+authserver.RevocationPath, url.Values{"token": {access}, "client_id": {tokenClient}})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %v %v", resp, err)
			}
			req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
			req.Header.Set("Authorization", "Bearer "+access)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a revoked token on /mcp: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// --refresh-reuse-grace reaches authserver.Config as it reads the value:
// left out, zero (its default); 0, negative (none); too long or negative,
// refused with the range.
func TestReuseGraceFlag(t *testing.T) {
	grace := func(f authServerFlags) time.Duration {
		return f.config("https://as.example", "https://as.example/mcp", nil, nil, nil).RefreshReuseGrace
	}
	if d := grace(authServerFlags{}); d != 0 {
		t.Errorf("flag left out: RefreshReuseGrace = %v, want 0 (authserver's default)", d)
	}
	for in, want := range map[string]time.Duration{"0": -1, "0s": -1, "500ms": 500 * time.Millisecond, "1m": time.Minute} {
		var f authServerFlags
		if err := f.refreshReuseGrace.Set(in); err != nil || grace(f) != want {
			t.Errorf("Set(%q): RefreshReuseGrace = %v, %v; want %v", in, grace(f), err, want)
		}
	}
	for _, bad := range []string{"-1s", "61s", "2", "x", ""} {
		var g reuseGrace
		if err := g.Set(bad); err == nil || !strings.Contains(err.Error(), "from 0 (none) to 1m0s") {
			t.Errorf("Set(%q) = %v, want the range refused", bad, err)
		}
	}
	var g reuseGrace
	if g.String() != "2s" {
		t.Errorf("default shown as %q, want 2s", g.String())
	}
}
