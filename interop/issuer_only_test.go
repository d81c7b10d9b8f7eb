package interop

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
)

// These tests show that the authorization server the interop tests rely on
// behaves as the resource-server tests assume: tokens are bound to the
// resource asked for, carry the scopes the user granted, are signed with
// keys from the JWKS, and introspection and revocation answer as RFC 7662
// and RFC 7009 say. They need no EpicMe.

const testResource = "http://127.0.0.1:9/mcp"

var allScopes = []string{"user:read", "entries:read", "entries:write", "tags:read", "tags:write"}

// TestIssuerJWT checks one issuer minting RS256 JWT access tokens; the
// other signing algorithms get an issuer each in TestIssuerJWTAlgorithms.
func TestIssuerJWT(t *testing.T) {
	is := startIssuer(t, issuerOptions{Resource: testResource, Format: "jwt", Alg: "RS256"})
	t.Run("metadata advertises what MCP clients need", func(t *testing.T) { checkIssuerMetadata(t, is) })
	t.Run("access tokens follow RFC 9068", func(t *testing.T) { checkJWTAccessTokens(t, is, "RS256") })
	t.Run("tokens are bound to the requested resource", func(t *testing.T) { checkResourceBinding(t, is) })
	t.Run("consent may grant fewer scopes", func(t *testing.T) { checkConsentNarrows(t, is) })
	t.Run("login refuses a wrong password", func(t *testing.T) { checkWrongPassword(t, is) })
	t.Run("stale client gets expired JWTs", func(t *testing.T) { checkStaleClient(t, is) })
}

// TestIssuerJWTAlgorithms checks JWT access tokens signed with ES256 and
// EdDSA.
func TestIssuerJWTAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			checkJWTAccessTokens(t, startIssuer(t, issuerOptions{Resource: testResource, Format: "jwt", Alg: alg}), alg)
		})
	}
}

// checkIssuerMetadata: both discovery documents (RFC 8414, OpenID Connect)
// name the issuer, its endpoints and S256 as the only PKCE method.
func checkIssuerMetadata(t *testing.T, is *issuer) {
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		req, _ := http.NewRequest(http.MethodGet, is.Issuer+path, nil)
		var meta map[string]any
		if status := doJSON(t, req, &meta); status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, status)
		}
		if meta["issuer"] != is.Issuer {
			t.Errorf("%s: issuer %v, want %s", path, meta["issuer"], is.Issuer)
		}
		for _, field := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint", "registration_endpoint"} {
			if s, _ := meta[field].(string); !strings.HasPrefix(s, is.Issuer+"/") {
				t.Errorf("%s: %s = %v, want an endpoint of the issuer", path, field, meta[field])
			}
		}
		if m, _ := meta["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
			t.Errorf("%s: code_challenge_methods_supported %v, want [S256]", path, meta["code_challenge_methods_supported"])
		}
	}
}

// checkJWTAccessTokens: a token verifies with a JWKS key and carries the
// RFC 9068 header and claims; the JWKS holds no private key.
func checkJWTAccessTokens(t *testing.T, is *issuer, alg string) {
	keys := fetchJWKS(t, is.JWKSURI)
	for _, k := range keys {
		if k.D != "" {
			t.Fatalf("JWKS publishes the private part of key %s", k.Kid)
		}
	}

	tok := is.mint(t, tokenRequest{User: "alice", Scopes: allScopes})
	j := decodeJWT(t, tok.AccessToken)
	if err := verifyJWT(j, keys); err != nil {
		t.Fatal(err)
	}
	// RFC 9068 §2.1: typ at+jwt; §2.2: iss, exp, aud, sub, client_id, iat, jti.
	if j.Header["typ"] != "at+jwt" || j.Header["alg"] != alg {
		t.Errorf("header %v, want typ at+jwt and alg %s", j.Header, alg)
	}
	want := map[string]any{"iss": is.Issuer, "aud": testResource, "sub": "user-alice", "client_id": "interop-app", "scope": strings.Join(allScopes, " ")}
	for k, v := range want {
		if j.Claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, j.Claims[k], v)
		}
	}
	exp, _ := j.Claims["exp"].(float64)
	if exp < float64(time.Now().Unix()) {
		t.Errorf("exp %v is already past", exp)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
}

// checkResourceBinding: the token's aud is the resource asked for
// (RFC 8707 §2); an unknown resource is invalid_target.
func checkResourceBinding(t *testing.T, is *issuer) {
	tok := is.mint(t, tokenRequest{User: "bob", Scopes: allScopes, Resource: is.OtherResource})
	if aud := decodeJWT(t, tok.AccessToken).Claims["aud"]; aud != is.OtherResource {
		t.Fatalf("aud %v, want %s", aud, is.OtherResource)
	}
	_, err := is.authorize(tokenRequest{User: "bob", Scopes: allScopes, Resource: "http://127.0.0.1:9/unknown"})
	if err == nil || !strings.Contains(err.Error(), "invalid_target") {
		t.Fatalf("unknown resource: %v, want invalid_target (RFC 8707 §2)", err)
	}
}

// checkConsentNarrows: scopes the user unticks are not in the token.
func checkConsentNarrows(t *testing.T, is *issuer) {
	tok := is.mint(t, tokenRequest{User: "carol", Scopes: allScopes, Grant: []string{"user:read"}})
	if got := decodeJWT(t, tok.AccessToken).Claims["scope"]; got != "user:read" {
		t.Fatalf("scope %v, want only user:read", got)
	}
}

// checkWrongPassword: the login page refuses a wrong password.
func checkWrongPassword(t *testing.T, is *issuer) {
	_, err := is.authorize(tokenRequest{User: "alice", Password: "not-her-password", Scopes: allScopes})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("wrong password: %v, want a refusal", err)
	}
}

// checkStaleClient: interop-stale's JWTs are already expired.
func checkStaleClient(t *testing.T, is *issuer) {
	tok := is.mint(t, tokenRequest{User: "alice", ClientID: "interop-stale", Scopes: allScopes})
	exp, _ := decodeJWT(t, tok.AccessToken).Claims["exp"].(float64)
	if exp > float64(time.Now().Add(-5*time.Minute).Unix()) {
		t.Fatalf("exp %v is not well in the past", exp)
	}
}

func TestIssuerOpaqueTokensAndIntrospection(t *testing.T) {
	is := startIssuer(t, issuerOptions{Resource: testResource, Format: "opaque", ShortTTL: 1})

	tok := is.mint(t, tokenRequest{User: "alice", Scopes: []string{"user:read", "entries:read"}})
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatalf("opaque mode issued what looks like a JWT")
	}

	t.Run("active token names subject, audience and scopes", func(t *testing.T) {
		got := is.introspect(t, tok.AccessToken)
		want := map[string]any{"active": true, "sub": "user-alice", "aud": testResource, "scope": "user:read entries:read", "client_id": "interop-app", "iss": is.Issuer}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})

	t.Run("another resource's token says so", func(t *testing.T) {
		other := is.mint(t, tokenRequest{User: "alice", Scopes: allScopes, Resource: is.OtherResource})
		if got := is.introspect(t, other.AccessToken); got["active"] != true || got["aud"] != is.OtherResource {
			t.Fatalf("introspection %v, want active with aud %s", got, is.OtherResource)
		}
	})

	t.Run("unknown token is inactive and nothing else", func(t *testing.T) {
		got := is.introspect(t, "no-such-token")
		if len(got) != 1 || got["active"] != false {
			t.Fatalf("introspection %v, want only active:false (RFC 7662 §2.2)", got)
		}
	})

	t.Run("introspection needs client authentication", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, is.IntrospectionEndpoint, strings.NewReader("token="+tok.AccessToken))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(is.ResourceServerClient.ClientID, "wrong-secret")
		var out map[string]any
		if status := doJSON(t, req, &out); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %v, want 401 invalid_client", status, out)
		}
	})

	t.Run("revoked token is inactive", func(t *testing.T) {
		victim := is.mint(t, tokenRequest{User: "bob", Scopes: allScopes})
		is.revoke(t, "interop-app", victim.AccessToken)
		if got := is.introspect(t, victim.AccessToken); got["active"] != false {
			t.Fatalf("after revocation: %v", got)
		}
	})

	t.Run("short-lived token expires", func(t *testing.T) {
		short := is.mint(t, tokenRequest{User: "bob", ClientID: "interop-short", Scopes: allScopes})
		if short.ExpiresIn > is.ShortTTL {
			t.Fatalf("expires_in %d, want at most %d", short.ExpiresIn, is.ShortTTL)
		}
		testenv.Eventually(t, time.Duration(is.ShortTTL)*time.Second+5*time.Second, func() error {
			if is.introspect(t, short.AccessToken)["active"] == true {
				return errors.New("the token is still active past its lifetime")
			}
			return nil
		})
	})

	t.Run("refresh token rotates", func(t *testing.T) {
		fresh, err := is.refresh("interop-app", tok.RefreshToken, "")
		if err != nil {
			t.Fatal(err)
		}
		if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
			t.Fatal("refresh did not rotate the refresh token")
		}
		if got := is.introspect(t, fresh.AccessToken); got["aud"] != testResource || got["sub"] != "user-alice" {
			t.Fatalf("refreshed token: %v", got)
		}
		var te *tokenError
		if _, err := is.refresh("interop-app", tok.RefreshToken, ""); !errors.As(err, &te) || te.Code != "invalid_grant" {
			t.Fatalf("reusing a rotated refresh token: %v, want invalid_grant", err)
		}
	})
}
