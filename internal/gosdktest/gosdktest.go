// Package gosdktest has the official Go SDK client sign in to EpicMe the
// way a person's client would: it registers itself (RFC 7591), sends the
// person to the authorization URL and redeems the code the redirect
// carries. The tests that use the SDK as a real client share it; who plays
// the person (a cookie-jar agent or a headless Chromium) is theirs to say.
package gosdktest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Authorize plays the person at the authorization URL (sign-in, consent)
// and returns the URL the authorization server redirected to.
type Authorize func(ctx context.Context, authURL string) (*url.URL, error)

// Fetcher is an SDK code fetcher that gets each code by authorize.
func Fetcher(authorize Authorize) sdkauth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
		u, err := authorize(ctx, args.URL)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		// RFC 6749 §4.1.2.1: a refusal comes back as error parameters.
		if q.Get("error") != "" {
			return nil, errors.New(q.Get("error") + ": " + q.Get("error_description"))
		}
		return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	}
}

// Registering is an authorization-code handler that registers a public
// client named name with one redirect URI (nothing need listen there: the
// redirect is read, not followed), and gets each code by authorize. client
// (nil: the default) carries every request the SDK makes.
func Registering(tb testing.TB, name, redirect string, authorize Authorize, client *http.Client) *sdkauth.AuthorizationCodeHandler {
	tb.Helper()
	h, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &sdkauth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName:              name,
				RedirectURIs:            []string{redirect},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				TokenEndpointAuthMethod: "none",
			},
		},
		AuthorizationCodeFetcher: Fetcher(authorize),
		Client:                   client,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// Connect connects an SDK client named name to the MCP endpoint with
// handler: connecting, sign-in included, may take a minute at most. The
// session is closed when the test ends.
func Connect(tb testing.TB, endpoint, name string, handler sdkauth.OAuthHandler, client *http.Client) *mcp.ClientSession {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	session, err := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: handler, HTTPClient: client}, nil)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", endpoint, err)
	}
	tb.Cleanup(func() { session.Close() })
	return session
}
