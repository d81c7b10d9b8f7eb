package mcpserver

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// TestScopesFilterWhatIsSeen checks that a token with entries:read only sees
// the entry reading tools and the entry template, and that calling what it
// cannot see is refused naming the missing scope.
func TestScopesFilterWhatIsSeen(t *testing.T) {
	for _, version := range allEras {
		t.Run(version, func(t *testing.T) {
			e := newTestEnv(t)
			full := e.connect(t, clientConfig{version: version, user: e.alice})
			if got := toolNames(t, full); len(got) != 14 {
				t.Errorf("all scopes: %d tools %v", len(got), got)
			}
			ok(t, full, "create_entry", map[string]any{"title": "t", "content": "c"})
			ok(t, full, "create_tag", map[string]any{"name": "n"})

			scopes := epicme.ScopeEntriesRead
			c := e.connect(t, clientConfig{version: version, user: e.alice, scopes: &scopes})
			if got := toolNames(t, c); mustJSON(got) != `["get_entry","list_entries","search_entries"]` {
				t.Errorf("entries:read tools = %v", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tl, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
			if err != nil || len(tl.ResourceTemplates) != 1 || tl.ResourceTemplates[0].URITemplate.Raw() != "epicme://entries/{id}" {
				t.Errorf("entries:read templates = %+v %v", tl, err)
			}
			rl, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
			if err != nil || len(rl.Resources) != 1 || rl.Resources[0].URI != "epicme://entries/1" {
				t.Errorf("entries:read resources = %+v %v", rl, err)
			}
			pl, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
			if err != nil || len(pl.Prompts) != 0 {
				t.Errorf("entries:read prompts = %+v %v", pl, err)
			}

			if msg := toolErr(t, c, "create_tag", map[string]any{"name": "x"}); msg != `tool create_tag requires the "tags:write" scope` {
				t.Errorf("create_tag = %q", msg)
			}
			if msg := toolErr(t, c, "whoami", nil); !strings.Contains(msg, `"user:read"`) {
				t.Errorf("whoami = %q", msg)
			}
			if _, err := readResource(c, "epicme://tags"); err == nil || !strings.Contains(err.Error(), `"tags:read"`) {
				t.Errorf("read tags = %v", err)
			}
			if _, err := getPrompt(c, "suggest_tags", map[string]string{"entryId": "1"}); err == nil || !strings.Contains(err.Error(), `"tags:read"`) {
				t.Errorf("suggest_tags = %v", err)
			}
			if vals := complete(t, c, mcp.ResourceReference{Type: "ref/resource", URI: "epicme://tags/{id}"}, "id", ""); len(vals) != 0 {
				t.Errorf("tag completion without tags:read = %v", vals)
			}
			if _, err := readResource(c, "epicme://entries/1"); err != nil {
				t.Errorf("read entry with entries:read: %v", err)
			}
			if tags, err := e.store.ListTags(context.Background(), e.alice.ID); err != nil || len(tags) != 1 {
				t.Errorf("refused create_tag changed the store: %v %v", tags, err)
			}
		})
	}
}

// TestForbiddenCodeOverHTTP checks the JSON-RPC error of a refused resource
// read on 2026-07-28: code -32003, HTTP 403, naming the scope.
func TestForbiddenCodeOverHTTP(t *testing.T) {
	e := newTestEnv(t)
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set(hdrScopes, epicme.ScopeEntriesRead)
	h.Set(mcp.HeaderProtocolVersion, v20260728)
	h.Set(mcp.HeaderMethod, "resources/read")
	h.Set(mcp.HeaderName, "epicme://tags")
	body := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": map[string]any{
		"uri":   "epicme://tags",
		"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
	}})
	status, got := e.rawPost(t, h, body)
	if status != http.StatusForbidden || num(path(got, "error", "code")) != codeForbidden ||
		path(got, "error", "message") != `resource epicme://tags requires the "tags:read" scope` || num(path(got, "id")) != 7 {
		t.Fatalf("forbidden read = %d %v", status, got)
	}
}

// TestListsArePrivateToTheToken checks that 2026-07-28 list results say
// they may not be shared between authorization contexts (SEP-2549
// cacheScope "private").
func TestListsArePrivateToTheToken(t *testing.T) {
	e := newTestEnv(t)
	for _, method := range []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
		h := http.Header{}
		h.Set(hdrUser, e.alice.ID)
		h.Set(mcp.HeaderProtocolVersion, v20260728)
		h.Set(mcp.HeaderMethod, method)
		body := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": map[string]any{
			"_meta": map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}},
		}})
		status, got := e.rawPost(t, h, body)
		if status != http.StatusOK || path(got, "result", "cacheScope") != "private" {
			t.Errorf("%s: %d cacheScope %v", method, status, path(got, "result", "cacheScope"))
		}
	}
}

// TestScopesDecidedPerRequestInASession checks that a session of a legacy
// revision sees the scopes of each request's token, not those it started
// with: handlers get the current request's context.
func TestScopesDecidedPerRequestInASession(t *testing.T) {
	for _, version := range []string{v20250326, v20251125} {
		t.Run(version, func(t *testing.T) {
			e := newTestEnv(t)
			var mu sync.Mutex
			scopes := strings.Join(epicme.AllScopes, " ")
			c := e.connect(t, clientConfig{version: version, user: e.alice, headerFunc: func() http.Header {
				mu.Lock()
				defer mu.Unlock()
				return http.Header{hdrUser: {e.alice.ID}, hdrScopes: {scopes}}
			}})
			if got := toolNames(t, c); len(got) != 14 {
				t.Fatalf("start: %v", got)
			}
			mu.Lock()
			scopes = epicme.ScopeEntriesRead
			mu.Unlock()
			if got := toolNames(t, c); mustJSON(got) != `["get_entry","list_entries","search_entries"]` {
				t.Errorf("after narrowing: %v", got)
			}
			if msg := toolErr(t, c, "create_tag", map[string]any{"name": "x"}); !strings.Contains(msg, "tags:write") {
				t.Errorf("create_tag after narrowing = %q", msg)
			}
			mu.Lock()
			scopes = epicme.ScopeEntriesRead + " " + epicme.ScopeTagsWrite
			mu.Unlock()
			if out, _ := ok(t, c, "create_tag", map[string]any{"name": "x"}); path(out, "tag", "name") != "x" {
				t.Errorf("create_tag after widening = %v", out)
			}
			if c.GetSessionId() == "" {
				t.Errorf("legacy client has no session")
			}
		})
	}
}

func TestRequiredScopes(t *testing.T) {
	srv := newTestEnv(t).srv
	for _, tc := range []struct{ method, name, want string }{
		{"tools/call", "create_tag", `["tags:write"]`},
		{"tools/call", "search_entries", `["entries:read"]`},
		{"tools/call", "nope", `null`},
		{"prompts/get", "suggest_tags", `["entries:read","tags:read"]`},
		{"resources/read", "epicme://entries/5", `["entries:read"]`},
		{"resources/read", "epicme://tags", `["tags:read"]`},
		{"resources/read", "epicme://users/current", `["user:read"]`},
		{"tools/list", "", `null`},
	} {
		if got := mustJSON(srv.RequiredScopes(tc.method, tc.name)); got != tc.want {
			t.Errorf("RequiredScopes(%s, %s) = %s, want %s", tc.method, tc.name, got, tc.want)
		}
	}
}

// TestEntriesListedAsResourcesByPage checks that resources/list pages
// through the caller's entries, newest first, and only the caller's.
func TestEntriesListedAsResourcesByPage(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for i := 0; i < epicme.DefaultPageSize+5; i++ {
		if _, err := e.store.CreateEntry(ctx, e.alice.ID, epicme.NewEntry{Title: "Day", Content: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.CreateEntry(ctx, e.bob.ID, epicme.NewEntry{Title: "Bob's day", Content: "c"}); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{v20251125, v20260728} {
		c := e.connect(t, clientConfig{version: version, user: e.alice})
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		first, err := c.ListResourcesByPage(lctx, mcp.ListResourcesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Resources) != 2+epicme.DefaultPageSize || first.NextCursor == "" || first.Resources[2].URI != "epicme://entries/55" {
			t.Fatalf("%s first page: %d resources, cursor %q", version, len(first.Resources), first.NextCursor)
		}
		var next mcp.ListResourcesRequest
		next.Params.Cursor = first.NextCursor
		second, err := c.ListResourcesByPage(lctx, next)
		if err != nil {
			t.Fatal(err)
		}
		if len(second.Resources) != 5 || second.NextCursor != "" || second.Resources[4].URI != "epicme://entries/1" {
			t.Fatalf("%s second page = %+v", version, second)
		}
		all, err := c.ListResources(lctx, mcp.ListResourcesRequest{})
		cancel()
		if err != nil || len(all.Resources) != 2+epicme.DefaultPageSize+5 || strings.Contains(mustJSON(all), "Bob's") {
			t.Fatalf("%s all = %d %v", version, len(all.Resources), err)
		}
	}
}

// TestToolAnnotationsAndSchemas checks the annotations of the surface table
// and that every tool declares an output schema.
func TestToolAnnotationsAndSchemas(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // readOnly destructive idempotent
		"whoami": "RO", "get_entry": "RO", "list_entries": "RO", "search_entries": "RO", "get_tag": "RO", "list_tags": "RO",
		"create_entry": "--", "create_tag": "--",
		"update_entry": "DI", "delete_entry": "DI", "update_tag": "DI", "delete_tag": "DI", "remove_tag_from_entry": "DI",
		"add_tag_to_entry": "-I",
	}
	for _, tool := range res.Tools {
		a := tool.Annotations
		got := "--"
		switch {
		case *a.ReadOnlyHint:
			got = "RO"
		case *a.DestructiveHint && *a.IdempotentHint:
			got = "DI"
		case !*a.DestructiveHint && *a.IdempotentHint:
			got = "-I"
		}
		if got != want[tool.Name] || *a.OpenWorldHint {
			t.Errorf("%s annotations = %s", tool.Name, mustJSON(a))
		}
		if !strings.Contains(mustJSON(tool), `"outputSchema":{`) || tool.Description == "" {
			t.Errorf("%s = %s", tool.Name, mustJSON(tool))
		}
	}
}
