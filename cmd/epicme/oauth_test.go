package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/sqlite"
)

// jwtIssuer is a minimal external authorization server on loopback: RFC 8414
// metadata and a JWKS with one Ed25519 key, signing RFC 9068 access tokens.
type jwtIssuer struct {
	URL string
	key ed25519.PrivateKey
	// active holds the opaque tokens introspection reports as active.
	active sync.Map
}

func newJWTIssuer(t testing.TB) *jwtIssuer {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &jwtIssuer{key: priv}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/jwks", "introspection_endpoint": is.URL + "/introspect"})
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "epicme-rs" || secret != "rs-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ans, ok := is.active.Load(r.PostFormValue("token"))
		if !ok {
			ans = map[string]any{"active": false}
		}
		_ = json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
			{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": base64.RawURLEncoding.EncodeToString(pub)},
		}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	return is
}

func (is *jwtIssuer) token(resource, subject, scope string) string {
	enc := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
	c, _ := json.Marshal(map[string]any{
		"iss": is.URL, "sub": subject, "aud": resource, "client_id": "test-client", "scope": scope,
		"email": subject + "@example.com", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	})
	input := enc(h) + "." + enc(c)
	return input + "." + enc(ed25519.Sign(is.key, []byte(input)))
}

// journal is EpicMe's HTTP server over a fresh SQLite file, with OAuth
// against is (nil: authentication off, every request acting as one user).
type journal struct {
	URL   string
	store *sqlite.DB
}

func newJournal(t testing.TB, is *jwtIssuer) *journal {
	t.Helper()
	return newJournalWith(t, &oauthFlags{issuer: is.URL, tokenVerifier: "jwt"}, is != nil)
}

// newJournalWith is newJournal with the external issuer's flags in full
// (oauth says nothing when withAuth is false).
func newJournalWith(t testing.TB, oauth *oauthFlags, withAuth bool) *journal {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	logger := slog.New(slog.DiscardHandler)
	var setup *authSetup
	if withAuth {
		setup, err = externalAuth(ctx, oauth, ts.URL, store, logger, env{})
	} else {
		setup, err = devAuth(ctx, &authFlags{devInsecureNoAuth: true, devUser: "dev@example.com"}, "127.0.0.1:0", store, env{})
	}
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	m, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret, Scopes: setup.Scopes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	srv, err := httpserver.New(httpserver.Config{MCP: m.HTTPHandler(), Auth: setup.Middleware, Ready: store.Ping, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if setup.Mount != nil {
		setup.Mount(srv)
	}
	handler = srv.HTTP.Handler
	return &journal{URL: ts.URL, store: store}
}

func (j *journal) client(t testing.TB, token string) *client.Client {
	t.Helper()
	var opts []transport.StreamableHTTPCOption
	if token != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	}
	c, err := client.NewStreamableHttpClient(j.URL+httpserver.MCPPath, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	return c
}

func callTool(c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	return c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
}

func TestExternalIssuer_TokenMapsToLocalUserAndScopes(t *testing.T) {
	is := newJWTIssuer(t)
	j := newJournal(t, is)
	resource := j.URL + "/mcp"

	// Discovery names the issuer.
	resp, err := http.Get(j.URL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["resource"] != resource || md["authorization_servers"].([]any)[0] != is.URL {
		t.Fatalf("metadata %v", md)
	}

	ada := j.client(t, is.token(resource, "ada", "entries:read entries:write"))
	res, err := callTool(ada, "create_entry", map[string]any{"title": "First", "content": "Hello"})
	if err != nil || res.IsError {
		t.Fatalf("create_entry: %v %v", err, res)
	}
	if res, err := callTool(ada, "get_entry", map[string]any{"id": 1}); err != nil || res.IsError {
		t.Fatalf("get_entry: %v %v", err, res)
	}
	// whoami needs user:read, which this token lacks: a step-up challenge.
	if _, err := callTool(ada, "whoami", nil); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("whoami without user:read: %v", err)
	}
	u, err := j.store.UserByIdentity(context.Background(), is.URL, "ada")
	if err != nil || u.Email != "ada@example.com" {
		t.Fatalf("local user of (issuer, ada): %v %v", u, err)
	}

	// Another subject of the same issuer has another journal.
	bob := j.client(t, is.token(resource, "bob", "entries:read"))
	if res, err := callTool(bob, "get_entry", map[string]any{"id": 1}); err != nil || !res.IsError {
		t.Fatalf("bob reads ada's entry 1: %v %+v", err, res)
	}

	// A token for another resource is refused.
	req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+is.token("https://other.example/mcp", "ada", "entries:read"))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="EpicMe"`) {
		t.Fatalf("foreign audience: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestExternalIssuer_IntrospectionMode(t *testing.T) {
	ctx := context.Background()
	is := newJWTIssuer(t)
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("rs-secret\n"), 0o600)
	public := "https://journal.example.com"
	flags := &authFlags{oauth: oauthFlags{issuer: is.URL, tokenVerifier: "introspection", introspectionClientID: "epicme-rs",
		introspectionSecretFile: secretFile, verifierCacheTTL: time.Minute}}
	setup, err := buildAuth(ctx, flags, "127.0.0.1:8080", public, t.TempDir(), store, slog.New(slog.DiscardHandler), env{})
	if err != nil {
		t.Fatal(err)
	}
	is.active.Store("opaque-1", map[string]any{"active": true, "sub": "ada", "aud": public + "/mcp", "scope": "entries:read",
		"client_id": "c", "exp": time.Now().Add(time.Hour).Unix()})
	var got *epicme.Caller
	h := setup.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err = setup.Callers.ResolveCaller(r.Context())
	}))
	for _, tc := range []struct {
		token string
		want  int
	}{{"opaque-1", 200}, {"opaque-unknown", 401}} {
		req := httptest.NewRequest(http.MethodPost, public+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry"}}`))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Fatalf("%s: %d %s", tc.token, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if err != nil || got.User.Subject != "ada" || got.User.Issuer != is.URL || !got.Scopes.Has("entries:read") {
		t.Fatalf("caller %+v %v", got, err)
	}
}

func TestBuildAuth_FlagRules(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		name  string
		flags authFlags
		addr  string
		want  string
	}{
		{"embedded, port 0 without a public URL", authFlags{}, "127.0.0.1:0", "--public-url"},
		{"both schemes", authFlags{devInsecureNoAuth: true, oauth: oauthFlags{issuer: "https://login.example.com"}}, "127.0.0.1:8080", "exclude each other"},
		{"issuer not a URL", authFlags{oauth: oauthFlags{issuer: "login", tokenVerifier: "jwt"}}, "127.0.0.1:8080", "--issuer"},
		{"unknown verifier", authFlags{oauth: oauthFlags{issuer: "https://login.example.com", tokenVerifier: "magic"}}, "127.0.0.1:8080", "--token-verifier"},
		{"introspection without credentials", authFlags{oauth: oauthFlags{issuer: "https://login.example.com", tokenVerifier: "introspection"}}, "127.0.0.1:8080", "--introspection-client-id"},
		{"port 0 without a public URL", authFlags{oauth: oauthFlags{issuer: "https://login.example.com", tokenVerifier: "jwt"}}, "127.0.0.1:0", "--public-url"},
	}
	for _, tc := range cases {
		_, err := buildAuth(ctx, &tc.flags, tc.addr, "", t.TempDir(), store, log, env{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// JWT mode needs nothing from the issuer at startup.
	f := authFlags{oauth: oauthFlags{issuer: "https://login.example.com", tokenVerifier: "jwt"}}
	if _, err := buildAuth(ctx, &f, "127.0.0.1:8080", "", t.TempDir(), store, log, env{}); err != nil {
		t.Fatal(err)
	}
	f.oauth.requireDPoP = true
	if _, err := buildAuth(ctx, &f, "127.0.0.1:8080", "", t.TempDir(), store, log, env{}); err != nil {
		t.Fatal("--require-dpop with --issuer:", err)
	}
}

func TestScopeMapFileOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scopes.json")
	os.WriteFile(path, []byte(`{"tools/call": {"create_entry": ["journal:write"]}, "custom/method": {"*": ["x"]}}`), 0o600)
	m, err := loadScopeMap(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Required("tools/call", "create_entry"); !slices.Equal(got, []string{"journal:write"}) {
		t.Fatal(got)
	}
	if got := m.Required("tools/call", "get_entry"); !slices.Equal(got, []string{"entries:read"}) {
		t.Fatal("defaults lost:", got)
	}
	if got := m.Required("custom/method", "a"); !slices.Equal(got, []string{"x"}) {
		t.Fatal(got)
	}
	os.WriteFile(path, []byte(`[1]`), 0o600)
	if _, err := loadScopeMap(path); err == nil {
		t.Fatal("bad file accepted")
	}
	os.WriteFile(path, []byte(`{"tools/call": {"create_entry": []}}`), 0o600)
	if _, err := loadScopeMap(path); err == nil || !strings.Contains(err.Error(), "names no scope") {
		t.Fatal("an entry with no scope accepted:", err)
	}
	os.WriteFile(path, []byte(`{"resources/read": {"epicme://entries/{entry-id}": ["entries:read"]}}`), 0o600)
	if _, err := loadScopeMap(path); err == nil || !strings.Contains(err.Error(), "not a URI template") {
		t.Fatal("a template that matches nothing accepted:", err)
	}
}

// TestRule_ScopeMapDecidesChallengeCallAndList changes the scope map with
// --scope-map and watches, through mcp-go's client, everything that decides
// follow it: the HTTP challenge (RFC 6750 §3.1 insufficient_scope), the
// call itself, and tools/list filtering. One table decides all three.
func TestRule_ScopeMapDecidesChallengeCallAndList(t *testing.T) {
	is := newJWTIssuer(t)
	path := filepath.Join(t.TempDir(), "scopes.json")
	if err := os.WriteFile(path, []byte(`{"tools/call": {"create_entry": ["journal:write"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	lists := func(c *client.Client, name string) bool {
		res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(res.Tools, func(tool mcp.Tool) bool { return tool.Name == name })
	}
	create := func(c *client.Client) error {
		res, err := callTool(c, "create_entry", map[string]any{"title": "T", "content": "C"})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %v", res.Content)
		}
		return err
	}
	for _, tc := range []struct {
		name       string
		scopeMap   string
		allowed    string // scope that lets create_entry through
		challenged string // scope that does not, and what the challenge names
	}{
		{"default", "", "entries:write", "journal:write"},
		{"--scope-map", path, "journal:write", "entries:write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournalWith(t, &oauthFlags{issuer: is.URL, tokenVerifier: "jwt", scopeMapFile: tc.scopeMap}, true)
			resource := j.URL + "/mcp"

			ok := j.client(t, is.token(resource, "ada", "entries:read "+tc.allowed))
			if !lists(ok, "create_entry") {
				t.Errorf("tools/list with %s hides create_entry", tc.allowed)
			}
			if err := create(ok); err != nil {
				t.Errorf("create_entry with %s: %v", tc.allowed, err)
			}

			denied := j.client(t, is.token(resource, "ada", "entries:read "+tc.challenged))
			if lists(denied, "create_entry") {
				t.Errorf("tools/list with %s shows create_entry", tc.challenged)
			}
			want := tc.allowed
			if err := create(denied); err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
				t.Errorf("create_entry with %s: %v, want a step-up challenge", tc.challenged, err)
			}

			// The challenge itself, read off the wire: 403 naming the scope
			// the map asks for.
			req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(
				`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entry","arguments":{"title":"T","content":"C"}}}`))
			req.Header.Set("Authorization", "Bearer "+is.token(resource, "ada", "entries:read "+tc.challenged))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
			req.Header.Set("Mcp-Method", "tools/call")
			req.Header.Set("Mcp-Name", "create_entry")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ch, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
			if resp.StatusCode != http.StatusForbidden || err != nil || len(ch) != 1 || !slices.Contains(strings.Fields(ch[0].Params["scope"]), want) {
				t.Errorf("challenge: %d %q, want 403 naming %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
			}
		})
	}
}

// BenchmarkGetEntryAuthOverhead runs get_entry against the same journal
// server with authentication off and with OAuth (JWT verified, cached), in
// paired rounds of one run, and reports the median throughput ratio
// (oauth/off; the target is at least 0.9).
func BenchmarkGetEntryAuthOverhead(b *testing.B) {
	is := newJWTIssuer(b)
	type side struct {
		name    string
		clients []*client.Client
		elapsed time.Duration
		calls   int
	}
	const workers = 8
	build := func(name string, withAuth bool) *side {
		var j *journal
		token := ""
		if withAuth {
			j = newJournal(b, is)
			token = is.token(j.URL+"/mcp", "ada", "entries:read entries:write")
		} else {
			j = newJournal(b, nil)
		}
		s := &side{name: name}
		for i := 0; i < workers; i++ {
			s.clients = append(s.clients, j.client(b, token))
		}
		if res, err := callTool(s.clients[0], "create_entry", map[string]any{"title": "Bench", "content": strings.Repeat("x", 200)}); err != nil || res.IsError {
			b.Fatalf("%s: create_entry: %v %v", name, err, res)
		}
		return s
	}
	off, on := build("off", false), build("oauth", true)
	// round runs n calls per worker and returns the calls per second.
	round := func(s *side, n int) float64 {
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range s.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < n; k++ {
					res, err := callTool(c, "get_entry", map[string]any{"id": 1})
					if err != nil || res.IsError {
						b.Errorf("%s: get_entry: %v", s.name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		d := time.Since(start)
		s.elapsed += d
		s.calls += n * len(s.clients)
		return float64(n*len(s.clients)) / d.Seconds()
	}
	round(off, 20) // warm up both
	round(on, 20)
	off.elapsed, off.calls, on.elapsed, on.calls = 0, 0, 0, 0
	b.ResetTimer()
	// Short rounds in pairs, the order alternating, so that whatever else
	// the machine does weighs on both sides alike; the median of the pairs'
	// ratios is robust to a burst of load during one round.
	const rounds = 20
	n := max(b.N/(2*workers*rounds), 1)
	var ratios []float64
	for r := 0; r < rounds; r++ {
		var offRate, onRate float64
		if r%2 == 0 {
			offRate = round(off, n)
			onRate = round(on, n)
		} else {
			onRate = round(on, n)
			offRate = round(off, n)
		}
		ratios = append(ratios, onRate/offRate)
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(float64(off.calls)/off.elapsed.Seconds(), "off-calls/s")
	b.ReportMetric(float64(on.calls)/on.elapsed.Seconds(), "oauth-calls/s")
	b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "ratio")
}
