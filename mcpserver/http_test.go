package mcpserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/sqlite"
)

// TestBadInputIsRefusedClearly sends malformed and hostile requests over
// HTTP and checks each gets a clear error and changes nothing stored.
func TestBadInputIsRefusedClearly(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20260728, user: e.alice})
	ok(t, c, "create_entry", map[string]any{"title": "Stays", "content": "as it is"})
	before, _ := e.store.GetEntry(context.Background(), e.alice.ID, 1)

	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	status, got := e.rawPost(t, h, `{"jsonrpc": "2.0", "id": 1, "method": `)
	if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.PARSE_ERROR {
		t.Errorf("malformed JSON = %d %v", status, got)
	}

	// A body over the limit is refused before it is parsed.
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entry","arguments":{"title":"x","content":"` + strings.Repeat("a", testMaxBody) + `"}}}`
	status, got = e.rawPost(t, h, big)
	if status != http.StatusRequestEntityTooLarge || num(path(got, "error", "code")) != mcp.INVALID_REQUEST ||
		!strings.Contains(path(got, "error", "message").(string), "larger than the limit of 1048576 bytes") {
		t.Errorf("oversized body = %d %v", status, got)
	}

	// The same without a Content-Length (chunked) is cut off at the limit.
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hdrUser, e.alice.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	chunked, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(chunked), "larger than the limit") || req.ContentLength != 0 {
		t.Errorf("oversized chunked body = %d %s", resp.StatusCode, chunked)
	}

	// Content over 100 KB fits the body limit but breaks the entry rule.
	msg := toolErr(t, c, "create_entry", map[string]any{"title": "Too long", "content": strings.Repeat("é", epicme.MaxContentBytes/2+1)})
	if !strings.HasPrefix(msg, "content must be at most 102400 bytes") {
		t.Errorf("oversized content = %q", msg)
	}
	for _, tc := range []struct {
		tool string
		args any
		want string
	}{
		{"create_entry", map[string]any{"title": 5, "content": "x"}, "title must be a string"},
		{"create_entry", map[string]any{"title": "", "content": "x"}, "title is required (1-200 characters)"},
		{"create_entry", map[string]any{"title": "t"}, "content is required"},
		{"create_entry", map[string]any{"title": "t", "content": "c", "isPrivate": 2}, "isPrivate must be a boolean (true/false, or 1/0)"},
		{"create_entry", map[string]any{"title": "t", "content": "c", "tags": []any{1.5}}, "tags[0] must be a positive integer"},
		{"create_entry", map[string]any{"title": "t", "content": "c", "tags": []any{99}}, ""},
		{"update_entry", map[string]any{"id": -1, "title": "x"}, "id must be a positive integer"},
		{"update_entry", map[string]any{"id": 1}, "give at least one field to change"},
		{"update_entry", map[string]any{"id": 1, "title": nil}, "title cannot be null"},
		{"update_entry", map[string]any{"id": 9, "title": "x"}, `Entry with ID "9" not found`},
		{"delete_entry", map[string]any{"id": "1"}, "id must be a positive integer"},
		{"add_tag_to_entry", map[string]any{"entryId": 1}, "tagId is required"},
		{"create_tag", map[string]any{"name": strings.Repeat("n", 51)}, "name must be at most 50 characters"},
		{"list_entries", map[string]any{"tagIds": "1"}, "tagIds must be an array of positive integers"},
		{"list_entries", map[string]any{"cursor": "not-a-cursor"}, ""},
		{"whoami", map[string]any{"x": 1}, `unknown argument "x": this tool takes no arguments`},
	} {
		msg := toolErr(t, c, tc.tool, tc.args)
		if tc.want != "" && !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%s %v = %q, want %q", tc.tool, tc.args, msg, tc.want)
		}
		if strings.Contains(msg, "sql") || strings.Contains(msg, "epicme ") {
			t.Errorf("%s %v leaks internals: %q", tc.tool, tc.args, msg)
		}
	}
	if _, err := callErr(c, "no_such_tool", nil); err == nil || !strings.Contains(err.Error(), "no_such_tool") {
		t.Errorf("unknown tool = %v", err)
	}
	after, _ := e.store.GetEntry(context.Background(), e.alice.ID, 1)
	if mustJSON(before) != mustJSON(after) || countEntries(t, e.store, e.alice.ID) != 1 {
		t.Errorf("bad input changed the store: %s -> %s", mustJSON(before), mustJSON(after))
	}
}

// TestResourceNotFoundStatus checks a missing resource on 2026-07-28 over
// raw HTTP: invalid params (-32602) with HTTP 400, as mcp-go answers its
// own missing resources.
func TestResourceNotFoundStatus(t *testing.T) {
	e := newTestEnv(t)
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "resources/read")
	h.Set(mcp.HeaderName, "epicme://entries/5")
	body := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": map[string]any{
		"uri":   "epicme://entries/5",
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}})
	status, got := e.rawPost(t, h, body)
	if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_PARAMS || path(got, "error", "message") != `Entry with ID "5" not found` {
		t.Fatalf("missing entry = %d %v", status, got)
	}
}

// TestRule_ResourceNotFoundNamesItsURI checks that the error for a missing
// resource carries the requested URI as data.uri (MCP resources, "Error
// Handling": resource not found SHOULD include the URI), on 2026-07-28
// (-32602, HTTP 400) and on a 2025-11-25 session (-32002, HTTP 200).
func TestRule_ResourceNotFoundNamesItsURI(t *testing.T) {
	e := newTestEnv(t)
	const uri = "epicme://entries/5"
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "resources/read")
	h.Set(mcp.HeaderName, uri)
	body := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": map[string]any{
		"uri":   uri,
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}})
	status, got := e.rawPost(t, h, body)
	if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_PARAMS || path(got, "error", "data", "uri") != uri {
		t.Errorf("2026-07-28 missing entry = %d %v", status, got)
	}

	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	h = http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set("Mcp-Session-Id", c.GetSessionId())
	h.Set(mcp.HeaderProtocolVersion, v20251125)
	status, got = e.rawPost(t, h, `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"`+uri+`"}}`)
	if status != http.StatusOK || num(path(got, "error", "code")) != mcp.RESOURCE_NOT_FOUND ||
		path(got, "error", "message") != `Entry with ID "5" not found` || path(got, "error", "data", "uri") != uri {
		t.Errorf("2025-11-25 missing entry = %d %v", status, got)
	}

	// A URI that no resource or template matches: the same answer, with
	// its data.uri, in both eras.
	const nowhere = "epicme://nowhere/1"
	status, got = e.rawPost(t, h, `{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"`+nowhere+`"}}`)
	if status != http.StatusOK || num(path(got, "error", "code")) != mcp.RESOURCE_NOT_FOUND || path(got, "error", "data", "uri") != nowhere || num(path(got, "id")) != 5 {
		t.Errorf("2025-11-25 unknown URI = %d %v", status, got)
	}
	h = http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "resources/read")
	h.Set(mcp.HeaderName, nowhere)
	body = mustJSON(map[string]any{"jsonrpc": "2.0", "id": 6, "method": "resources/read", "params": map[string]any{
		"uri":   nowhere,
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}})
	status, got = e.rawPost(t, h, body)
	if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_PARAMS || path(got, "error", "data", "uri") != nowhere {
		t.Errorf("2026-07-28 unknown URI = %d %v", status, got)
	}
}

// TestSessionIsBoundToItsUser checks that a session id is honoured only for
// the user and client that opened it: anyone else gets 404, as for an
// unknown session.
func TestSessionIsBoundToItsUser(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	ok(t, c, "create_entry", map[string]any{"title": "Alice's secret", "content": "s"})
	sid := c.GetSessionId()
	if sid == "" {
		t.Fatal("no session id")
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":1}}}`
	for _, tc := range []struct {
		name   string
		user   *epicme.User
		client string
		want   int
	}{
		{"other user", e.bob, "", http.StatusNotFound},
		{"other client", e.alice, "another-app", http.StatusNotFound},
		{"owner", e.alice, "", http.StatusOK},
	} {
		h := http.Header{}
		h.Set(hdrUser, tc.user.ID)
		if tc.client != "" {
			h.Set(hdrClient, tc.client)
		}
		h.Set("Mcp-Session-Id", sid)
		h.Set(mcp.HeaderProtocolVersion, v20251125)
		status, got := e.rawPost(t, h, list)
		if status != tc.want {
			t.Errorf("%s: status %d %v", tc.name, status, got)
		}
		if tc.want == http.StatusNotFound && strings.Contains(mustJSON(got), "secret") {
			t.Errorf("%s saw alice's entry: %v", tc.name, got)
		}
	}

	// Nor may another user listen on the session's stream.
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	req.Header.Set(hdrUser, e.bob.ID)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob GET on alice's session = %d", resp.StatusCode)
	}
	req.Header.Set("Mcp-Session-Id", "mcp-session-unknown")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET on an unknown session = %d", resp.StatusCode)
	}

	// Only the owner may end the session; after that the id is dead.
	del := func(user *epicme.User) int {
		req, _ := http.NewRequest(http.MethodDelete, e.url, nil)
		req.Header.Set(hdrUser, user.ID)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := del(e.bob); got != http.StatusNotFound {
		t.Errorf("bob DELETE = %d", got)
	}
	if got := del(e.alice); got != http.StatusOK {
		t.Errorf("alice DELETE = %d", got)
	}
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set("Mcp-Session-Id", sid)
	if status, got := e.rawPost(t, h, list); status != http.StatusNotFound {
		t.Errorf("request on an ended session = %d %v", status, got)
	}
}

// TestResourceUpdatedNotifications checks that a session subscribed to an
// entry hears of its update and deletion, over HTTP (legacy revision) and
// over stdio, and that another user's session hears nothing.
func TestResourceUpdatedNotifications(t *testing.T) {
	check := func(t *testing.T, c *client.Client, updates <-chan string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ok(t, c, "create_entry", map[string]any{"title": "Watched", "content": "w"})
		var sub mcp.SubscribeRequest
		sub.Params.URI = "epicme://entries/1"
		if err := c.Subscribe(ctx, sub); err != nil {
			t.Fatal(err)
		}
		ok(t, c, "update_entry", map[string]any{"id": 1, "title": "Watched closely"})
		select {
		case uri := <-updates:
			if uri != "epicme://entries/1" {
				t.Errorf("updated %q", uri)
			}
		case <-ctx.Done():
			t.Fatal("no resources/updated notification")
		}
	}
	watch := func(c *client.Client) <-chan string {
		ch := make(chan string, 8)
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method == mcp.MethodNotificationResourceUpdated {
				uri, _ := n.Params.AdditionalFields["uri"].(string)
				ch <- uri
			}
		})
		return ch
	}
	t.Run("http", func(t *testing.T) {
		e := newTestEnv(t)
		c := e.connect(t, clientConfig{version: v20251125, user: e.alice, listen: true})
		bob := e.connect(t, clientConfig{version: v20251125, user: e.bob, listen: true})
		bobUpdates := watch(bob)
		ok(t, bob, "create_entry", map[string]any{"title": "Bob's", "content": "b"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var sub mcp.SubscribeRequest
		sub.Params.URI = "epicme://entries/1"
		if err := bob.Subscribe(ctx, sub); err != nil {
			t.Fatal(err)
		}
		check(t, c, watch(c))
		select {
		case uri := <-bobUpdates:
			t.Errorf("bob was told about alice's %s", uri)
		default:
		}
	})
	t.Run("stdio", func(t *testing.T) {
		db, alice, _ := openTestStore(t)
		var updates chan string
		c, _ := startStdio(t, db, alice, v20251125)
		updates = make(chan string, 8)
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method == mcp.MethodNotificationResourceUpdated {
				uri, _ := n.Params.AdditionalFields["uri"].(string)
				updates <- uri
			}
		})
		check(t, c, updates)
	})
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[string]int{
		epicme.EINVALID: 400, epicme.EFORBIDDEN: 403, epicme.ENOTFOUND: 404,
		epicme.ECONFLICT: 409, epicme.EINTERNAL: 500, "other": 500,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%s) = %d, want %d", code, got, want)
		}
	}
}

// TestServerIdentity checks the name, title, instructions and capabilities
// every client learns at initialize or server/discover.
func TestServerIdentity(t *testing.T) {
	e := newTestEnv(t)
	for _, version := range []string{v20250326, v20251125, v20260728} {
		c := e.connect(t, clientConfig{version: version, user: e.alice})
		caps := c.GetServerCapabilities()
		if caps.Tools == nil || caps.Prompts == nil || caps.Completions == nil || caps.Logging == nil ||
			caps.Resources == nil || !caps.Resources.Subscribe || !caps.Resources.ListChanged {
			t.Errorf("%s capabilities = %s", version, mustJSON(caps))
		}
	}
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	_, got := e.rawPost(t, h, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	instr, _ := path(got, "result", "instructions").(string)
	if !strings.Contains(instr, "journal") || !strings.Contains(instr, "tags") || path(got, "result", "serverInfo", "title") != "EpicMe Journal" {
		t.Errorf("initialize = %v", got)
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInternalErrorsAreLoggedNotShown breaks the database under the server
// and checks that clients see "internal error" while the log has the cause.
func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	db, alice, _ := openTestStore(t)
	var logs lockedBuffer
	callers := epicme.CallerResolverFunc(func(context.Context) (*epicme.Caller, error) {
		return &epicme.Caller{User: alice, Scopes: epicme.AllScopes}, nil
	})
	// The sessions go through a second handle on the same database, so
	// that the closed journal fails the tool call and the read rather than
	// the session lookup before them.
	sessions, err := sqlite.Open(t.Context(), db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer sessions.Close()
	srv, err := New(db, callers, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Secret: testSecret, Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.HTTPHandler())
	defer ts.Close()
	tr, err := transport.NewStreamableHTTP(ts.URL, transport.WithHTTPLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, tr, v20251125)
	ok(t, c, "create_entry", map[string]any{"title": "Before", "content": "the fall"})
	db.Close()

	if msg := toolErr(t, c, "get_entry", map[string]any{"id": 1}); msg != "internal error" {
		t.Errorf("tool = %q", msg)
	}
	_, err = readResource(c, "epicme://entries/1")
	wantRPCError(t, err, mcp.INTERNAL_ERROR, "internal error")
	if err != nil && strings.Contains(err.Error(), "closed") {
		t.Errorf("resource error leaks the cause: %v", err)
	}
	if !strings.Contains(logs.String(), "closed") {
		t.Errorf("log lacks the cause: %s", logs.String())
	}
}

// downOnWrite is a store whose writes fail as when the database is down.
type downOnWrite struct{ *sqlite.DB }

func (d downOnWrite) CreateEntry(context.Context, string, epicme.NewEntry) (*epicme.Entry, error) {
	return nil, epicme.Errorf(epicme.EUNAVAILABLE, "the database is unavailable")
}

// TestRule_UnavailableOnTheLibraryPath: a 2026-07-28 call that mcp-go
// serves (a write: not the fast path) whose store is down gets HTTP 503,
// Retry-After and the JSON-RPC code -32004, as the fast path and the edge
// answer, not mcp-go's 200 with -32603.
func TestRule_UnavailableOnTheLibraryPath(t *testing.T) {
	db, alice, bob := openTestStore(t)
	e := serveTestStore(t, downOnWrite{db}, alice, bob, func(*Options) {})
	h := http.Header{}
	h.Set(hdrUser, alice.ID)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "tools/call")
	h.Set(mcp.HeaderName, "create_entry")
	body := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": map[string]any{
		"name": "create_entry", "arguments": map[string]any{"title": "t", "content": "c"},
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}})
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || num(path(got, "error", "code")) != codeUnavailable {
		t.Fatalf("a write with the database down = %d (Retry-After %q) %v; want 503 with -32004", resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
}

// TestNewWantsASessionStore: a journal store that keeps no MCP sessions is
// refused unless Options.Sessions gives one, rather than served with
// sessions that other instances cannot see.
func TestNewWantsASessionStore(t *testing.T) {
	db, _, _ := openTestStore(t)
	journalOnly := struct{ epicme.Store }{db}
	if _, err := New(journalOnly, contextCallers, Options{Logger: quietLogger(), Secret: testSecret}); err == nil || !strings.Contains(err.Error(), "Options.Sessions") {
		t.Fatalf("New = %v, want an error naming Options.Sessions", err)
	}
	srv, err := New(journalOnly, contextCallers, Options{Logger: quietLogger(), Secret: testSecret, Sessions: db})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
}
