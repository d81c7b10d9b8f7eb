package httpserver_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/epicme/epicme/httpserver"
)

// Header injection: a request id carrying a line break or log syntax is
// replaced, never echoed into a response header or a log line; a raw
// request whose header value holds a bare CR is refused by the server
// (TestRequestIDIsGeneratedEchoedAndLogged checks the echo of safe ids).
func TestAttack_HeaderInjection(t *testing.T) {
	ts := start(t, httpserver.Config{})
	for _, id := range []string{"a\" level=ERROR msg=forged", "x\u2028y", strings.Repeat("z", 129), "a%0d%0aSet-Cookie:x=y"} {
		resp, _ := get(t, ts.URL+"/healthz", "X-Request-Id", id)
		if got := resp.Header.Get("X-Request-Id"); got == id || strings.ContainsAny(got, "\r\n\" =%") {
			t.Errorf("request id %q echoed as %q", id, got)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("request id %q set a cookie", id)
		}
	}
	if strings.Contains(ts.Logs.String(), "forged") {
		t.Error("a forged log field reached the log")
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rSet-Cookie: x=y\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("a header with a bare CR: %d %v", resp.StatusCode, resp.Header)
	}
}

// Headers past the cap get 431 before any handler runs
// (TestOversizedHeadersAreRefused; TestSlowHeadersAreCutOff for slow ones).
func TestAttack_OversizedHeaders(t *testing.T) {
	ts := start(t, httpserver.Config{})
	resp, _ := get(t, ts.URL+"/mcp", "X-Big", strings.Repeat("a", httpserver.DefaultMaxHeaderBytes+4096))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("headers over the default cap: %d, want 431", resp.StatusCode)
	}
}
