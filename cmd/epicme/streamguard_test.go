package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
)

// TestRevocationClosesOpenStreams opens the server-to-client event stream of
// a 2025-11-25 session with a token from the embedded authorization server,
// revokes the token (RFC 7009), and expects the server to end the stream.
func TestRevocationClosesOpenStreams(t *testing.T) {
	c := newCLI(t)
	if code, _, errOut := c.run("", "user", "add", "--email", "me@example.com", "--password", "a good password"); code != 0 {
		t.Fatalf("user add: %d %s", code, errOut)
	}
	addr := freeAddr(t)
	s := startServe(t, c, "--addr", addr, "--public-url", "http://"+addr)
	resource := s.url + "/mcp"
	tok := obtainTokens(t, s.url, resource, "me@example.com", "a good password")

	send := func(method, body, session string) *http.Response {
		req, _ := http.NewRequest(method, resource, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.access)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := send(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, "")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	session := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || session == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, session)
	}
	resp = send(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
	resp.Body.Close()

	stream := send(http.MethodGet, "", session)
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK || !strings.HasPrefix(stream.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET stream: %d %s", stream.StatusCode, stream.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		ended <- err
	}()
	select {
	case err := <-ended:
		t.Fatalf("the stream ended before the revocation: %v", err)
	case <-time.After(2 * streamRecheck):
	}

	rev, err := http.PostForm(s.url+authserver.RevocationPath, url.Values{"token": {tok.access}, "client_id": {tok.clientID}})
	if err != nil || rev.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %v %v", rev, err)
	}
	rev.Body.Close()
	start := time.Now()
	select {
	case <-ended:
		t.Logf("stream closed %v after the revocation", time.Since(start))
	case <-time.After(15 * time.Second):
		t.Fatal("the stream of a revoked token is still open after 15s")
	}
}

// TestAttack_StreamFlood: one session cannot hold more than
// maxStreamsPerSession event streams (GET /mcp), nor one user more than
// maxStreamsPerUser across sessions; past the cap the server answers 429
// with a JSON-RPC error that says which cap and what to do, and a stream
// closed frees its place.
func TestAttack_StreamFlood(t *testing.T) {
	c := newCLI(t)
	if code, _, errOut := c.run("", "user", "add", "--email", "me@example.com", "--password", "a good password"); code != 0 {
		t.Fatalf("user add: %d %s", code, errOut)
	}
	addr := freeAddr(t)
	s := startServe(t, c, "--addr", addr, "--public-url", "http://"+addr)
	resource := s.url + "/mcp"
	tok := obtainTokens(t, s.url, resource, "me@example.com", "a good password")

	send := func(method, body, session string) *http.Response {
		req, _ := http.NewRequest(method, resource, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.access)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	newSession := func() string {
		resp := send(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, "")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != http.StatusOK || sid == "" {
			t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
		}
		resp = send(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, sid)
		resp.Body.Close()
		return sid
	}
	open := func(sid string) *http.Response {
		resp := send(http.MethodGet, "", sid)
		if resp.StatusCode == http.StatusOK {
			t.Cleanup(func() { resp.Body.Close() })
		}
		return resp
	}
	refused := func(resp *http.Response, what string) {
		t.Helper()
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("stream past the cap (%s) accepted", what)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), `"error"`) || !strings.Contains(string(b), what) {
			t.Fatalf("stream past the cap: %d %s, want 429 naming %q", resp.StatusCode, b, what)
		}
	}

	first := newSession()
	var held []*http.Response
	for i := range maxStreamsPerSession {
		resp := open(first)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the session: %d", i+1, resp.StatusCode)
		}
		held = append(held, resp)
	}
	refused(open(first), "session")
	held[0].Body.Close()
	var again *http.Response
	for again == nil || again.StatusCode != http.StatusOK {
		if again != nil {
			again.Body.Close()
		}
		again = open(first) // the server sees the close shortly after
	}

	for n := maxStreamsPerSession; n < maxStreamsPerUser; {
		sid := newSession()
		for i := 0; i < maxStreamsPerSession && n < maxStreamsPerUser; i++ {
			if resp := open(sid); resp.StatusCode != http.StatusOK {
				t.Fatalf("stream %d of the user: %d", n+1, resp.StatusCode)
			}
			n++
		}
	}
	refused(open(newSession()), "user")
}
