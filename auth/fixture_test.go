package auth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/testenv"
)

var testScopeMap = auth.ScopeMap{
	"tools/call": {
		"whoami":       {"user:read"},
		"get_entry":    {"entries:read"},
		"create_entry": {"entries:write"},
	},
	"resources/read": {
		"epicme://entries/{id}": {"entries:read"},
		"epicme://tags":         {"tags:read"},
		"epicme://tags/{id}":    {"tags:read"},
	},
	"prompts/get": {
		"suggest_tags": {"entries:read", "tags:read"},
	},
}

// fixture is a protected MCP-like endpoint on loopback in front of a
// handler that reports what it received.
type fixture struct {
	is   *testIssuer
	srv  *httptest.Server
	MCP  string
	rs   *auth.ResourceServer
	logs *syncBuffer
	// clock is the verifiers' and the middleware's time.
	clock *testenv.Clock
}

type fixtureConfig struct {
	verifier string // "jwt" (default) or "introspection"
	opts     func(*auth.Options)
	jwt      func(*auth.JWTOptions)
	intro    func(*auth.IntrospectionOptions)
	// maxBody caps request bodies before the resource server, as the HTTP
	// server in front of it does (0: no cap).
	maxBody int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// echoHandler answers with what reached it: the token info and the body. It
// mints a session id on initialize, as a stateful MCP server does.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ti := auth.TokenInfoFromContext(r.Context())
		if bytes.Contains(body, []byte(`"initialize"`)) {
			w.Header().Set("Mcp-Session-Id", "session-"+randomToken())
		}
		w.Header().Set("Content-Type", "application/json")
		var ops []string
		if b := auth.BodyFromContext(r.Context()); b != nil {
			for _, op := range b.Ops {
				ops = append(ops, op.String())
			}
		}
		writeJSON(w, map[string]any{"subject": ti.Subject, "scopes": ti.Scopes, "client": ti.ClientID, "body": string(body), "ops": ops})
	})
}

func newFixture(t testing.TB, cfg fixtureConfig) *fixture {
	t.Helper()
	f := &fixture{is: newTestIssuer(t), logs: &syncBuffer{}, clock: testenv.NewClock(time.Now())}
	var handler http.Handler
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	f.MCP = f.srv.URL + "/mcp"
	var v auth.Verifier
	var err error
	switch cfg.verifier {
	case "", "jwt":
		o := auth.JWTOptions{Issuer: f.is.URL, Resource: f.MCP, Now: f.clock.Now}
		if cfg.jwt != nil {
			cfg.jwt(&o)
		}
		v, err = auth.NewJWTVerifier(o)
	case "introspection":
		o := auth.IntrospectionOptions{
			Endpoint: f.is.URL + "/introspect", ClientID: f.is.ClientID, ClientSecret: f.is.ClientSecret,
			Resource: f.MCP, Issuer: f.is.URL, Now: f.clock.Now,
		}
		if cfg.intro != nil {
			cfg.intro(&o)
		}
		v, err = auth.NewIntrospectionVerifier(o)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := auth.Options{
		ResourceURL:           f.MCP,
		AuthorizationServers:  []string{f.is.URL},
		ScopesSupported:       []string{"user:read", "entries:read", "entries:write", "tags:read", "tags:write"},
		ResourceName:          "Test Journal",
		ResourceDocumentation: f.srv.URL + "/docs",
		Realm:                 "EpicMe",
		RequiredScopes:        testScopeMap.Required,
		Logger:                slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:                   f.clock.Now,
	}
	if cfg.opts != nil {
		cfg.opts(&opts)
	}
	if f.rs, err = auth.NewResourceServer(v, opts); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.rs.Mount(mux, echoHandler())
	handler = mux
	if cfg.maxBody > 0 {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, cfg.maxBody)
			mux.ServeHTTP(w, r)
		})
	}
	return f
}

// jwt returns a valid RS256 access token for this fixture's resource with
// the claim changes kv.
func (f *fixture) jwt(kv ...any) string {
	return f.is.sign("rsa-1", nil, f.is.claims(f.MCP, kv...))
}

type reply struct {
	*http.Response
	Body string
}

// parseChallenge reads a WWW-Authenticate value as the Go SDK's client
// does (oauthex.ParseWWWAuthenticate), so the challenges are checked by a
// parser written elsewhere; it wants exactly one Bearer challenge.
func parseChallenge(s string) (auth.Challenge, error) {
	cs, err := oauthex.ParseWWWAuthenticate([]string{s})
	if err != nil {
		return auth.Challenge{}, err
	}
	if len(cs) != 1 || cs[0].Scheme != "bearer" {
		return auth.Challenge{}, fmt.Errorf("want one Bearer challenge, got %+v", cs)
	}
	p := cs[0].Params
	return auth.Challenge{Realm: p["realm"], ResourceMetadata: p["resource_metadata"], Scope: p["scope"], Error: p["error"], ErrorDescription: p["error_description"]}, nil
}

func (r reply) challenge(t testing.TB) auth.Challenge {
	t.Helper()
	vals := r.Header.Values("WWW-Authenticate")
	if len(vals) != 1 {
		t.Fatalf("want exactly one WWW-Authenticate, got %q", vals)
	}
	c, err := parseChallenge(vals[0])
	if err != nil {
		t.Fatalf("challenge %q does not parse: %v", vals[0], err)
	}
	return c
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.Body, err)
	}
	return m
}

// do sends a request; headers are name, value pairs.
func do(t testing.TB, method, url, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp, string(b)}
}

// post sends a JSON-RPC body to the MCP endpoint with a bearer token ("" for
// none) and extra header pairs.
func (f *fixture) post(t testing.TB, token, body string, headers ...string) reply {
	t.Helper()
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	return do(t, http.MethodPost, f.MCP, body, headers...)
}

func call(tool string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

func read(uri string) string {
	return `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"` + uri + `"}}`
}

const initialize = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// hmacWithPublicKey forges an HS256 token keyed with the issuer's public RSA
// key, the classic algorithm-confusion attack (RFC 8725 §2.1).
func hmacWithPublicKey(f *fixture) string {
	enc := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"})
	c, _ := json.Marshal(f.is.claims(f.MCP))
	input := enc(h) + "." + enc(c)
	der, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	mac.Write([]byte(input))
	return input + "." + enc(mac.Sum(nil))
}
