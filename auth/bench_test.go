package auth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/internal/dpoptest"
)

// BenchmarkCachedVerify measures a verification answered from the cache
// (target: under 5 µs), the path almost every request takes.
func BenchmarkCachedVerify(b *testing.B) {
	is := newTestIssuer(b)
	resource := "https://journal.example/mcp"
	b.Run("jwt", func(b *testing.B) {
		v, _ := auth.NewJWTVerifier(auth.JWTOptions{Issuer: is.URL, Resource: resource})
		tok := is.sign("rsa-1", nil, is.claims(resource))
		benchVerify(b, v, tok)
	})
	b.Run("introspection", func(b *testing.B) {
		v, _ := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{
			Endpoint: is.URL + "/introspect", ClientID: is.ClientID, ClientSecret: is.ClientSecret,
			Resource: resource, Issuer: is.URL,
		})
		tok := is.opaque(map[string]any{"sub": "u", "aud": resource, "exp": time.Now().Add(time.Hour).Unix()})
		benchVerify(b, v, tok)
	})
}

func benchVerify(b *testing.B, v auth.Verifier, tok string) {
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJWTVerifyCold measures a full verification (parse, key lookup,
// signature, claims) with the cache disabled, per algorithm.
func BenchmarkJWTVerifyCold(b *testing.B) {
	is := newTestIssuer(b)
	resource := "https://journal.example/mcp"
	for _, tc := range []struct{ alg, kid string }{{"RS256", "rsa-1"}, {"ES256", "ec-1"}, {"EdDSA", "ed-1"}} {
		b.Run(tc.alg, func(b *testing.B) {
			v, _ := auth.NewJWTVerifier(auth.JWTOptions{Issuer: is.URL, Resource: resource, CacheSize: -1})
			benchVerify(b, v, is.sign(tc.kid, nil, is.claims(resource)))
		})
	}
}

// BenchmarkMiddleware compares a trivial handler alone and behind the
// resource server (cached token, scope check, body read and handed on).
func BenchmarkMiddleware(b *testing.B) {
	is := newTestIssuer(b)
	resource := "https://journal.example/mcp"
	trivial := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
	v, _ := auth.NewJWTVerifier(auth.JWTOptions{Issuer: is.URL, Resource: resource})
	rs, err := auth.NewResourceServer(v, auth.Options{
		ResourceURL: resource, AuthorizationServers: []string{is.URL}, RequiredScopes: testScopeMap.Required,
	})
	if err != nil {
		b.Fatal(err)
	}
	tok := is.sign("rsa-1", nil, is.claims(resource))
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":12}}}`
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, resource, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, trivial) })
	b.Run("protected", func(b *testing.B) { run(b, rs.Protect(trivial)) })
	// A DPoP client's call: a bound token, and a proof signed beforehand
	// (a client signs a new one for every request).
	b.Run("protected-dpop", func(b *testing.B) {
		k := dpoptest.NewKey(b)
		bound := is.sign("rsa-1", nil, is.claims(resource, "cnf", map[string]any{"jkt": k.JKT}))
		proofs := make([]string, 20000)
		for i := range proofs {
			proofs[i] = k.Proof(b, map[string]any{"jti": randomToken(), "htm": "POST", "htu": resource, "iat": time.Now().Unix(), "ath": ath(bound)}, nil)
		}
		h := rs.Protect(trivial)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i == len(proofs) {
				b.Fatal("not enough proofs signed: run with -benchtime of at most 20000x")
			}
			req := httptest.NewRequest(http.MethodPost, resource, strings.NewReader(body))
			req.Header.Set("Authorization", "DPoP "+bound)
			req.Header.Set("DPoP", proofs[i])
			req.Header.Set("Content-Type", "application/json")
			i++
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
	})
}

// BenchmarkReadOperations measures the one parse of a /mcp body: a
// 2026-07-28 tools/call with its _meta, as every request carries.
func BenchmarkReadOperations(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"create_entry","arguments":{"title":"A day at the lake","content":"We walked around the lake and then had lunch at the small café by the pier.","mood":"happy","tags":[1,2,3]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1.0.0"}}}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := auth.ReadOperations(body); err != nil {
			b.Fatal(err)
		}
	}
}
