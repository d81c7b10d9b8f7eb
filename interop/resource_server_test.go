package interop

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// whoami is the whoami tool's structuredContent.
type whoami struct {
	User struct {
		ID      string `json:"id"`
		Issuer  string `json:"issuer"`
		Subject string `json:"subject"`
		Email   string `json:"email"`
	} `json:"user"`
	Scopes []string `json:"scopes"`
}

// TestExternalIssuer runs EpicMe as a resource server of oidc-provider, once
// verifying JWT access tokens (RFC 9068) against the issuer's JWKS and once
// introspecting opaque tokens (RFC 7662), and checks the answers the
// "Resource server" rules demand for tokens users got by signing in on the
// issuer's login page.
func TestExternalIssuer(t *testing.T) {
	for _, verifier := range []string{verifierJWT, verifierIntrospection} {
		t.Run(verifier, func(t *testing.T) {
			t.Parallel()
			const cacheBound = time.Second
			st := startStack(t, stackOptions{Verifier: verifier, CacheBound: cacheBound})
			is := st.is

			t.Run("token for EpicMe maps to the user of its issuer and subject", func(t *testing.T) {
				alice := is.mint(t, tokenRequest{User: "alice", Scopes: allScopes})
				var first whoami
				openSession(t, st.mcpURL, alice.AccessToken).structured(t, "whoami", nil, &first)
				if first.User.Issuer != is.Issuer || first.User.Subject != "user-alice" || first.User.ID == "" {
					t.Fatalf("whoami %+v, want alice of %s", first.User, is.Issuer)
				}
				for _, s := range allScopes {
					if !slices.Contains(first.Scopes, s) {
						t.Errorf("whoami scopes %v lack %s", first.Scopes, s)
					}
				}

				// A second sign-in gives a new token; the subject is the same,
				// so the local user is too.
				again := is.mint(t, tokenRequest{User: "alice", Scopes: []string{"user:read"}})
				var second whoami
				openSession(t, st.mcpURL, again.AccessToken).structured(t, "whoami", nil, &second)
				if second.User.ID != first.User.ID {
					t.Fatalf("alice's second token maps to user %q, first to %q", second.User.ID, first.User.ID)
				}

				bob := is.mint(t, tokenRequest{User: "bob", Scopes: []string{"user:read"}})
				var other whoami
				openSession(t, st.mcpURL, bob.AccessToken).structured(t, "whoami", nil, &other)
				if other.User.ID == first.User.ID || other.User.Subject != "user-bob" {
					t.Fatalf("bob maps to %+v, alice to %+v", other.User, first.User)
				}
			})

			t.Run("each user sees only their own entries", func(t *testing.T) {
				alice := openSession(t, st.mcpURL, is.mint(t, tokenRequest{User: "alice", Scopes: allScopes}).AccessToken)
				carol := openSession(t, st.mcpURL, is.mint(t, tokenRequest{User: "carol", Scopes: allScopes}).AccessToken)
				var created struct {
					Entry struct {
						ID    any    `json:"id"`
						Title string `json:"title"`
					} `json:"entry"`
				}
				alice.structured(t, "create_entry", map[string]any{"title": "Alice's secret", "content": "only for alice"}, &created)
				r := carol.callTool(t, "get_entry", map[string]any{"id": created.Entry.ID})
				if r.Status != http.StatusOK || (r.Error == nil && !strings.Contains(string(r.Result), `"isError":true`)) {
					t.Fatalf("carol reading alice's entry %v: %s %s", created.Entry.ID, r, r.Result)
				}
			})

			t.Run("a session is bound to the subject that opened it", func(t *testing.T) {
				alice := openSession(t, st.mcpURL, is.mint(t, tokenRequest{User: "alice", Scopes: allScopes}).AccessToken)
				bob := &mcpSession{url: st.mcpURL, token: is.mint(t, tokenRequest{User: "bob", Scopes: allScopes}).AccessToken, session: alice.session}
				if r := bob.callTool(t, "whoami", nil); r.Status != http.StatusNotFound {
					t.Fatalf("bob's token on alice's session: %s %s, want 404 (session not found)", r, r.Result)
				}
				var me whoami
				alice.structured(t, "whoami", nil, &me)
				if me.User.Subject != "user-alice" {
					t.Fatalf("alice's session now answers %+v", me.User)
				}
			})

			t.Run("token for another resource is invalid_token", func(t *testing.T) {
				tok := is.mint(t, tokenRequest{User: "alice", Scopes: allScopes, Resource: is.OtherResource})
				r := rawCall(t, st.mcpURL, tok.AccessToken, "whoami")
				wantChallenge(t, r, http.StatusUnauthorized, "invalid_token")
			})

			t.Run("expired token is invalid_token", func(t *testing.T) {
				if verifier == verifierJWT {
					// The issuer dates this client's JWTs ten minutes back, past
					// any clock-skew allowance.
					tok := is.mint(t, tokenRequest{User: "alice", ClientID: "interop-stale", Scopes: allScopes})
					wantChallenge(t, rawCall(t, st.mcpURL, tok.AccessToken, "whoami"), http.StatusUnauthorized, "invalid_token")
					return
				}
				// An opaque token that lives ShortTTL seconds works, then stops:
				// a cached introspection answer never outlives the token's exp.
				tok := is.mint(t, tokenRequest{User: "alice", ClientID: "interop-short", Scopes: allScopes})
				sess := openSession(t, st.mcpURL, tok.AccessToken)
				var me whoami
				sess.structured(t, "whoami", nil, &me)
				deadline := time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second + time.Second)
				for {
					sent := time.Now()
					r := sess.callTool(t, "whoami", nil)
					if r.Status == http.StatusUnauthorized {
						wantChallenge(t, r, http.StatusUnauthorized, "invalid_token")
						return
					}
					if sent.After(deadline) {
						t.Fatalf("token still accepted %v after it expired: %s", time.Duration(tok.ExpiresIn)*time.Second, r)
					}
					time.Sleep(200 * time.Millisecond)
				}
			})

			t.Run("too few scopes is insufficient_scope naming the needed scope", func(t *testing.T) {
				tok := is.mint(t, tokenRequest{User: "bob", Scopes: allScopes, Grant: []string{"user:read"}})
				r := rawCall(t, st.mcpURL, tok.AccessToken, "create_entry")
				wantChallenge(t, r, http.StatusForbidden, "insufficient_scope")
				scopes := strings.Fields(r.Challenge["scope"])
				if !slices.Contains(scopes, "entries:write") || !slices.Contains(scopes, "user:read") {
					t.Fatalf("challenge scope %q, want entries:write joined with the granted user:read", r.Challenge["scope"])
				}
			})

			t.Run("no token is a bare challenge pointing at the metadata", func(t *testing.T) {
				r := rawCall(t, st.mcpURL, "", "whoami")
				if r.Status != http.StatusUnauthorized || r.Challenge["error"] != "" {
					t.Fatalf("no token: %s, want 401 without error", r)
				}
				if r.Challenge["resource_metadata"] != st.baseURL+"/.well-known/oauth-protected-resource/mcp" {
					t.Fatalf("resource_metadata %q", r.Challenge["resource_metadata"])
				}
			})

			t.Run("TypeScript clients", func(t *testing.T) { testClients(t, st) })
			t.Run("TypeScript client with DPoP", func(t *testing.T) { testDPoPClient(t, st) })

			if verifier != verifierIntrospection {
				return
			}
			t.Run("revoked token is refused once the cache bound has passed", func(t *testing.T) {
				tok := is.mint(t, tokenRequest{User: "carol", Scopes: allScopes})
				sess := openSession(t, st.mcpURL, tok.AccessToken)
				var me whoami
				sess.structured(t, "whoami", nil, &me)
				is.revoke(t, "interop-app", tok.AccessToken)
				revoked := time.Now()
				for {
					sent := time.Now()
					r := sess.callTool(t, "whoami", nil)
					if r.Status == http.StatusUnauthorized {
						wantChallenge(t, r, http.StatusUnauthorized, "invalid_token")
						t.Logf("revocation took effect after %v (cache bound %v)", sent.Sub(revoked).Round(time.Millisecond), cacheBound)
						return
					}
					if r.Status != http.StatusOK {
						t.Fatalf("after revocation: %s", r)
					}
					// The bound is a promise. It is measured from when the
					// request was sent, so a slow machine cannot fail it; the
					// slack covers clock granularity, not a cache that ignores
					// the bound.
					if sent.Sub(revoked) > cacheBound+time.Second {
						t.Fatalf("revoked token accepted by a request sent %v after revocation, cache bound %v", sent.Sub(revoked), cacheBound)
					}
					time.Sleep(100 * time.Millisecond)
				}
			})

			// Last: it stops the issuer.
			t.Run("unreachable issuer is 503 with Retry-After, not 401", func(t *testing.T) {
				tok := is.mint(t, tokenRequest{User: "alice", Scopes: allScopes})
				is.proc.stop()
				r := rawCall(t, st.mcpURL, tok.AccessToken, "whoami")
				if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
					t.Fatalf("issuer down: %s, Retry-After %q; want 503 with Retry-After so clients do not re-authorize", r, r.Header.Get("Retry-After"))
				}
			})
		})
	}
}

// wantChallenge checks an OAuth error answer (RFC 6750 §3): the status, one
// Bearer challenge naming the error and the metadata URL, and a JSON body
// with the same error.
func wantChallenge(t *testing.T, r rpcReply, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %s, want HTTP %d %s", r, status, code)
	}
	if !strings.EqualFold(r.Challenge["scheme"], "Bearer") || r.Challenge["error"] != code {
		t.Fatalf("challenge %v, want Bearer error=%q", r.Challenge, code)
	}
	if !strings.HasPrefix(r.Challenge["resource_metadata"], "http://127.0.0.1:") {
		t.Errorf("challenge %v has no absolute resource_metadata", r.Challenge)
	}
	if !strings.Contains(r.Body, `"error":"`+code+`"`) {
		t.Errorf("body %q, want {error: %q, ...}", r.Body, code)
	}
}

// TestExternalIssuerSigningAlgorithms shows EpicMe verifies JWT access tokens
// signed with each algorithm of its allow-list other than the RS256 used
// above, with keys it found in the issuer's JWKS.
func TestExternalIssuerSigningAlgorithms(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			st := startStack(t, stackOptions{Verifier: verifierJWT, Alg: alg})
			tok := st.is.mint(t, tokenRequest{User: "carol", Scopes: []string{"user:read"}})
			if got := decodeJWT(t, tok.AccessToken).Header["alg"]; got != alg {
				t.Fatalf("issuer signed with %v, want %s", got, alg)
			}
			var me whoami
			openSession(t, st.mcpURL, tok.AccessToken).structured(t, "whoami", nil, &me)
			if me.User.Subject != "user-carol" {
				t.Fatalf("whoami %+v", me.User)
			}
		})
	}
}
