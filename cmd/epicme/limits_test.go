package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/ratelimit"
	"github.com/epicme/epicme/sqlite"
)

// limitedJournal is newJournal with the abuse limits of serve.
func limitedJournal(t *testing.T, is *jwtIssuer, lim *limitFlags) string {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lim.applyQuota(store)
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	logger := slog.New(slog.DiscardHandler)
	setup, err := externalAuth(ctx, &oauthFlags{issuer: is.URL, tokenVerifier: "jwt"}, ts.URL, store, logger, env{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	source := sourceAddress(false)
	srv, err := httpserver.New(httpserver.Config{
		MCP: m.HTTPHandler(), Auth: lim.mcp(setup.Middleware, source), Guard: lim.endpoints(source),
		Ready: store.Ping, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A stand-in for the token endpoint the embedded server would mount:
	// the guard must answer before it.
	srv.Handle("POST "+authserver.TokenPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	}))
	setup.Mount(srv)
	handler = srv.HTTP.Handler
	return ts.URL
}

func testLimits() *limitFlags {
	big := rateFlag{PerMinute: 100_000, Burst: 100_000}
	return &limitFlags{mcpSource: big, mcpClient: big, mcpUser: big, tokenSource: big, tokenClient: big, authorizeSource: big}
}

func postMCP(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+httpserver.MCPPath, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// want429 checks a refusal: 429, Retry-After of at least a second, and a
// body of the given shape naming the allowance.
func want429(t *testing.T, resp *http.Response, jsonrpc bool, what string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Error json.RawMessage `json:"error"`
		Desc  string          `json:"error_description"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	if jsonrpc {
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body.Error, &e); err != nil || e.Code != ratelimit.JSONRPCLimited || !strings.Contains(e.Message, what) {
			t.Fatalf("JSON-RPC error %s, want code %d naming %q", body.Error, ratelimit.JSONRPCLimited, what)
		}
	} else if string(body.Error) != `"temporarily_unavailable"` || !strings.Contains(body.Desc, what) {
		t.Fatalf("OAuth error %s", b)
	}
}

func TestLimits_MCPPerUserAndPerClient(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.mcpUser = rateFlag{PerMinute: 3, Burst: 3}
	url := limitedJournal(t, is, lim)
	resource := url + httpserver.MCPPath
	alice, bob := is.token(resource, "alice", "entries:read"), is.token(resource, "bob", "entries:read")
	for i := 0; i < 3; i++ {
		if resp := postMCP(t, url, alice); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	want429(t, postMCP(t, url, alice), true, "this user")
	// Bob's allowance is his own.
	if resp := postMCP(t, url, bob); resp.StatusCode == http.StatusTooManyRequests {
		t.Fatal("another user was refused for alice's requests")
	}

	lim = testLimits()
	lim.mcpClient = rateFlag{PerMinute: 2, Burst: 2}
	url = limitedJournal(t, is, lim)
	resource = url + httpserver.MCPPath
	// Both tokens are test-client's: the client's allowance spans users.
	postMCP(t, url, is.token(resource, "alice", "entries:read"))
	postMCP(t, url, is.token(resource, "bob", "entries:read"))
	want429(t, postMCP(t, url, is.token(resource, "carol", "entries:read")), true, "this client")
}

func TestLimits_MCPPerSourceBeforeAuthentication(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.mcpSource = rateFlag{PerMinute: 2, Burst: 2}
	url := limitedJournal(t, is, lim)
	for i := 0; i < 2; i++ {
		if resp := postMCP(t, url, "garbage"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	// Past the allowance even a valid token is refused, before its
	// signature is checked.
	want429(t, postMCP(t, url, is.token(url+httpserver.MCPPath, "alice", "entries:read")), true, "this address")
}

func TestLimits_TokenEndpoint(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.tokenSource = rateFlag{PerMinute: 3, Burst: 3}
	lim.tokenClient = rateFlag{PerMinute: 1, Burst: 1}
	url := limitedJournal(t, is, lim)
	post := func(basic string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url+authserver.TokenPath, strings.NewReader("grant_type=authorization_code&code=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic != "" {
			req.SetBasicAuth(basic, "secret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// A Basic header proves nothing before the server checks it: the
	// client's own limit is charged by the authorization server after
	// authentication (TestAttack_TokenWrongSecretLocksClientOut), so
	// requests naming c1 spend only their address's allowance.
	for i := range 3 {
		if resp := post("c1"); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d naming c1: %d", i+1, resp.StatusCode)
		}
	}
	want429(t, post(""), false, "this address")
}

func TestLimits_QuotaReachesTheTools(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.quota = epicme.Quota{Tags: 1}
	j := &journal{URL: limitedJournal(t, is, lim)}
	c := j.client(t, is.token(j.URL+httpserver.MCPPath, "alice", strings.Join(epicme.AllScopes, " ")))
	if res, err := callTool(c, "create_tag", map[string]any{"name": "one"}); err != nil || res.IsError {
		t.Fatalf("first tag: %v %+v", err, res)
	}
	res, err := callTool(c, "create_tag", map[string]any{"name": "two"})
	if err != nil || !res.IsError {
		t.Fatalf("second tag: %v %+v, want a tool error", err, res)
	}
	if b, _ := json.Marshal(res.Content); !strings.Contains(string(b), "at most 1 tags") {
		t.Fatalf("the error does not name the limit: %s", b)
	}
}

func TestRateFlag(t *testing.T) {
	for in, want := range map[string]rateFlag{
		"60": {60, 12}, "60/min": {60, 12}, "60/min,5": {60, 5}, "0": {0, 1}, "3": {3, 1},
	} {
		var f rateFlag
		if err := f.Set(in); err != nil || f != want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", in, f, err, want)
		}
	}
	for _, bad := range []string{"-1", "x", "60,0", "60,x"} {
		var f rateFlag
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// epicme authserver (the split deployment) limits its token endpoint too.
func TestLimits_TokenEndpointOfTheSplitAuthorizationServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newCLI(t)
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"authserver", "--addr", addr, "--public-url", "http://" + addr, "--resource", "http://127.0.0.1:1/mcp",
			"--rate-token-source", "2/min,2", "--trust-forwarded-for"}, c.env("", stdout, stderr))
	}()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(stdout.String(), "authorization server") {
			return fmt.Errorf("authserver has not started\nstdout: %s\nstderr: %s", stdout, stderr)
		}
		return nil
	})
	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+authserver.TokenPath,
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"c"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// As a proxy would: the client's address, which the flag trusts.
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for i := 0; i < 2; i++ {
		if resp := post(); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	want429(t, post(), false, "this address")
}

// Loading the authorization page over and over (each load may fetch a
// metadata document) is limited per address, with a page a browser shows.
func TestLimits_AuthorizePage(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.authorizeSource = rateFlag{PerMinute: 2, Burst: 2}
	url := limitedJournal(t, is, lim)
	get := func() *http.Response {
		resp, err := http.Get(url + authserver.AuthorizePath + "?client_id=https%3A%2F%2Fany.example%2Fc.json")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	get()
	get()
	resp := get()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(b), "this address") {
		t.Fatalf("third load: %d %v %q", resp.StatusCode, resp.Header, b)
	}
}

// The limits that serve builds from its flags let loopback sources through
// (this machine: tools, tests, a local proxy not trusted with
// X-Forwarded-For) and limit every other source; behind a trusted proxy the
// forwarded address counts.
func TestLimits_LoopbackSourcesAreExempt(t *testing.T) {
	is := newJWTIssuer(t)
	lim := testLimits()
	lim.exemptLoopback = true
	lim.mcpSource = rateFlag{PerMinute: 1, Burst: 1}
	lim.tokenSource = rateFlag{PerMinute: 1, Burst: 1}
	base := limitedJournal(t, is, lim)
	for i := 0; i < 5; i++ {
		if resp := postMCP(t, base, "x"); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("loopback request %d was rate-limited", i+1)
		}
	}
	for _, src := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		if lim.limited(src) {
			t.Errorf("%s is limited", src)
		}
	}
	for _, src := range []string{"203.0.113.9", "10.0.0.1", "", "not-an-address"} {
		if !lim.limited(src) {
			t.Errorf("%q is exempt", src)
		}
	}
	if w := loopbackProxyWarning("127.0.0.1:8080", "https://journal.example", false); !strings.Contains(w, "--trust-forwarded-for") {
		t.Errorf("no warning for a loopback server behind an https proxy: %q", w)
	}
	for _, tc := range []struct {
		addr, url string
		trust     bool
	}{{"127.0.0.1:8080", "https://journal.example", true}, {"0.0.0.0:8080", "https://journal.example", false}, {"127.0.0.1:8080", "http://127.0.0.1:8080", false}} {
		if w := loopbackProxyWarning(tc.addr, tc.url, tc.trust); w != "" {
			t.Errorf("%+v: unexpected warning %q", tc, w)
		}
	}
}
