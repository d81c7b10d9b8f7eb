package main

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/epicme/epicme/browser"
	"github.com/epicme/epicme/internal/gosdktest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestServePrintsTheOriginOfItsMetadata gives a real client (the Go MCP
// SDK, which checks that the protected resource metadata names the URL it
// was given, RFC 9728 §3.3) the MCP URL serve prints, for each way of
// naming loopback in --addr; the client signs in with a demo account in
// Chromium and calls a tool. Before serve derived one origin from --addr,
// "--addr localhost:P" printed 127.0.0.1 while the metadata said localhost.
func TestServePrintsTheOriginOfItsMetadata(t *testing.T) {
	b := browser.Require(t)
	for _, tc := range []struct{ addr, origin string }{
		{"localhost:0", `http://localhost:\d+`},
		{"127.0.0.1:0", `http://127\.0\.0\.1:\d+`},
		{"[::1]:0", `http://\[::1\]:\d+`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			s := startServeAt(t, newCLI(t), tc.addr)
			out := s.stdout.String()
			if !regexp.MustCompile(`^` + tc.origin + `$`).MatchString(s.url) {
				t.Fatalf("serving at %s, want %s", s.url, tc.origin)
			}
			mcpURL := s.url + "/mcp"
			if !strings.Contains(out, "MCP endpoint:  "+mcpURL+"\n") || !strings.Contains(out, "authorization server "+s.url+" issues the tokens of "+mcpURL) {
				t.Fatalf("banner does not name one origin:\n%s", out)
			}
			m := regexp.MustCompile(`sign in as demo@epicme\.local / (\S+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no demo sign-in in the banner:\n%s", out)
			}
			handler := gosdktest.Registering(t, "origin test", "http://127.0.0.1:8976/callback", func(_ context.Context, authURL string) (*url.URL, error) {
				p, err := b.NewPage()
				if err != nil {
					return nil, err
				}
				defer p.Close()
				return p.Authorize(browser.Authorization{URL: authURL, Email: "demo@epicme.local", Password: m[1]})
			}, nil)
			session := gosdktest.Connect(t, mcpURL, "origin-test", handler, nil)
			ctx := context.Background()
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("whoami: %v %+v", err, res)
			}
			if text := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(text, "demo@epicme.local") {
				t.Fatalf("whoami answered %q", text)
			}
		})
	}
}
