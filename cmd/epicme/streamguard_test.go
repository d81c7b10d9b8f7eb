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
