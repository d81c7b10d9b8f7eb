package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestRule_HostCheckedOnEveryRouteBehindAProxy runs serve on loopback
// behind a public https URL, as docs/deployment.md sets it up with a proxy
// that passes the Host on. A request for the public name reaches /mcp and
// the OAuth pages (before, mcp-go's own loopback-only Host check refused
// /mcp with 403 behind such a proxy); a request for any other name is
// refused with 421 on both, where the OAuth pages used to answer any Host.
func TestRule_HostCheckedOnEveryRouteBehindAProxy(t *testing.T) {
	addr := freeAddr(t)
	startServeAt(t, newCLI(t), addr, "--public-url", "https://journal.example.com")
	status := func(method, path, host string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, route := range []struct{ method, path string }{
		{"POST", "/mcp"},
		{"GET", "/oauth/authorize"},
		{"GET", "/.well-known/oauth-authorization-server"},
		{"GET", "/.well-known/oauth-protected-resource/mcp"},
		{"POST", "/oauth/token"},
		{"GET", "/"},
	} {
		if got := status(route.method, route.path, "journal.example.com"); got == http.StatusMisdirectedRequest || got == http.StatusForbidden {
			t.Errorf("%s %s for the public name = %d", route.method, route.path, got)
		}
		if got := status(route.method, route.path, "evil.example"); got != http.StatusMisdirectedRequest {
			t.Errorf("%s %s for another name = %d, want 421", route.method, route.path, got)
		}
	}
}

// TestRule_PublicNameReachesTheMCPHandler: behind a proxy passing the public
// Host on, a request that gets past authentication reaches the MCP handler
// (development mode stands in for a token here): mcp-go's loopback-only
// Host check used to refuse it with 403 "invalid Host header".
func TestRule_PublicNameReachesTheMCPHandler(t *testing.T) {
	addr := freeAddr(t)
	startServeAt(t, newCLI(t), addr, "--dev-insecure-no-auth", "--public-url", "https://journal.example.com")
	for host, want := range map[string]int{"journal.example.com": http.StatusOK, "evil.example": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/mcp", strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/list")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("tools/list for %s = %d, want %d", host, resp.StatusCode, want)
		}
	}
}
