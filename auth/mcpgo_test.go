package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/epicme/epicme/auth"
)

// newMCPGoFixture puts a real mcp-go server behind the resource server.
func newMCPGoFixture(t *testing.T) *fixture {
	f := newFixture(t, fixtureConfig{})
	s := server.NewMCPServer("journal", "1.0.0")
	for _, name := range []string{"whoami", "get_entry", "create_entry"} {
		s.AddTool(mcp.NewTool(name), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ti := auth.TokenInfoFromContext(ctx)
			return mcp.NewToolResultText(req.Params.Name + " by " + ti.Subject), nil
		})
	}
	mux := http.NewServeMux()
	f.rs.Mount(mux, server.NewStreamableHTTPServer(s))
	f.srv.Config.Handler = mux
	return f
}

func TestMCPGo_ClientsOfBothEras(t *testing.T) {
	f := newMCPGoFixture(t)
	for _, era := range []struct {
		name string
		opts []client.ClientOption
	}{
		{"2026-07-28", nil},
		{"2025-11-25", []client.ClientOption{client.WithProtocolVersion("2025-11-25")}},
	} {
		t.Run(era.name, func(t *testing.T) {
			tok := f.jwt("sub", "ada", "scope", "entries:read")
			tr, err := transport.NewStreamableHTTP(f.MCP, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
			if err != nil {
				t.Fatal(err)
			}
			c := client.NewClient(tr, era.opts...)
			defer c.Close()
			ctx := t.Context()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
				t.Fatal(err)
			}
			res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "get_entry"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Content[0].(mcp.TextContent).Text; got != "get_entry by ada" {
				t.Fatalf("got %q", got)
			}
			// A tool the token may not use is a 403, not "tool not found".
			_, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "create_entry"}})
			if err == nil || !strings.Contains(err.Error(), "insufficient_scope") {
				t.Fatalf("create_entry with entries:read: %v", err)
			}
		})
	}
}

func TestMCPGo_SessionOfAnotherSubjectRefused(t *testing.T) {
	f := newMCPGoFixture(t)
	ada := f.jwt("sub", "ada", "scope", "entries:read")
	init := f.post(t, ada, initialize, "Accept", "application/json, text/event-stream")
	sid := init.Header.Get("Mcp-Session-Id")
	if init.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d %q %s", init.StatusCode, sid, init.Body)
	}
	h := []string{"Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-11-25"}
	f.post(t, ada, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h...)
	if r := f.post(t, ada, call("get_entry"), h...); r.StatusCode != 200 || !strings.Contains(r.Body, "get_entry by ada") {
		t.Fatalf("owner: %d %s", r.StatusCode, r.Body)
	}
	bob := f.jwt("sub", "bob", "scope", "entries:read")
	if r := f.post(t, bob, call("get_entry"), h...); r.StatusCode != http.StatusNotFound || strings.Contains(r.Body, "ada") {
		t.Fatalf("bob on ada's session: %d %s", r.StatusCode, r.Body)
	}
}

func TestMCPGo_NoTokenClientSeesChallenge(t *testing.T) {
	f := newMCPGoFixture(t)
	c, err := client.NewStreamableHttpClient(f.MCP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(t.Context(), mcp.InitializeRequest{}); err == nil {
		t.Fatal("initialize without a token succeeded")
	}
}

func TestMCPGo_EventStreamPassesThroughPrivate(t *testing.T) {
	f := newMCPGoFixture(t)
	ada := f.jwt("sub", "ada")
	sid := f.post(t, ada, initialize, "Accept", "application/json, text/event-stream").Header.Get("Mcp-Session-Id")
	f.post(t, ada, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "Mcp-Session-Id", sid, "Accept", "application/json, text/event-stream")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.MCP, nil)
	req.Header.Set("Authorization", "Bearer "+ada)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
		t.Fatalf("event stream Cache-Control %q", cc)
	}
}
