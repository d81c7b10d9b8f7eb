package mcpserver

// Attacks on the MCP endpoint, each named after the attack. Where a rule
// is also tested under another name, the test says which.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/epicme/epicme"
)

// injections are strings that would change a query built by pasting text
// into SQL, or an FTS5 MATCH expression.
var injections = []string{
	`'; DROP TABLE entries; --`,
	`" OR 1=1 --`,
	`x' OR '1'='1`,
	`%' OR user_id LIKE '%`,
	`1; DELETE FROM users`,
	`\'; SELECT * FROM users; --`,
	`') UNION SELECT id, email, password_hash FROM users --`,
	`$1`, `?`, `:name`, `@x`,
}

// Every string argument of every writing and reading tool carries SQL
// metacharacters. They are stored and returned verbatim, nothing else in
// the database changes, and no search or listing shows another user's
// entry. The store-level contract (both stores) is
// TestAttack_SQLInjection_Store in sqlite and postgres.
func TestAttack_SQLInjection_ToolArguments(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.store.CreateEntry(ctx, e.bob.ID, epicme.NewEntry{Title: "bob secret", Content: "bob only"}); err != nil {
		t.Fatal(err)
	}
	c := e.connect(t, clientConfig{version: v20260728, user: e.alice})
	for i, s := range injections {
		ok(t, c, "create_entry", map[string]any{"title": s, "content": s, "mood": s, "location": s, "weather": s})
		ok(t, c, "create_tag", map[string]any{"name": strings.Repeat("t", i%3) + s[:min(len(s), 40)], "description": s})
		got, err := e.store.GetEntry(ctx, e.alice.ID, int64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != s || got.Content != s || got.Mood == nil || *got.Mood != s {
			t.Fatalf("stored %+v, want %q verbatim", got, s)
		}
		ok(t, c, "update_entry", map[string]any{"id": i + 1, "title": s + " edited"})
		for _, tool := range []string{"search_entries", "list_entries"} {
			args := map[string]any{"query": s}
			if tool == "list_entries" {
				args = map[string]any{"cursor": s}
			}
			res := call(t, c, tool, args)
			if strings.Contains(strings.Join(texts(res), " "), "bob") {
				t.Fatalf("%s(%q) showed bob's entry: %s", tool, s, texts(res))
			}
		}
		for _, tool := range []string{"get_entry", "delete_entry", "get_tag"} {
			res := call(t, c, tool, map[string]any{"id": s})
			if !res.IsError {
				t.Fatalf("%s with id %q succeeded", tool, s)
			}
		}
	}
	if n := countEntries(t, e.store, e.bob.ID); n != 1 {
		t.Fatalf("bob has %d entries after the attack, want 1", n)
	}
	if n := countEntries(t, e.store, e.alice.ID); n != len(injections) {
		t.Fatalf("alice has %d entries, want %d", n, len(injections))
	}
}

// FTS5 query syntax (operators, column filters, prefixes, NEAR, quotes) in
// a search is taken as words to look for, never as syntax: no error, no
// entry of another user, and the literal words still match.
func TestAttack_SQLInjection_SearchSyntax(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.store.CreateEntry(ctx, e.bob.ID, epicme.NewEntry{Title: "bob secret", Content: "secret near words"}); err != nil {
		t.Fatal(err)
	}
	c := e.connect(t, clientConfig{version: v20260728, user: e.alice})
	ok(t, c, "create_entry", map[string]any{"title": "alice walk", "content": "a walk near the river"})
	for _, q := range []string{
		`secret OR walk`, `NOT walk`, `walk AND NOT river`, `NEAR(walk river)`, `NEAR(secret near, 10)`,
		`title:secret`, `{title content}: secret`, `content:*`, `secr*`, `^secret`, `"secret`, `walk"`,
		`(secret)`, `secret)`, `-walk`, `+secret`, `*`, `"" ""`, `walk\0`, `walk; DROP TABLE entries_fts`,
	} {
		res := call(t, c, "search_entries", map[string]any{"query": q})
		out := strings.Join(texts(res), " ")
		if strings.Contains(out, "bob") {
			t.Fatalf("search %q showed bob's entry: %s", q, out)
		}
		if res.IsError && !strings.Contains(out, "query") {
			t.Fatalf("search %q failed without naming the query: %s", q, out)
		}
	}
	// The operators are words: "walk OR nothing" needs both words.
	res := call(t, c, "search_entries", map[string]any{"query": "walk OR river"})
	if strings.Contains(strings.Join(texts(res), " "), "alice walk") {
		t.Fatal(`"OR" was taken as an operator, not a word to find`)
	}
}

// Resource URIs that try to climb out of a user's journal, or name another
// user's rows, read nothing of anyone else.
func TestAttack_PathInjection(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.store.CreateEntry(ctx, e.bob.ID, epicme.NewEntry{Title: "bob secret", Content: "bob only"}); err != nil {
		t.Fatal(err)
	}
	c := e.connect(t, clientConfig{version: v20250618, user: e.alice})
	for _, uri := range []string{
		"epicme://entries/1", "epicme://entries/../users/current", "epicme://entries/1/../../entries/1",
		"epicme://entries/%2e%2e/1", "epicme://entries/1%2F..", "epicme://entries/1?user=" + e.bob.ID,
		"epicme://entries/" + e.bob.ID + "/1", "epicme://entries/-1", "epicme://entries/1.0",
		"epicme://tags/../entries/1", "epicme://users/" + e.bob.ID, "file:///etc/passwd", "epicme://entries/01",
	} {
		var req mcp.ReadResourceRequest
		req.Params.URI = uri
		res, err := c.ReadResource(ctx, req)
		if err == nil {
			if s := mustJSON(res); strings.Contains(s, "bob") {
				t.Fatalf("%s read bob's data: %s", uri, s)
			}
		}
	}
}

// Headers that disagree with the body cannot steer the request: an
// Mcp-Name naming a read-only tool while the body calls a writing one is
// refused, and nothing is written.
func TestAttack_HeaderInjection(t *testing.T) {
	e := newTestEnv(t)
	h, body := modernCall(e.alice, "create_entry", map[string]any{"title": "t", "content": "c"}, nil, nil)
	h.Set(mcp.HeaderName, "get_entry")
	status, got := e.rawPost(t, h, body)
	if status == http.StatusOK && path(got, "error") == nil {
		t.Fatalf("a mismatched Mcp-Name was served: %d %v", status, got)
	}
	h.Set(mcp.HeaderName, "create_entry")
	h.Set(mcp.HeaderMethod, "tools/list")
	status, got = e.rawPost(t, h, body)
	if status == http.StatusOK && path(got, "error") == nil {
		t.Fatalf("a mismatched Mcp-Method was served: %d %v", status, got)
	}
	if n := countEntries(t, e.store, e.alice.ID); n != 0 {
		t.Fatalf("%d entries written through mismatched headers", n)
	}
}

// A body over the limit is refused before it is parsed
// (TestBadInputIsRefusedClearly covers the chunked case too).
func TestAttack_OversizedJSON(t *testing.T) {
	e := newTestEnv(t)
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", testMaxBody+1) + `"}}`
	if status, _ := e.rawPost(t, h, big); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d, want 413", status)
	}
}

// Arguments nested a hundred thousand levels deep (well within the size
// limit) get an error, and the server goes on serving.
func TestAttack_DeeplyNestedJSON(t *testing.T) {
	e := newTestEnv(t)
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for _, where := range []string{"arguments", "_meta"} {
		h, _ := modernCall(e.alice, "list_entries", map[string]any{}, nil, nil)
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_entries","` + where + `":` + deep + `}}`
		status, got := e.rawPost(t, h, body)
		if status == http.StatusOK && path(got, "error") == nil && path(got, "result", "isError") != true {
			t.Fatalf("nesting in %s was served: %d %v", where, status, got)
		}
	}
	c := e.connect(t, clientConfig{version: v20260728, user: e.alice})
	ok(t, c, "whoami", nil)
}

// Text that is not UTF-8 never reaches the store as such: it is either
// refused or stored as valid UTF-8.
func TestAttack_InvalidUTF8(t *testing.T) {
	e := newTestEnv(t)
	h, _ := modernCall(e.alice, "create_entry", nil, nil, nil)
	body := "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"create_entry\",\"arguments\":{\"title\":\"bad \xff\xfe title\",\"content\":\"\xc3\x28 \xed\xa0\x80\"}," +
		"\"_meta\":{\"" + mcp.MetaKeyProtocolVersion + "\":\"" + v20260728 + "\",\"" + mcp.MetaKeyClientCapabilities + "\":{},\"" + mcp.MetaKeyClientInfo + "\":{\"name\":\"raw\",\"version\":\"1\"}}}}"
	e.rawPost(t, h, body)
	p, err := e.store.ListEntries(context.Background(), e.alice.ID, epicme.EntryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Entries {
		if !utf8.ValidString(s.Title) {
			t.Fatalf("stored a title that is not UTF-8: %q", s.Title)
		}
		got, _ := e.store.GetEntry(context.Background(), e.alice.ID, s.ID)
		if !utf8.ValidString(got.Content) {
			t.Fatalf("stored content that is not UTF-8: %q", got.Content)
		}
	}
}

// A JSON-RPC batch of five thousand writes, one request to the rate
// limiter, is not run on protocol 2026-07-28 (2025-06-18 removed batches):
// 400 with JSON-RPC's Invalid Request, and nothing is stored.
func TestAttack_HugeBatch(t *testing.T) {
	e := newTestEnv(t)
	one := `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"create_entry","arguments":{"title":"t","content":"c"}}}`
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 5_000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strings.Replace(one, "%d", itoa(i+1), 1))
	}
	b.WriteString("]")
	h, _ := modernCall(e.alice, "create_entry", nil, nil, nil)
	h.Del(mcp.HeaderName)
	h.Del(mcp.HeaderMethod)
	status, got := e.rawPost(t, h, b.String())
	if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_REQUEST {
		t.Fatalf("a batch was answered %d %v, want 400 with a JSON-RPC error", status, got)
	}
	if n := countEntries(t, e.store, e.alice.ID); n != 0 {
		t.Fatalf("a batch wrote %d entries", n)
	}
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Replace(mustJSON(i), "\n", "", -1))
}
