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

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/epicme/epicme"
)

// FuzzJSONRPCBody sends any body and Mcp-Name header to the MCP endpoint
// twice: through the fast path (fastpath.go, which parses the body itself)
// and with it turned off (mcp-go's parser). Neither may panic or answer
// 500, and both must give the same status, content type and answer, so the
// fast path can never accept what the library would refuse, or answer it
// differently.
func FuzzJSONRPCBody(f *testing.F) {
	db, alice, _ := openTestStore(f)
	ctx := context.Background()
	if _, err := db.CreateEntry(ctx, alice.ID, epicme.NewEntry{Title: "Lisbon", Content: "Rode tram 28."}); err != nil {
		f.Fatal(err)
	}
	handler := func(disable bool) http.Handler {
		srv, err := New(db, contextCallers, Options{Logger: quietLogger(), Secret: testSecret, DisableFastPath: disable})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { srv.Close() })
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(epicme.NewContextWithCaller(r.Context(), &epicme.Caller{User: alice, Scopes: epicme.Scopes(epicme.AllScopes)}))
			srv.HTTPHandler().ServeHTTP(w, r)
		})
	}
	fast, slow := handler(false), handler(true)

	meta := `"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + v20260728 + `","` + mcp.MetaKeyClientCapabilities + `":{},"` + mcp.MetaKeyClientInfo + `":{"name":"f","version":"1"}}`
	for _, s := range []struct{ name, body string }{
		{"get_entry", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":1},` + meta + `}}`},
		{"get_entry", `{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"get_entry","arguments":{"id":"1"},` + meta + `}}`},
		{"list_entries", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_entries","arguments":{"limit":1},` + meta + `}}`},
		{"search_entries", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_entries","arguments":{"query":"tram"},` + meta + `}}`},
		{"get_entry", `{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"get_entry"}}`},
		{"get_entry", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":1},"arguments":{"id":2},` + meta + `}}`},
		{"get_entry", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`},
		{"", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":1e400},` + meta + `}}`},
		{"get_entry", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_entry\",\"arguments\":{\"id\":1,\"\xff\":1}," + meta + "}}"},
	} {
		f.Add(s.name, s.body, false)
		f.Add("", strings.Replace(s.body, ","+meta, "", 1), true)
	}
	// On a session (2025-11-25) the same bodies go without the headers of
	// 2026-07-28; the session is opened on each handler once.
	sessions := map[*http.Handler]string{}
	open := func(h *http.Handler) string {
		if sid, ok := sessions[h]; ok {
			return sid
		}
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+v20251125+`","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		rec := httptest.NewRecorder()
		(*h).ServeHTTP(rec, req)
		sid := rec.Header().Get(headerSessionID)
		if sid == "" {
			f.Fatalf("initialize: %d %s", rec.Code, rec.Body)
		}
		sessions[h] = sid
		return sid
	}
	do := func(h *http.Handler, name, body string, onSession bool) (int, string, any) {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if onSession {
			req.Header.Set(mcp.HeaderProtocolVersion, v20251125)
			req.Header.Set(headerSessionID, open(h))
		} else {
			req.Header.Set(mcp.HeaderProtocolVersion, v20260728)
			req.Header.Set(mcp.HeaderMethod, "tools/call")
		}
		if name != "" || !onSession {
			req.Header.Set(mcp.HeaderName, name)
		}
		rec := httptest.NewRecorder()
		(*h).ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		var v any
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &v); err != nil {
				v = string(b)
			}
		}
		return rec.Code, rec.Header().Get("Content-Type"), v
	}
	f.Fuzz(func(t *testing.T, name, body string, onSession bool) {
		if strings.ContainsAny(name, "\r\n\x00") || !validHeaderValue(name) {
			return // net/http would not deliver such a header
		}
		fs, fct, fv := do(&fast, name, body, onSession)
		ss, sct, sv := do(&slow, name, body, onSession)
		if fs >= 500 || ss >= 500 {
			t.Fatalf("status %d / %d for %q", fs, ss, body)
		}
		if fs != ss || fct != sct || !reflect.DeepEqual(fv, sv) {
			t.Fatalf("fast path and library differ on %q (Mcp-Name %q):\nfast:    %d %s %s\nlibrary: %d %s %s", body, name, fs, fct, mustJSON(fv), ss, sct, mustJSON(sv))
		}
	})
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
