package httpserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/epicme/epicme/httpserver"
)

// challenge stands in for the bearer-token middleware: 401 with a
// WWW-Authenticate challenge and a JSON body unless a token is sent.
func challenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_token"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

var home = &httpserver.HomePage{
	MCPURL: "http://127.0.0.1:1/mcp",
	Links:  []httpserver.Link{{Text: "Sign in to your account", URL: "/oauth/account"}},
}

func TestHomePageNamesTheMCPURLAndLinks(t *testing.T) {
	ts := start(t, httpserver.Config{Auth: challenge, Home: home})
	resp, body := get(t, ts.URL+"/", "Accept", "text/html")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "<code") || !strings.Contains(body, "http://127.0.0.1:1/mcp") || !strings.Contains(body, `<a href="/oauth/account">Sign in to your account</a>`) {
		t.Fatalf("GET / = %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(t, ts.URL+"/favicon.ico"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /favicon.ico = %d, want 204", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/elsewhere"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /elsewhere = %d, want 404", resp.StatusCode)
	}
	// Without a home page, / stays unrouted.
	bare := start(t, httpserver.Config{Auth: challenge})
	if resp, _ := get(t, bare.URL+"/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / without a home page = %d, want 404", resp.StatusCode)
	}
}

// TestAttack_BrowserHintKeepsTheChallenge: the page a browser gets at /mcp
// changes only the body of the 401. The status and the challenge stay, the
// MCP handler is not reached, and MCP clients (which never accept
// text/html) get byte for byte what they got without the hint.
func TestAttack_BrowserHintKeepsTheChallenge(t *testing.T) {
	reached := false
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true; w.Write([]byte("mcp")) })
	with := start(t, httpserver.Config{Auth: challenge, Home: home, MCP: mcp})
	without := start(t, httpserver.Config{Auth: challenge, MCP: mcp})

	resp, body := get(t, with.URL+"/mcp", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer resource_metadata=") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "This is the MCP endpoint") || !strings.Contains(body, "http://127.0.0.1:1/mcp") {
		t.Fatalf("browser GET /mcp = %d, WWW-Authenticate %q, %s\n%s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Content-Type"), body)
	}
	if reached {
		t.Fatal("a browser without a token reached the MCP handler")
	}

	for _, hdr := range [][]string{
		{"Accept", "text/event-stream"},
		{"Accept", "application/json, text/event-stream"},
		{"Accept", "text/html", "Authorization", "Bearer bad"},
	} {
		a, aBody := get(t, with.URL+"/mcp", hdr...)
		b, bBody := get(t, without.URL+"/mcp", hdr...)
		if a.StatusCode != b.StatusCode || aBody != bBody || a.Header.Get("WWW-Authenticate") != b.Header.Get("WWW-Authenticate") || a.Header.Get("Content-Type") != b.Header.Get("Content-Type") {
			t.Errorf("%v: with the hint %d %q %q, without %d %q %q", hdr, a.StatusCode, a.Header.Get("Content-Type"), aBody, b.StatusCode, b.Header.Get("Content-Type"), bBody)
		}
	}
	// With a token, a browser-looking request reaches MCP as before.
	if resp, body := get(t, with.URL+"/mcp", "Accept", "text/html", "Authorization", "Bearer good"); resp.StatusCode != 200 || body != "mcp" {
		t.Errorf("GET /mcp with a token = %d %q", resp.StatusCode, body)
	}
}
