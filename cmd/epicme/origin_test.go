package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
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
			fetch := func(ctx context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
				p, err := b.NewPage()
				if err != nil {
					return nil, err
				}
				defer p.Close()
				u, err := p.Authorize(browser.Authorization{URL: args.URL, Email: "demo@epicme.local", Password: m[1]})
				if err != nil {
					return nil, err
				}
				q := u.Query()
				if q.Get("error") != "" {
					return nil, errors.New(q.Get("error") + ": " + q.Get("error_description"))
				}
				return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
			}
			handler, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
				DynamicClientRegistrationConfig: &sdkauth.DynamicClientRegistrationConfig{
					Metadata: &oauthex.ClientRegistrationMetadata{
						ClientName:              "origin test",
						RedirectURIs:            []string{"http://127.0.0.1:8976/callback"},
						GrantTypes:              []string{"authorization_code", "refresh_token"},
						TokenEndpointAuthMethod: "none",
					},
				},
				AuthorizationCodeFetcher: fetch,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			session, err := mcp.NewClient(&mcp.Implementation{Name: "origin-test", Version: "1"}, nil).
				Connect(ctx, &mcp.StreamableClientTransport{Endpoint: mcpURL, OAuthHandler: handler}, nil)
			if err != nil {
				t.Fatalf("connect to the printed URL %s: %v", mcpURL, err)
			}
			defer session.Close()
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
