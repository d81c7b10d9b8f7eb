package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/epicme/epicme/auth"
)

// A request without a token gets a challenge that tells the client where the
// metadata is and which scope to ask for.
func ExampleResourceServer_Protect() {
	verifier := auth.VerifierFunc(func(ctx context.Context, token string) (*auth.TokenInfo, error) {
		return nil, auth.ErrInvalidToken // a real server uses NewJWTVerifier or NewIntrospectionVerifier
	})
	rs, err := auth.NewResourceServer(verifier, auth.Options{
		ResourceURL:          "https://journal.example.com/mcp",
		AuthorizationServers: []string{"https://login.example.com"},
		Realm:                "Journal",
		ScopesSupported:      []string{"entries:write"},
		RequiredScopes:       auth.ScopeMap{"tools/call": {"create_entry": {"entries:write"}}}.Required,
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	rs.Mount(mux, http.NotFoundHandler())

	req := httptest.NewRequest("POST", "https://journal.example.com/mcp",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entry"}}`))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://journal.example.com/.well-known/oauth-protected-resource/mcp", nil))
	fmt.Println(w.Body.String())
	// Output:
	// 401
	// Bearer realm="Journal", resource_metadata="https://journal.example.com/.well-known/oauth-protected-resource/mcp", scope="entries:write"
	// {"resource":"https://journal.example.com/mcp","authorization_servers":["https://login.example.com"],"scopes_supported":["entries:write"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["ES256","EdDSA","RS256","PS256"]}
}

func ExampleChallenge_String() {
	c := auth.Challenge{
		Realm:            "Journal",
		ResourceMetadata: "https://journal.example.com/.well-known/oauth-protected-resource/mcp",
		Scope:            "entries:write entries:read",
		Error:            auth.ErrorInsufficientScope,
		ErrorDescription: `needs "entries:write"`,
	}
	fmt.Println(c.String())
	// Output:
	// Bearer realm="Journal", resource_metadata="https://journal.example.com/.well-known/oauth-protected-resource/mcp", scope="entries:write entries:read", error="insufficient_scope", error_description="needs entries:write"
}

func ExampleScopeMap_Required() {
	m := auth.ScopeMap{
		"tools/call":     {"create_entry": {"entries:write"}},
		"resources/read": {"journal://entries/{id}": {"entries:read"}},
	}
	fmt.Println(m.Required("tools/call", "create_entry"))
	fmt.Println(m.Required("resources/read", "journal://entries/42"))
	fmt.Println(m.Required("tools/list", ""))
	// Output:
	// [entries:write]
	// [entries:read]
	// []
}

// With mark3labs/mcp-go: mount its Streamable HTTP handler behind the
// resource server; tool handlers read the verified token from their context.
func Example_mcpGo() {
	s := server.NewMCPServer("journal", "1.0.0")
	s.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Who am I?")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ti := auth.TokenInfoFromContext(ctx)
			return mcp.NewToolResultText(ti.Subject + " via " + ti.ClientID), nil
		})

	// A verifier that knows one token; use NewJWTVerifier or
	// NewIntrospectionVerifier against a real authorization server.
	verifier := auth.VerifierFunc(func(ctx context.Context, token string) (*auth.TokenInfo, error) {
		if token != "token-of-ada" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Issuer: "https://login.example.com", Subject: "ada", ClientID: "notes-app",
			Scopes: []string{"user:read"}, Expiry: time.Now().Add(time.Hour)}, nil
	})

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rs, err := auth.NewResourceServer(verifier, auth.Options{
		ResourceURL:          srv.URL + "/mcp",
		AuthorizationServers: []string{"https://login.example.com"},
		RequiredScopes:       auth.ScopeMap{"tools/call": {"whoami": {"user:read"}}}.Required,
	})
	if err != nil {
		panic(err)
	}
	rs.Mount(mux, server.NewStreamableHTTPServer(s))

	c, err := client.NewStreamableHttpClient(srv.URL+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer token-of-ada"}))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		panic(err)
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	// Output:
	// ada via notes-app
}
