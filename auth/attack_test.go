package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/auth"
)

// A client holding a token a user granted to one resource server (say, a
// calendar) replays it at this one, which trusts the same issuer: the
// audience is not this resource, so it is refused as invalid_token with
// 401 and the handler never runs. TestRule_Audience_OtherResource_401
// tries more audience shapes.
func TestAttack_TokenReplayAcrossResources(t *testing.T) {
	for _, kind := range []string{"jwt", "introspection"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, fixtureConfig{verifier: kind})
			// A second resource server of the same issuer, on its own
			// address: the calendar.
			other := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(other.Close)
			calendar := other.URL + "/mcp"
			var tok string
			if kind == "jwt" {
				tok = f.jwt("aud", calendar)
			} else {
				tok = f.is.opaque(map[string]any{"sub": "u", "aud": calendar, "scope": "entries:read", "exp": f.clock.Now().Unix() + 3600})
			}
			r := f.post(t, tok, call("list_entries"))
			if r.StatusCode != http.StatusUnauthorized || r.challenge(t).Error != auth.ErrorInvalidToken {
				t.Fatalf("a token for %s replayed here: %d %s", calendar, r.StatusCode, r.Body)
			}
			// And the other way: this resource's valid token is refused by
			// a verifier configured for the calendar.
			mine := f.jwt()
			v, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: f.is.URL, Resource: calendar, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(t.Context(), mine); err == nil {
				t.Fatalf("the calendar accepted a token for %s", f.MCP)
			}
		})
	}
}

// An issuer that accepts connections and never answers (introspection,
// and JWKS) cannot hold requests: each call gives up at the verifier's
// timeout with ErrUnavailable, which the middleware turns into 503 with
// Retry-After (TestRule_Unavailable_503WithRetryAfterNever401), not 401.
func TestAttack_SlowIssuer(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt()

	iv, err := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{
		Endpoint: hang.URL + "/introspect", ClientID: "rs", ClientSecret: "s", Resource: f.MCP, Issuer: hang.URL,
		Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iv.Verify(t.Context(), "opaque-token"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("introspection against a silent issuer: %v, want ErrUnavailable", err)
	}
	jv, err := auth.NewJWTVerifier(auth.JWTOptions{Issuer: f.is.URL, JWKSURL: hang.URL + "/jwks", Resource: f.MCP, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jv.Verify(t.Context(), tok); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("JWKS from a silent issuer: %v, want ErrUnavailable", err)
	}
}

// TestAttack_ParserDifferential_DuplicateMembers: a message naming a
// member twice (in any object, the arguments too) is read differently by JSON decoders (encoding/json keeps
// the last, others the first), so a scope check reading one operation
// could let the handler run another. Every such body is refused with one
// parse error, before any scope decision.
func TestAttack_ParserDifferential_DuplicateMembers(t *testing.T) {
	f := newFixture(t, fixtureConfig{})
	tok := f.jwt("scope", "entries:read")
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"create_entry"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","name":"create_entry"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry"},"params":{"name":"create_entry"}}`,
		`{"jsonrpc":"2.0","id":1,"\u006dethod":"tools/call","method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`[` + call("get_entry") + `,{"jsonrpc":"2.0","id":2,"method":"ping","method":"tools/call","params":{"name":"create_entry"}}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":1,"id":2}}}`,
	} {
		r := f.post(t, tok, body)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "-32700") {
			t.Errorf("%s: %d %s, want 400 with a parse error", body, r.StatusCode, r.Body)
		}
		if strings.Contains(r.Body, "get_entry by") || strings.Contains(r.Body, `"subject"`) {
			t.Errorf("%s reached the handler", body)
		}
	}
}
