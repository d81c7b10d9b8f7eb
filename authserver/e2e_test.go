package authserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/internal/gosdktest"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// countingTransport counts token requests by grant type.
type countingTransport struct {
	mu     sync.Mutex
	grants map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, authserver.TokenPath) && r.Body != nil {
		body, _ := r.GetBody()
		buf := new(strings.Builder)
		if body != nil {
			b := make([]byte, 4096)
			n, _ := body.Read(b)
			buf.Write(b[:n])
		}
		q, _ := url.ParseQuery(buf.String())
		c.mu.Lock()
		c.grants[q.Get("grant_type")]++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(grant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.grants[grant]
}

// TestEndToEnd_GoSDKClient drives the official Go SDK client through
// discovery, dynamic registration, authorization with sign-in and consent,
// token exchange, tool calls, a 403 step-up and a refresh.
func TestEndToEnd_GoSDKClient(t *testing.T) {
	// Access tokens live 5 s: the oauth2 package treats a token within
	// 10 s of expiry as expired, so every new request refreshes first.
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.AccessTokenTTL = 5 * time.Second })
	e.MountMCP()
	counter := &countingTransport{grants: map[string]int{}}
	httpClient := &http.Client{Transport: counter}

	b := e.Agent()
	var authorizations atomic.Int32
	handler := gosdktest.Registering(t, "go-sdk e2e", "http://127.0.0.1:8976/callback", func(_ context.Context, authURL string) (*url.URL, error) {
		n := authorizations.Add(1)
		r := b.Get(authURL)
		if strings.Contains(r.Body, `name="password"`) {
			r = b.SignIn(r.Body, testserver.Email, testserver.Password)
		}
		if strings.Contains(r.Body, `name="decision"`) {
			if n == 1 {
				// The first time, the user grants only what whoami needs.
				r = b.Consent(r.Body, epicme.ScopeUserRead)
			} else {
				r = b.Consent(r.Body)
			}
		}
		if r.Status != http.StatusFound {
			return nil, errors.New("authorization did not redirect: " + r.Body)
		}
		return url.Parse(r.Header.Get("Location"))
	}, httpClient)
	session := gosdktest.Connect(t, e.Resource, "e2e", handler, httpClient)
	ctx := context.Background()

	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %v %+v", err, res)
	}
	if !strings.Contains(testserver.ToolText(res), testserver.Email) {
		t.Fatalf("whoami answered %q", testserver.ToolText(res))
	}
	if n := authorizations.Load(); n != 1 {
		t.Fatalf("%d authorizations so far, want 1", n)
	}
	// create_entry needs entries:write, which the user did not grant: the
	// 403 insufficient_scope makes the client authorize again (step-up).
	res, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "create_entry", Arguments: map[string]any{"title": "Hello", "content": "From the Go SDK"}})
	if err != nil || res.IsError {
		t.Fatalf("create_entry after step-up: %v %+v", err, res)
	}
	if n := authorizations.Load(); n != 2 {
		t.Fatalf("%d authorizations, want 2 (one step-up)", n)
	}
	// The access token is near expiry: the next call refreshes, and the
	// refreshed token carries the stepped-up scopes.
	before := counter.count("refresh_token")
	res, err = session.CallTool(ctx, &mcp.CallToolParams{Name: "create_entry", Arguments: map[string]any{"title": "Again", "content": "After a refresh"}})
	if err != nil || res.IsError || !strings.Contains(testserver.ToolText(res), "Again") {
		t.Fatalf("create_entry after refresh: %v %+v", err, res)
	}
	if counter.count("refresh_token") <= before {
		t.Fatalf("no refresh grant was used (grants: %v)", counter.grants)
	}
	if counter.count("authorization_code") != 2 {
		t.Fatalf("code grants %d, want 2 (grants %v, authorizations %d)", counter.count("authorization_code"), counter.grants, authorizations.Load())
	}
}

// TestEndToEnd_GoSDKClientWithMetadataDocument has the Go SDK client
// identify itself by a Client ID Metadata Document instead of registering.
func TestEndToEnd_GoSDKClientWithMetadataDocument(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["client.example.com"] = [][]netip.Addr{{publicIP}}
	id := "https://client.example.com/go-sdk.json"
	d.serveJSON("/go-sdk.json", cimdDoc(id), "max-age=60")
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	e.MountMCP()
	b := e.Agent()
	handler, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &sdkauth.ClientIDMetadataDocumentConfig{URL: id},
		RedirectURL:                    "http://127.0.0.1:7777/cb",
		AuthorizationCodeFetcher: gosdktest.Fetcher(func(_ context.Context, authURL string) (*url.URL, error) {
			r := b.Get(authURL)
			if strings.Contains(r.Body, `name="password"`) {
				r = b.SignIn(r.Body, testserver.Email, testserver.Password)
			}
			if !strings.Contains(r.Body, "Doc Client") {
				return nil, errors.New("consent does not name the document's client: " + r.Body)
			}
			r = b.Consent(r.Body)
			testserver.Location(t, r, "http://127.0.0.1:7777/cb") // a redirect to the document's URI
			return url.Parse(r.Header.Get("Location"))
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	session := gosdktest.Connect(t, e.Resource, "e2e", handler, nil)
	ctx := context.Background()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(testserver.ToolText(res), testserver.Email) {
		t.Fatalf("whoami: %v %+v", err, res)
	}
}
