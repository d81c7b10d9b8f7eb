package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestDatabaseOutageAnswers503AndRecovers serves from PostgreSQL through a
// link the test cuts: while the database cannot be reached, a 2026-07-28
// tool call gets 503 with Retry-After and a JSON-RPC error saying to try
// again (never "internal error"), a write of an older client fails, and
// /readyz answers 503; once the link is back, the same client's calls
// succeed again without restarting anything.
func TestDatabaseOutageAnswers503AndRecovers(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	link := pgtest.NewLink(t, u.Host)
	u.Host = link.Addr()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()

	is := newJWTIssuer(t)
	addr := freeAddr(t)
	c := newCLI(t)
	c.vars["EPICME_DATABASE_URL"] = u.String()
	s := startServe(t, c, "--addr", addr, "--public-url", "http://"+addr, "--issuer", is.URL)
	resource := s.url + "/mcp"
	token := is.token(resource, "ada", "entries:read entries:write")

	ctx := context.Background()
	cl, err := client.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	create := func(title string) (*mcp.CallToolResult, error) {
		return callTool(cl, "create_entry", map[string]any{"title": title, "content": "through an outage"})
	}
	if res, err := create("before"); err != nil || res.IsError {
		t.Fatalf("before the outage: %v %+v", err, res)
	}

	link.Cut()
	// A 2026-07-28 call of a tool that reads the database.
	post := func() (*http.Response, string) {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{
			"name": "list_entries", "arguments": map[string]any{},
			"_meta": map[string]any{
				mcp.MetaKeyProtocolVersion:    "2026-07-28",
				mcp.MetaKeyClientCapabilities: map[string]any{},
				mcp.MetaKeyClientInfo:         map[string]any{"name": "raw", "version": "1"},
			},
		}})
		req, _ := http.NewRequest(http.MethodPost, resource, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcp.HeaderProtocolVersion, "2026-07-28")
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, "list_entries")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		resp, body := post()
		if resp.StatusCode == http.StatusServiceUnavailable {
			var msg struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(body), &msg)
			if resp.Header.Get("Retry-After") == "" || msg.Error.Code != -32004 || strings.Contains(body, "internal error") {
				t.Fatalf("503 without Retry-After or with the wrong error: %v %s", resp.Header, body)
			}
			return nil
		}
		return fmt.Errorf("with the database unreachable /mcp answers %d: %s", resp.StatusCode, body)
	})
	if code, _ := fetch(t, s.url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d during the outage", code)
	}
	if res, err := create("during"); err == nil && !res.IsError {
		t.Fatal("a write succeeded with the database unreachable")
	}

	link.Restore()
	testenv.Eventually(t, 15*time.Second, func() error {
		if res, err := create("after"); err != nil || res.IsError {
			return fmt.Errorf("no recovery since the database came back: %v %+v", err, res)
		}
		return nil
	})
	if code, _ := fetch(t, s.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d after the outage", code)
	}
}
