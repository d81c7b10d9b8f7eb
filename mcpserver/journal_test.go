package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestJournalOverHTTP runs the whole journal surface through a real MCP
// client over real HTTP, once per protocol revision.
func TestJournalOverHTTP(t *testing.T) {
	for _, version := range allEras {
		t.Run(version, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.connect(t, clientConfig{version: version, user: e.alice})
			journalScenario(t, c, e.store, e.alice, version)

			// Bob shares the server but not the journal.
			b := e.connect(t, clientConfig{version: version, user: e.bob})
			if msg := toolErr(t, b, "get_entry", map[string]any{"id": 1}); msg != `Entry with ID "1" not found` {
				t.Errorf("bob get_entry 1 = %q", msg)
			}
			if got, _ := ok(t, b, "list_entries", nil); len(path(got, "entries").([]any)) != 0 {
				t.Errorf("bob sees entries: %v", got)
			}
			_, err := readResource(b, "epicme://entries/1")
			wantRPCError(t, err, notFoundCode(version), `Entry with ID "1" not found`)
		})
	}
}

// TestJournalOverStdio runs the same surface over stdio (pipes), for a legacy
// and the stateless revision.
func TestJournalOverStdio(t *testing.T) {
	for _, version := range []string{v20251125, v20260728} {
		t.Run(version, func(t *testing.T) {
			db, alice, _ := openTestStore(t)
			c, _ := startStdio(t, db, alice, version)
			journalScenario(t, c, db, alice, version)
		})
	}
}

// startStdio serves the adapter over a pair of pipes, resolving every
// request to user, as `epicme stdio --user` does.
func startStdio(t *testing.T, db *sqlite.DB, user *epicme.User, version string, opts ...client.ClientOption) (*client.Client, *Server) {
	t.Helper()
	callers := epicme.CallerResolverFunc(func(context.Context) (*epicme.Caller, error) {
		return &epicme.Caller{User: user, Scopes: epicme.AllScopes}, nil
	})
	srv, err := New(db, callers, Options{Logger: quietLogger(), Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	clientIn, serverOut := io.Pipe()
	serverIn, clientOut := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeStdio(ctx, serverIn, serverOut) }()
	t.Cleanup(func() {
		cancel()
		clientOut.Close()
		serverOut.Close()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("ServeStdio: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("ServeStdio did not return")
		}
		srv.Close()
	})
	c := startClient(t, transport.NewIO(clientIn, clientOut, nil), version, opts...)
	return c, srv
}

func notFoundCode(version string) int {
	if version == v20260728 {
		return mcp.INVALID_PARAMS
	}
	return mcp.RESOURCE_NOT_FOUND
}

func readResource(c *client.Client, uri string) (*mcp.ReadResourceResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req mcp.ReadResourceRequest
	req.Params.URI = uri
	return c.ReadResource(ctx, req)
}

// readJSON reads a resource and decodes its one JSON text.
func readJSON(t *testing.T, c *client.Client, uri string) any {
	t.Helper()
	res, err := readResource(c, uri)
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("read %s: %d contents", uri, len(res.Contents))
	}
	tc, isText := res.Contents[0].(mcp.TextResourceContents)
	if !isText || tc.MIMEType != "application/json" || tc.URI != uri {
		t.Fatalf("read %s: contents %+v", uri, res.Contents[0])
	}
	var v any
	if err := json.Unmarshal([]byte(tc.Text), &v); err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	return v
}

// wantRPCError checks that err is a JSON-RPC error with this code and a
// message containing msg.
func wantRPCError(t *testing.T, err error, code int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d %q", code, msg)
	}
	sentinel := map[int]error{
		mcp.INVALID_PARAMS:     mcp.ErrInvalidParams,
		mcp.RESOURCE_NOT_FOUND: mcp.ErrResourceNotFound,
		mcp.INTERNAL_ERROR:     mcp.ErrInternalError,
	}[code]
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %q is not code %d", err, code)
	}
	if s := err.Error(); !strings.Contains(s, msg) || strings.Contains(s, "-326") {
		t.Fatalf("error %q, want code %d with a message containing %q", s, code, msg)
	}
}

// journalScenario exercises every tool, resource, template, completion and
// the prompt as alice, checking the texts and structured outputs.
func journalScenario(t *testing.T, c *client.Client, db *sqlite.DB, alice *epicme.User, version string) {
	ctx := context.Background()

	// whoami
	me, _ := ok(t, c, "whoami", nil)
	if path(me, "user", "id") != alice.ID || path(me, "user", "email") != "alice@example.com" {
		t.Errorf("whoami = %v", me)
	}
	if got := mustJSON(path(me, "scopes")); got != mustJSON(epicme.AllScopes) {
		t.Errorf("whoami scopes = %s", got)
	}

	// tags
	tag, res := ok(t, c, "create_tag", map[string]any{"name": "hiking", "description": "Walks in the hills"})
	if ts := texts(res); ts[0] != `Tag "hiking" created successfully with ID "1"` {
		t.Errorf("create_tag sentence = %q", ts[0])
	}
	if num(path(tag, "tag", "id")) != 1 || path(tag, "tag", "description") != "Walks in the hills" || path(tag, "tag", "userId") != alice.ID {
		t.Errorf("create_tag = %v", tag)
	}
	if l := links(res); len(l) != 1 || l[0].URI != "epicme://tags/1" || l[0].Description != `Tag: "hiking"` || l[0].MIMEType != "application/json" || l[0].Name != "hiking" {
		t.Errorf("create_tag links = %+v", l)
	}
	ok(t, c, "create_tag", map[string]any{"name": "family"})
	if msg := toolErr(t, c, "create_tag", map[string]any{"name": "Hiking"}); !strings.Contains(strings.ToLower(msg), "hiking") {
		t.Errorf("duplicate tag error = %q", msg)
	}

	// entries
	entry, res := ok(t, c, "create_entry", map[string]any{
		"title": "A day out", "content": "We walked up the hill with the kids.", "mood": "happy",
		"isPrivate": 0, "isFavorite": 1, "tags": []any{1},
	})
	if ts := texts(res); ts[0] != `Entry "A day out" created successfully with ID "1"` {
		t.Errorf("create_entry sentence = %q", ts[0])
	}
	if l := links(res); len(l) != 1 || l[0].URI != "epicme://entries/1" || l[0].Name != "A day out" || l[0].Description != `Journal Entry: "A day out"` {
		t.Errorf("create_entry links = %+v", l)
	}
	if path(entry, "entry", "isPrivate") != false || path(entry, "entry", "isFavorite") != true || path(entry, "entry", "mood") != "happy" {
		t.Errorf("create_entry = %v", entry)
	}
	if path(entry, "entry", "tags", 0, "name") != "hiking" {
		t.Errorf("create_entry tags = %v", path(entry, "entry", "tags"))
	}
	second, _ := ok(t, c, "create_entry", map[string]any{"title": "Quiet evening", "content": "Read a book by the fire.", "isPrivate": true})
	if num(path(second, "entry", "id")) != 2 || path(second, "entry", "isPrivate") != true || path(second, "entry", "isFavorite") != false {
		t.Errorf("second entry = %v", second)
	}
	if third, _ := ok(t, c, "create_entry", map[string]any{"title": "Defaults", "content": "x"}); path(third, "entry", "isPrivate") != true || path(third, "entry", "isFavorite") != false {
		t.Errorf("defaults: isPrivate should be true and isFavorite false: %v", third)
	}
	ok(t, c, "delete_entry", map[string]any{"id": 3})

	got, res := ok(t, c, "get_entry", map[string]any{"id": 1})
	if path(got, "entry", "title") != "A day out" || len(path(got, "entry", "tags").([]any)) != 1 {
		t.Errorf("get_entry = %v", got)
	}
	if len(texts(res)) != 1 || len(links(res)) != 1 {
		t.Errorf("get_entry content = %+v", res.Content)
	}
	if msg := toolErr(t, c, "get_entry", map[string]any{"id": 99}); msg != `Entry with ID "99" not found` {
		t.Errorf("get_entry 99 = %q", msg)
	}
	if msg := toolErr(t, c, "get_entry", map[string]any{"id": "abc"}); msg != "id must be a positive integer" {
		t.Errorf("get_entry abc = %q", msg)
	}
	if msg := toolErr(t, c, "get_entry", map[string]any{}); msg != "id is required (a positive integer)" {
		t.Errorf("get_entry {} = %q", msg)
	}

	list, res := ok(t, c, "list_entries", nil)
	if ts := texts(res); ts[0] != "Found 2 entries." {
		t.Errorf("list_entries sentence = %q", ts[0])
	}
	if num(path(list, "entries", 0, "id")) != 2 || num(path(list, "entries", 1, "id")) != 1 || num(path(list, "entries", 1, "tagCount")) != 1 {
		t.Errorf("list_entries = %v", list)
	}
	if fav, _ := ok(t, c, "list_entries", map[string]any{"favoritesOnly": true}); len(path(fav, "entries").([]any)) != 1 {
		t.Errorf("favoritesOnly = %v", fav)
	}
	if tagged, _ := ok(t, c, "list_entries", map[string]any{"tagIds": []any{1}}); len(path(tagged, "entries").([]any)) != 1 {
		t.Errorf("tagIds = %v", tagged)
	}
	if future, _ := ok(t, c, "list_entries", map[string]any{"from": time.Now().Add(48 * time.Hour).Format(time.DateOnly)}); len(path(future, "entries").([]any)) != 0 {
		t.Errorf("from tomorrow = %v", future)
	}
	page1, _ := ok(t, c, "list_entries", map[string]any{"limit": 1})
	cursor, _ := path(page1, "nextCursor").(string)
	if cursor == "" || len(path(page1, "entries").([]any)) != 1 {
		t.Fatalf("page 1 = %v", page1)
	}
	if page2, _ := ok(t, c, "list_entries", map[string]any{"limit": 1, "cursor": cursor}); num(path(page2, "entries", 0, "id")) != 1 {
		t.Errorf("page 2 = %v", page2)
	}
	if msg := toolErr(t, c, "list_entries", map[string]any{"limit": 500}); msg != "limit must be an integer between 1 and 200" {
		t.Errorf("limit 500 = %q", msg)
	}
	if msg := toolErr(t, c, "list_entries", map[string]any{"from": "yesterday"}); !strings.HasPrefix(msg, "from must be an RFC 3339 date") {
		t.Errorf("from yesterday = %q", msg)
	}

	upd, res := ok(t, c, "update_entry", map[string]any{"id": 1, "title": "A day in the hills", "mood": nil})
	if ts := texts(res); ts[0] != `Entry "A day in the hills" (ID: 1) updated successfully` {
		t.Errorf("update_entry sentence = %q", ts[0])
	}
	if path(upd, "entry", "mood") != nil || path(upd, "entry", "title") != "A day in the hills" {
		t.Errorf("update_entry = %v", upd)
	}
	if msg := toolErr(t, c, "update_entry", map[string]any{"id": 1, "isFavorite": "yes"}); msg != "isFavorite must be a boolean (true/false, or 1/0)" {
		t.Errorf("update_entry isFavorite yes = %q", msg)
	}

	link1, res := ok(t, c, "add_tag_to_entry", map[string]any{"entryId": 1, "tagId": 2})
	if ts := texts(res); ts[0] != `Tag "family" (ID: 2) added to entry "A day in the hills" (ID: 1) successfully` {
		t.Errorf("add_tag_to_entry sentence = %q", ts[0])
	}
	link2, _ := ok(t, c, "add_tag_to_entry", map[string]any{"entryId": 1, "tagId": 2})
	if path(link1, "success") != true || num(path(link1, "entryTag", "entryId")) != 1 || num(path(link1, "entryTag", "tagId")) != 2 ||
		num(path(link1, "entryTag", "id")) != num(path(link2, "entryTag", "id")) {
		t.Errorf("add_tag_to_entry twice = %v, %v", link1, link2)
	}
	if msg := toolErr(t, c, "add_tag_to_entry", map[string]any{"entryId": 1, "tagId": 9}); msg != `Tag ID "9" not found` {
		t.Errorf("add unknown tag = %q", msg)
	}
	if rm, _ := ok(t, c, "remove_tag_from_entry", map[string]any{"entryId": 1, "tagId": 2}); path(rm, "removed") != true {
		t.Errorf("remove = %v", rm)
	}
	if rm, _ := ok(t, c, "remove_tag_from_entry", map[string]any{"entryId": 1, "tagId": 2}); path(rm, "removed") != false {
		t.Errorf("remove again = %v", rm)
	}

	found, res := ok(t, c, "search_entries", map[string]any{"query": "hill"})
	if num(path(found, "results", 0, "id")) != 1 || path(found, "results", 0, "snippet") == "" {
		t.Errorf("search_entries = %v", found)
	}
	if ts := texts(res); ts[0] != `Found 1 entries matching "hill".` {
		t.Errorf("search sentence = %q", ts[0])
	}
	if msg := toolErr(t, c, "search_entries", map[string]any{"query": "***"}); msg != "query must contain at least one word" {
		t.Errorf("search *** = %q", msg)
	}

	if gt, _ := ok(t, c, "get_tag", map[string]any{"id": 1}); path(gt, "tag", "name") != "hiking" {
		t.Errorf("get_tag = %v", gt)
	}
	if msg := toolErr(t, c, "get_tag", map[string]any{"id": 42}); msg != `Tag ID "42" not found` {
		t.Errorf("get_tag 42 = %q", msg)
	}
	tags, res := ok(t, c, "list_tags", nil)
	if ts := texts(res); ts[0] != "Found 2 tags." {
		t.Errorf("list_tags sentence = %q", ts[0])
	}
	if path(tags, "tags", 0, "name") != "family" || path(tags, "tags", 1, "name") != "hiking" {
		t.Errorf("list_tags = %v", tags)
	}
	if ut, res := ok(t, c, "update_tag", map[string]any{"id": 2, "name": "kids", "description": "Time with the children"}); path(ut, "tag", "name") != "kids" || texts(res)[0] != `Tag "kids" (ID: 2) updated successfully` {
		t.Errorf("update_tag = %v %q", ut, texts(res))
	}

	// resources
	if u := readJSON(t, c, "epicme://users/current"); path(u, "id") != alice.ID {
		t.Errorf("users/current = %v", u)
	}
	if all := readJSON(t, c, "epicme://tags"); len(all.([]any)) != 2 || path(all, 0, "name") != "hiking" && path(all, 0, "name") != "kids" {
		t.Errorf("tags = %v", all)
	}
	if one := readJSON(t, c, "epicme://tags/1"); path(one, "name") != "hiking" {
		t.Errorf("tags/1 = %v", one)
	}
	if en := readJSON(t, c, "epicme://entries/1"); path(en, "title") != "A day in the hills" || path(en, "tags", 0, "name") != "hiking" {
		t.Errorf("entries/1 = %v", en)
	}
	_, err := readResource(c, "epicme://entries/99")
	wantRPCError(t, err, notFoundCode(version), `Entry with ID "99" not found`)
	_, err = readResource(c, "epicme://entries/abc")
	wantRPCError(t, err, mcp.INVALID_PARAMS, "must be a positive integer")
	_, err = readResource(c, "epicme://tags/7")
	wantRPCError(t, err, notFoundCode(version), `Tag ID "7" not found`)

	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rl, err := c.ListResources(lctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range rl.Resources {
		uris = append(uris, r.URI)
	}
	for _, want := range []string{"epicme://users/current", "epicme://tags", "epicme://entries/1", "epicme://entries/2"} {
		if !slices.Contains(uris, want) {
			t.Errorf("resources/list %v lacks %s", uris, want)
		}
	}
	tl, err := c.ListResourceTemplates(lctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var templates []string
	for _, rt := range tl.ResourceTemplates {
		templates = append(templates, rt.URITemplate.Raw())
	}
	slices.Sort(templates)
	if mustJSON(templates) != `["epicme://entries/{id}","epicme://tags/{id}"]` {
		t.Errorf("templates = %v", templates)
	}

	// completions
	if vals := complete(t, c, mcp.ResourceReference{Type: "ref/resource", URI: "epicme://entries/{id}"}, "id", ""); mustJSON(vals) != `["2","1"]` {
		t.Errorf("entry id completion = %v", vals)
	}
	if vals := complete(t, c, mcp.ResourceReference{Type: "ref/resource", URI: "epicme://tags/{id}"}, "id", "1"); mustJSON(vals) != `["1"]` {
		t.Errorf("tag id completion = %v", vals)
	}
	if vals := complete(t, c, mcp.PromptReference{Type: "ref/prompt", Name: "suggest_tags"}, "entryId", "2"); mustJSON(vals) != `["2"]` {
		t.Errorf("prompt completion = %v", vals)
	}

	// prompt
	p, err := getPrompt(c, "suggest_tags", map[string]string{"entryId": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 3 {
		t.Fatalf("suggest_tags messages = %+v", p.Messages)
	}
	if txt, _ := p.Messages[0].Content.(mcp.TextContent); !strings.Contains(txt.Text, "create_tag") || !strings.Contains(txt.Text, "add_tag_to_entry") {
		t.Errorf("suggest_tags text = %+v", p.Messages[0].Content)
	}
	if er, _ := p.Messages[2].Content.(mcp.EmbeddedResource); er.Resource == nil {
		t.Errorf("suggest_tags entry resource = %+v", p.Messages[2].Content)
	} else if tr, _ := er.Resource.(mcp.TextResourceContents); tr.URI != "epicme://entries/1" || !strings.Contains(tr.Text, "A day in the hills") {
		t.Errorf("suggest_tags entry resource = %+v", er.Resource)
	}
	_, err = getPrompt(c, "suggest_tags", map[string]string{})
	wantRPCError(t, err, mcp.INVALID_PARAMS, "entryId is required")
	_, err = getPrompt(c, "suggest_tags", map[string]string{"entryId": "abc"})
	wantRPCError(t, err, mcp.INVALID_PARAMS, "entryId must be a positive integer")
	_, err = getPrompt(c, "suggest_tags", map[string]string{"entryId": "99"})
	wantRPCError(t, err, mcp.INVALID_PARAMS, `Entry with ID "99" not found`)

	// deletes (this client has no elicitation: no confirmation)
	dt, res := ok(t, c, "delete_tag", map[string]any{"id": 2})
	if path(dt, "success") != true || texts(res)[0] != `Tag "kids" (ID: 2) deleted successfully` {
		t.Errorf("delete_tag = %v %q", dt, texts(res))
	}
	de, res := ok(t, c, "delete_entry", map[string]any{"id": 2})
	if path(de, "success") != true || path(de, "entry", "title") != "Quiet evening" || texts(res)[0] != `Entry "Quiet evening" (ID: 2) deleted successfully` {
		t.Errorf("delete_entry = %v %q", de, texts(res))
	}
	if _, err := db.GetEntry(ctx, alice.ID, 2); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Errorf("entry 2 still stored: %v", err)
	}
	if msg := toolErr(t, c, "delete_entry", map[string]any{"id": 2}); msg != `Entry with ID "2" not found` {
		t.Errorf("delete_entry again = %q", msg)
	}

	// unknown tool and arguments
	if _, err := callErr(c, "drop_database", nil); err == nil {
		t.Errorf("unknown tool: no error")
	}
	if msg := toolErr(t, c, "get_entry", map[string]any{"id": 1, "sql": "x"}); !strings.HasPrefix(msg, `unknown argument "sql"`) {
		t.Errorf("unknown argument = %q", msg)
	}
}

func complete(t *testing.T, c *client.Client, ref any, arg, value string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req mcp.CompleteRequest
	req.Params.Ref = ref
	req.Params.Argument.Name = arg
	req.Params.Argument.Value = value
	res, err := c.Complete(ctx, req)
	if err != nil {
		t.Fatalf("complete %v: %v", ref, err)
	}
	return res.Completion.Values
}

func getPrompt(c *client.Client, name string, args map[string]string) (*mcp.GetPromptResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var req mcp.GetPromptRequest
	req.Params.Name = name
	req.Params.Arguments = args
	return c.GetPrompt(ctx, req)
}
