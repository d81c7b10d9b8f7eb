package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Protocol revisions the tests speak. The Streamable HTTP endpoint serves all
// of them at once.
const (
	v20250326 = "2025-03-26"
	v20250618 = "2025-06-18"
	v20251125 = "2025-11-25"
	v20260728 = "2026-07-28"
)

var allEras = []string{v20250326, v20250618, v20251125, v20260728}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// Test headers that stand in for the auth middleware: they name the user,
// the granted scopes (all five when absent) and the OAuth client.
const (
	hdrUser   = "X-Test-User"
	hdrScopes = "X-Test-Scopes"
	hdrClient = "X-Test-Client"
)

// testEnv is a journal in a fresh SQLite file, two users, and the adapter
// served over real HTTP on loopback.
type testEnv struct {
	store *sqlite.DB
	alice *epicme.User
	bob   *epicme.User
	srv   *Server
	ts    *httptest.Server
	url   string
}

// openTestStore opens a SQLite store in t.TempDir() with two users.
func openTestStore(tb testing.TB) (*sqlite.DB, *epicme.User, *epicme.User) {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "epicme.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	alice, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "alice@example.com"})
	if err != nil {
		tb.Fatalf("create alice: %v", err)
	}
	bob, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bob@example.com"})
	if err != nil {
		tb.Fatalf("create bob: %v", err)
	}
	return db, alice, bob
}

// contextCallers resolves the caller that the (test) auth middleware put on
// the request context, as the OAuth resolver does in production.
var contextCallers = epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
	if c := epicme.CallerFromContext(ctx); c != nil {
		return c, nil
	}
	return nil, epicme.Errorf(epicme.EFORBIDDEN, "not signed in")
})

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestEnv(tb testing.TB) *testEnv {
	tb.Helper()
	return newTestEnvWith(tb, func(*Options) {})
}

// newTestEnvWith is newTestEnv with options changed by set.
func newTestEnvWith(tb testing.TB, set func(*Options)) *testEnv {
	tb.Helper()
	db, alice, bob := openTestStore(tb)
	e := serveTestStore(tb, db, alice, bob, set)
	e.store = db
	return e
}

// serveTestStore starts a Server on db, as newTestEnvWith does; the
// returned testEnv has no SQLite store of its own.
func serveTestStore(tb testing.TB, db epicme.Store, alice, bob *epicme.User, set func(*Options)) *testEnv {
	tb.Helper()
	opts := Options{Logger: quietLogger(), Secret: testSecret, SamplingTimeout: 10 * time.Second}
	set(&opts)
	srv, err := New(db, contextCallers, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	declareSchemas(tb, srv)
	users := map[string]*epicme.User{alice.ID: alice, bob.ID: bob}
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := users[r.Header.Get(hdrUser)]; u != nil {
				scopes := epicme.Scopes(epicme.AllScopes)
				if v, ok := r.Header[hdrScopes]; ok {
					scopes = epicme.ParseScopes(strings.Join(v, " "))
				}
				r = r.WithContext(epicme.NewContextWithCaller(r.Context(), &epicme.Caller{
					User: u, Scopes: scopes, ClientID: r.Header.Get(hdrClient),
				}))
			}
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	// The body cap is the HTTP server's, in front of every route.
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, testMaxBody)
		auth(srv.HTTPHandler()).ServeHTTP(w, r)
	}))
	ts := httptest.NewServer(mux)
	tb.Cleanup(ts.Close)
	return &testEnv{alice: alice, bob: bob, srv: srv, ts: ts, url: ts.URL + "/mcp"}
}

// testMaxBody is the body cap in front of the handler in tests, as
// httpserver's default is.
const testMaxBody = 1 << 20

// clientConfig describes one test client.
type clientConfig struct {
	version    string
	user       *epicme.User
	scopes     *string            // nil: all scopes
	headerFunc func() http.Header // overrides user/scopes per request
	listen     bool               // hold a GET stream open (legacy sampling, notifications)
	opts       []client.ClientOption
}

// connect starts an MCP client over real HTTP and checks that it negotiated
// the requested protocol revision.
func (e *testEnv) connect(tb testing.TB, cfg clientConfig) *client.Client {
	tb.Helper()
	headers := map[string]string{hdrUser: cfg.user.ID}
	if cfg.scopes != nil {
		headers[hdrScopes] = *cfg.scopes
	}
	topts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(headers), transport.WithHTTPLogger(quietLogger())}
	if cfg.headerFunc != nil {
		topts = append(topts, transport.WithHTTPHeaderFunc(func(context.Context) map[string]string {
			out := map[string]string{}
			for k, v := range cfg.headerFunc() {
				out[k] = strings.Join(v, " ")
			}
			return out
		}))
	}
	if cfg.listen {
		topts = append(topts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP(e.url, topts...)
	if err != nil {
		tb.Fatal(err)
	}
	return startClient(tb, tr, cfg.version, cfg.opts...)
}

func startClient(tb testing.TB, tr transport.Interface, version string, opts ...client.ClientOption) *client.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := client.NewClient(tr, append([]client.ClientOption{client.WithProtocolVersion(version)}, opts...)...)
	if err := c.Start(context.Background()); err != nil {
		tb.Fatalf("start client: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "epicme-test", Version: "1"}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		tb.Fatalf("initialize %s: %v", version, err)
	}
	if got := c.ProtocolVersion(); got != version {
		tb.Fatalf("negotiated protocol %q, want %q", got, version)
	}
	if res.ServerInfo.Name != "epicme" || res.ServerInfo.Title != "EpicMe Journal" {
		tb.Fatalf("server info = %+v", res.ServerInfo)
	}
	return c
}

// call calls a tool and fails the test on a protocol error.
func call(tb testing.TB, c *client.Client, name string, args any) *mcp.CallToolResult {
	tb.Helper()
	res, err := callErr(c, name, args)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	checkSchemas(tb, name, args, res)
	return res
}

func callErr(c *client.Client, name string, args any) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var req mcp.CallToolRequest
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

// ok calls a tool that must succeed and returns its structured content.
func ok(tb testing.TB, c *client.Client, name string, args any) (map[string]any, *mcp.CallToolResult) {
	tb.Helper()
	res := call(tb, c, name, args)
	if res.IsError {
		tb.Fatalf("%s(%v) failed: %s", name, args, texts(res))
	}
	return structured(tb, res), res
}

// toolErr calls a tool that must fail with a tool error and returns its text.
func toolErr(tb testing.TB, c *client.Client, name string, args any) string {
	tb.Helper()
	res := call(tb, c, name, args)
	if !res.IsError {
		tb.Fatalf("%s(%v) succeeded, want a tool error: %s", name, args, texts(res))
	}
	return strings.Join(texts(res), "\n")
}

func texts(res *mcp.CallToolResult) []string {
	var out []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			out = append(out, t.Text)
		}
	}
	return out
}

func links(res *mcp.CallToolResult) []mcp.ResourceLink {
	var out []mcp.ResourceLink
	for _, c := range res.Content {
		if l, ok := c.(mcp.ResourceLink); ok {
			out = append(out, l)
		}
	}
	return out
}

// structured returns structuredContent, and checks that the last text
// content is the same JSON.
func structured(tb testing.TB, res *mcp.CallToolResult) map[string]any {
	tb.Helper()
	var sc any = res.StructuredContent
	if len(res.RawStructuredContent) > 0 {
		sc = res.RawStructuredContent
	}
	b, err := json.Marshal(sc)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("structuredContent %s: %v", b, err)
	}
	ts := texts(res)
	if len(ts) == 0 {
		tb.Fatalf("no text content")
	}
	var fromText map[string]any
	if err := json.Unmarshal([]byte(ts[len(ts)-1]), &fromText); err != nil {
		tb.Fatalf("last text content is not JSON: %q", ts[len(ts)-1])
	}
	if a, b := mustJSON(m), mustJSON(fromText); a != b {
		tb.Fatalf("text JSON %s differs from structuredContent %s", b, a)
	}
	return m
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// path reads a value out of decoded JSON: path(m, "entry", "tags", 0, "name").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// rawPost sends one JSON-RPC message over HTTP and returns the status and
// the decoded body (the last SSE event when the answer is a stream).
func (e *testEnv) rawPost(tb testing.TB, header http.Header, body string) (int, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var last string
		for _, line := range strings.Split(string(b), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				last = d
			}
		}
		b = []byte(last)
	}
	var m map[string]any
	if len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatalf("status %d, body %q is not JSON", resp.StatusCode, b)
		}
	}
	return resp.StatusCode, m
}

// modernCall builds a 2026-07-28 tools/call request and its headers.
func modernCall(user *epicme.User, tool string, args any, extra map[string]any, caps map[string]any) (http.Header, string) {
	if caps == nil {
		caps = map[string]any{}
	}
	params := map[string]any{
		"name":      tool,
		"arguments": args,
		"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    v20260728,
			mcp.MetaKeyClientCapabilities: caps,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "1"},
		},
	}
	for k, v := range extra {
		params[k] = v
	}
	h := http.Header{}
	h.Set(hdrUser, user.ID)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "tools/call")
	h.Set(mcp.HeaderName, tool)
	return h, mustJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
}

// countEntries counts a user's entries in the store.
func countEntries(tb testing.TB, db *sqlite.DB, userID string) int {
	tb.Helper()
	page, err := db.ListEntries(context.Background(), userID, epicme.EntryFilter{Limit: epicme.MaxPageSize})
	if err != nil {
		tb.Fatal(err)
	}
	return len(page.Entries)
}

// eventually waits for cond, for work that finishes after a response (a
// background tag suggestion, a notification). It is a wait with a generous
// bound, not a timing assertion.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testenv.Eventually(tb, 15*time.Second, func() error {
		if !cond() {
			return errors.New("waiting for " + what)
		}
		return nil
	})
}
