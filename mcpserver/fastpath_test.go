package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestFastPathMatchesLibrary sends the same requests to an adapter with the
// fast path and to one without it (every request through mcp-go) and
// requires the same status, content type and JSON answer. It also checks
// which requests the fast path took, so a change that quietly sends
// everything to mcp-go (or takes what it should not) fails here.
func TestFastPathMatchesLibrary(t *testing.T) {
	db, alice, bob := openTestStore(t)
	ctx := context.Background()
	tag, err := db.CreateTag(ctx, alice.ID, epicme.NewTag{Name: "travel"})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := db.CreateEntry(ctx, alice.ID, epicme.NewEntry{
		Title: "Lisbon <&> trams", Content: "Rode tram 28 up the hill.", IsPrivate: true, TagIDs: []int64{tag.ID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateEntry(ctx, bob.ID, epicme.NewEntry{Title: "Bob's", Content: "Not for Alice."}); err != nil {
		t.Fatal(err)
	}

	newHandler := func(disable bool) (*Server, http.Handler) {
		srv, err := New(db, contextCallers, Options{Logger: quietLogger(), Secret: testSecret, DisableFastPath: disable})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scopes := epicme.Scopes(epicme.AllScopes)
			if v, ok := r.Header[hdrScopes]; ok {
				scopes = epicme.ParseScopes(strings.Join(v, " "))
			}
			r = r.WithContext(epicme.NewContextWithCaller(r.Context(), &epicme.Caller{User: alice, Scopes: scopes}))
			srv.HTTPHandler().ServeHTTP(w, r)
		})
	}
	fastSrv, fast := newHandler(false)
	_, slow := newHandler(true)

	meta := map[string]any{
		mcp.MetaKeyProtocolVersion:    v20260728,
		mcp.MetaKeyClientCapabilities: map[string]any{},
		mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "1"},
	}
	call := func(id any, tool string, args any, m map[string]any) string {
		params := map[string]any{"name": tool, "_meta": m}
		if args != nil {
			params["arguments"] = args
		}
		return mustJSON(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
	}
	noInfo := map[string]any{mcp.MetaKeyProtocolVersion: v20260728, mcp.MetaKeyClientCapabilities: map[string]any{}}
	noCaps := map[string]any{mcp.MetaKeyProtocolVersion: v20260728}
	older := map[string]any{mcp.MetaKeyProtocolVersion: "2025-11-25", mcp.MetaKeyClientCapabilities: map[string]any{}}

	cases := []struct {
		name     string
		tool     string // Mcp-Name header
		body     string
		scopes   string // "" means all
		wantFast bool
	}{
		{"get_entry", "get_entry", call(1, "get_entry", map[string]any{"id": entry.ID}, meta), "", true},
		{"get_entry string id", "get_entry", call("req-7", "get_entry", map[string]any{"id": entry.ID}, meta), "", true},
		{"get_entry without clientInfo", "get_entry", call(2, "get_entry", map[string]any{"id": entry.ID}, noInfo), "", true},
		{"get_entry of another user's id", "get_entry", call(3, "get_entry", map[string]any{"id": 2}, meta), "", true},
		{"get_entry missing id", "get_entry", call(4, "get_entry", map[string]any{}, meta), "", true},
		{"get_entry id of wrong type", "get_entry", call(5, "get_entry", map[string]any{"id": "seven"}, meta), "", true},
		{"get_entry no arguments", "get_entry", call(6, "get_entry", nil, meta), "", true},
		{"list_entries", "list_entries", call(7, "list_entries", map[string]any{"limit": 10}, meta), "", true},
		{"list_entries bad limit", "list_entries", call(8, "list_entries", map[string]any{"limit": 1000}, meta), "", true},
		{"search_entries", "search_entries", call(9, "search_entries", map[string]any{"query": "tram"}, meta), "", true},
		{"list_tags", "list_tags", call(10, "list_tags", map[string]any{}, meta), "", true},
		{"get_tag", "get_tag", call(11, "get_tag", map[string]any{"id": tag.ID}, meta), "", true},
		{"whoami", "whoami", call(12, "whoami", map[string]any{}, meta), "", true},
		{"without scope goes to the library", "get_entry", call(13, "get_entry", map[string]any{"id": entry.ID}, meta), "tags:read", false},
		{"write tool goes to the library", "delete_entry", call(14, "delete_entry", map[string]any{"id": 999}, meta), "", false},
		{"header name mismatch", "list_tags", call(15, "get_entry", map[string]any{"id": entry.ID}, meta), "", false},
		{"missing clientCapabilities", "get_entry", call(16, "get_entry", map[string]any{"id": entry.ID}, noCaps), "", false},
		{"body version differs from header", "get_entry", call(17, "get_entry", map[string]any{"id": entry.ID}, older), "", false},
		{"arguments not an object", "get_entry", call(18, "get_entry", []any{1}, meta), "", false},
		{"null id", "get_entry", call(nil, "get_entry", map[string]any{"id": entry.ID}, meta), "", false},
		{"batch", "get_entry", "[" + call(19, "get_entry", map[string]any{"id": entry.ID}, meta) + "]", "", false},
		{"not JSON", "get_entry", `{"jsonrpc":"2.0",`, "", false},
	}
	do := func(h http.Handler, c struct {
		name, tool, body, scopes string
		wantFast                 bool
	}) (int, string, any) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcp.HeaderProtocolVersion, v20260728)
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, c.tool)
		if c.scopes != "" {
			req.Header.Set(hdrScopes, c.scopes)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		var v any
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &v); err != nil {
				v = string(body)
			}
		}
		return rec.Code, rec.Header().Get("Content-Type"), v
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := fastSrv.fastServed.Load()
			fs, fct, fv := do(fast, c)
			took := fastSrv.fastServed.Load() != before
			ss, sct, sv := do(slow, c)
			if took != c.wantFast {
				t.Errorf("fast path taken = %v, want %v", took, c.wantFast)
			}
			if fs != ss || fct != sct {
				t.Errorf("status/content type: fast %d %q, library %d %q", fs, fct, ss, sct)
			}
			if !reflect.DeepEqual(fv, sv) {
				t.Errorf("answers differ:\nfast:    %s\nlibrary: %s", mustJSON(fv), mustJSON(sv))
			}
		})
	}
}

// TestFastPathMatchesLibraryOnSessions is TestFastPathMatchesLibrary for
// revisions 2025-03-26..2025-11-25: the same requests on a session, down
// the fast path and through mcp-go, give the same status, content type and
// JSON, and the fast path takes what it should.
func TestFastPathMatchesLibraryOnSessions(t *testing.T) {
	db, alice, _ := openTestStore(t)
	ctx := context.Background()
	tag, err := db.CreateTag(ctx, alice.ID, epicme.NewTag{Name: "travel"})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := db.CreateEntry(ctx, alice.ID, epicme.NewEntry{Title: "Lisbon <&> trams", Content: "Tram 28.", TagIDs: []int64{tag.ID}})
	if err != nil {
		t.Fatal(err)
	}
	newHandler := func(disable bool) (*Server, http.Handler) {
		srv, err := New(db, contextCallers, Options{Logger: quietLogger(), Secret: testSecret, DisableFastPath: disable})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scopes := epicme.Scopes(epicme.AllScopes)
			if v, ok := r.Header[hdrScopes]; ok {
				scopes = epicme.ParseScopes(strings.Join(v, " "))
			}
			r = r.WithContext(epicme.NewContextWithCaller(r.Context(), &epicme.Caller{User: alice, Scopes: scopes}))
			srv.HTTPHandler().ServeHTTP(w, r)
		})
	}
	post := func(h http.Handler, version, sid, body string, header ...string) (int, http.Header, any) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if version != "" {
			req.Header.Set(mcp.HeaderProtocolVersion, version)
		}
		if sid != "" {
			req.Header.Set(headerSessionID, sid)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var v any
		if b := bytes.TrimSpace(rec.Body.Bytes()); len(b) > 0 {
			if err := json.Unmarshal(b, &v); err != nil {
				v = string(b)
			}
		}
		return rec.Code, rec.Header(), v
	}
	open := func(h http.Handler, version string) string {
		init := mustJSON(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
			"protocolVersion": version, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}}})
		status, hdr, v := post(h, "", "", init)
		sid := hdr.Get(headerSessionID)
		if status != http.StatusOK || sid == "" {
			t.Fatalf("initialize %s: %d %v", version, status, v)
		}
		post(h, version, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		return sid
	}
	call := func(id any, tool string, args any) string {
		params := map[string]any{"name": tool}
		if args != nil {
			params["arguments"] = args
		}
		return mustJSON(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
	}
	fastSrv, fast := newHandler(false)
	_, slow := newHandler(true)
	for _, version := range []string{v20250326, v20250618, v20251125} {
		fastSID, slowSID := open(fast, version), open(slow, version)
		cases := []struct {
			name     string
			body     string
			scopes   string
			header   []string
			wantFast bool
		}{
			{"get_entry", call(1, "get_entry", map[string]any{"id": entry.ID}), "", nil, true},
			{"get_entry string id", call("r-2", "get_entry", map[string]any{"id": entry.ID}), "", nil, true},
			{"get_entry missing", call(3, "get_entry", map[string]any{"id": 99}), "", nil, true},
			{"get_entry bad id", call(4, "get_entry", map[string]any{"id": "x"}), "", nil, true},
			{"get_entry no arguments", call(5, "get_entry", nil), "", nil, true},
			{"list_entries", call(6, "list_entries", map[string]any{"limit": 5}), "", nil, true},
			{"search_entries", call(7, "search_entries", map[string]any{"query": "tram"}), "", nil, true},
			{"list_tags", call(8, "list_tags", map[string]any{}), "", nil, true},
			{"get_tag", call(9, "get_tag", map[string]any{"id": tag.ID}), "", nil, true},
			{"whoami", call(10, "whoami", map[string]any{}), "", nil, true},
			{"without scope goes to the library", call(11, "get_entry", map[string]any{"id": entry.ID}), "tags:read", nil, false},
			{"write tool goes to the library", call(12, "delete_entry", map[string]any{"id": 999}), "", nil, false},
			{"Mcp-Method header goes to the library", call(13, "get_entry", map[string]any{"id": entry.ID}), "", []string{mcp.HeaderMethod, "tools/call"}, false},
			{"arguments not an object", call(14, "get_entry", []any{1}), "", nil, false},
			{"tools/list goes to the library", `{"jsonrpc":"2.0","id":15,"method":"tools/list"}`, "", nil, false},
		}
		for _, c := range cases {
			t.Run(version+"/"+c.name, func(t *testing.T) {
				header := c.header
				if c.scopes != "" {
					header = append(header, hdrScopes, c.scopes)
				}
				before := fastSrv.fastServed.Load()
				fs, fh, fv := post(fast, version, fastSID, c.body, header...)
				took := fastSrv.fastServed.Load() != before
				ss, sh, sv := post(slow, version, slowSID, c.body, header...)
				if took != c.wantFast {
					t.Errorf("fast path taken = %v, want %v", took, c.wantFast)
				}
				if fs != ss || fh.Get("Content-Type") != sh.Get("Content-Type") {
					t.Errorf("status/content type: fast %d %q, library %d %q", fs, fh.Get("Content-Type"), ss, sh.Get("Content-Type"))
				}
				if !reflect.DeepEqual(fv, sv) {
					t.Errorf("answers differ:\nfast:    %s\nlibrary: %s", mustJSON(fv), mustJSON(sv))
				}
			})
		}
	}
}
