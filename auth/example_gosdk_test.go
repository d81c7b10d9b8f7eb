package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/epicme/epicme/auth"
)

// With modelcontextprotocol/go-sdk: go-sdk hands tool handlers its own
// TokenInfo (req.Extra.TokenInfo), filled by its RequireBearerToken, and
// checks in stateful mode that a session keeps its user. Put the resource
// server in front and let go-sdk's middleware copy what was verified.
func Example_goSDK() {
	s := sdk.NewServer(&sdk.Implementation{Name: "journal", Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "whoami"}, func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		ti := req.Extra.TokenInfo
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: ti.UserID}}}, nil, nil
	})

	verifier := auth.VerifierFunc(func(ctx context.Context, token string) (*auth.TokenInfo, error) {
		if token != "token-of-ada" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Issuer: "https://login.example.com", Subject: "ada", ClientID: "notes-app",
			Scopes: []string{"user:read"}, Expiry: time.Now().Add(time.Hour)}, nil
	})
	bridge := sdkauth.RequireBearerToken(func(ctx context.Context, _ string, r *http.Request) (*sdkauth.TokenInfo, error) {
		ti := auth.TokenInfoFromContext(r.Context())
		if ti == nil {
			return nil, sdkauth.ErrInvalidToken
		}
		return &sdkauth.TokenInfo{Scopes: ti.Scopes, Expiration: ti.Expiry, UserID: ti.Subject + "@" + ti.Issuer}, nil
	}, nil)

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
	rs.Mount(mux, bridge(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)))

	httpClient := &http.Client{Transport: bearer{"token-of-ada", http.DefaultTransport}}
	c := sdk.NewClient(&sdk.Implementation{Name: "example", Version: "1"}, nil)
	ctx := context.Background()
	session, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: httpClient}, nil)
	if err != nil {
		panic(err)
	}
	defer session.Close()
	res, err := session.CallTool(ctx, &sdk.CallToolParams{Name: "whoami"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Content[0].(*sdk.TextContent).Text)
	// Output:
	// ada@https://login.example.com
}

// bearer adds a token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
