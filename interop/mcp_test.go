package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// This file speaks MCP 2025-11-25 over Streamable HTTP by hand, so the tests
// can see HTTP statuses and WWW-Authenticate challenges that client
// libraries hide. The TypeScript clients show the same server works with
// real client code.

const legacyProtocol = "2025-11-25"

// mcpSession is one initialized MCP session with a bearer token.
type mcpSession struct {
	url     string
	token   string
	session string
	nextID  atomic.Int64
}

// rpcReply is what one POST to /mcp produced.
type rpcReply struct {
	Status    int
	Header    http.Header
	Challenge map[string]string // WWW-Authenticate parameters, with "scheme"
	Body      string            // non-JSON-RPC bodies (OAuth error JSON)
	Result    json.RawMessage
	Error     *rpcError
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// openSession initializes a session with token; it fails t unless the
// server accepts.
func openSession(t *testing.T, url, token string) *mcpSession {
	t.Helper()
	s := &mcpSession{url: url, token: token}
	r := s.request(t, "initialize", map[string]any{
		"protocolVersion": legacyProtocol,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "epicme-interop-go", "version": "1.0.0"},
	})
	if r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("initialize: %d %v %s", r.Status, r.Error, r.Body)
	}
	s.session = r.Header.Get("Mcp-Session-Id")
	s.post(t, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return s
}

// callTool calls a tool and returns the raw reply.
func (s *mcpSession) callTool(t *testing.T, name string, args map[string]any) rpcReply {
	t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	return s.request(t, "tools/call", map[string]any{"name": name, "arguments": args})
}

// structured calls a tool that must succeed and decodes its
// structuredContent into out.
func (s *mcpSession) structured(t *testing.T, name string, args map[string]any, out any) {
	t.Helper()
	r := s.callTool(t, name, args)
	if r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("%s: HTTP %d, error %v, challenge %v, body %s", name, r.Status, r.Error, r.Challenge, r.Body)
	}
	var res struct {
		IsError           bool            `json:"isError"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Content           []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatalf("%s: result %s: %v", name, r.Result, err)
	}
	if res.IsError {
		t.Fatalf("%s: tool error %+v", name, res.Content)
	}
	if err := json.Unmarshal(res.StructuredContent, out); err != nil {
		t.Fatalf("%s: structuredContent %s: %v", name, res.StructuredContent, err)
	}
}

func (s *mcpSession) request(t *testing.T, method string, params any) rpcReply {
	t.Helper()
	return s.post(t, map[string]any{"jsonrpc": "2.0", "id": s.nextID.Add(1), "method": method, "params": params})
}

var challengeParam = regexp.MustCompile(`([a-z_]+)="([^"]*)"`)

func (s *mcpSession) post(t *testing.T, msg any) rpcReply {
	t.Helper()
	body, _ := json.Marshal(msg)
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if s.session != "" {
		req.Header.Set("Mcp-Session-Id", s.session)
		req.Header.Set("Mcp-Protocol-Version", legacyProtocol)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := rpcReply{Status: res.StatusCode, Header: res.Header}
	if h := res.Header.Get("WWW-Authenticate"); h != "" {
		r.Challenge = map[string]string{"scheme": strings.Fields(h)[0]}
		for _, m := range challengeParam.FindAllStringSubmatch(h, -1) {
			r.Challenge[m[1]] = m[2]
		}
	}
	raw, _ := io.ReadAll(res.Body)
	payload := raw
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		payload = nil
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok && strings.Contains(data, `"id"`) {
				payload = []byte(strings.TrimSpace(data))
			}
		}
	}
	var msgOut struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if len(payload) > 0 && json.Unmarshal(payload, &msgOut) == nil && (msgOut.Result != nil || msgOut.Error != nil) {
		r.Result, r.Error = msgOut.Result, msgOut.Error
	} else {
		r.Body = string(raw)
	}
	return r
}

// rawCall POSTs one tools/call with no session: enough for authentication
// and scope decisions, which come before the MCP library sees the request.
func rawCall(t *testing.T, url, token, tool string) rpcReply {
	t.Helper()
	s := &mcpSession{url: url, token: token}
	return s.callTool(t, tool, nil)
}

func (r rpcReply) String() string {
	return fmt.Sprintf("HTTP %d, challenge %v, error %v, body %q", r.Status, r.Challenge, r.Error, r.Body)
}
