package mcpserver

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// syncBuffer is a log destination safe for concurrent writes.
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

// TestRule_StrayClientResponseIsNotAnError: a JSON-RPC response that
// answers no request of the server (MCP basic/transports: the client POSTs
// responses to server requests) is the client's mistake, not the server's:
// it gets a JSON-RPC error, never 202 (nothing was delivered), is counted,
// and is logged at debug, never as an ERROR line that any user could make
// the server write at will.
func TestRule_StrayClientResponseIsNotAnError(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnvWith(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	h := http.Header{}
	h.Set(hdrUser, e.alice.ID)
	h.Set("Mcp-Session-Id", c.GetSessionId())
	h.Set(mcp.HeaderProtocolVersion, v20251125)
	for i, body := range []string{
		`{"jsonrpc":"2.0","id":99,"result":{"role":"assistant","content":{"type":"text","text":"x"},"model":"m"}}`,
		`{"jsonrpc":"2.0","id":"abc","error":{"code":-1,"message":"no"}}`,
	} {
		status, got := e.rawPost(t, h, body)
		if status == http.StatusAccepted || status < 400 || path(got, "error", "message") == nil {
			t.Errorf("stray response %d: status %d %v, want a JSON-RPC error", i, status, got)
		}
	}
	if n := e.srv.StrayResponses(); n != 2 {
		t.Errorf("counted %d stray responses, want 2", n)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged an error for a client's mistake: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "stray") {
		t.Errorf("no debug line for the stray response:\n%s", logs.String())
	}
}
