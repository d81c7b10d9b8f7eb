package httpserver_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/httpserver"
)

// TestMetricsCountRoutesAuthAndTools serves a few requests through a server
// with metrics and reads /metrics back: requests by route pattern and
// status, the auth outcome of /mcp from its WWW-Authenticate challenge, tool
// calls as the MCP adapter reports them, pool gauges, and an event stream
// still flushed through the counting writer.
func TestMetricsCountRoutesAuthAndTools(t *testing.T) {
	mcp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="x"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "Bearer bad":
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "Bearer narrow":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="entries:write"`)
			w.WriteHeader(http.StatusForbidden)
		case "Bearer stream":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "data: one\n\n")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush through the metrics writer: %v", err)
			}
		default:
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		}
	})
	srv, err := httpserver.New(httpserver.Config{MCP: mcp, Auth: passThrough})
	if err != nil {
		t.Fatal(err)
	}
	m := httpserver.NewMetrics()
	m.PoolStats = func() httpserver.PoolStats {
		return httpserver.PoolStats{MaxOpen: 8, Open: 3, InUse: 1, Idle: 2, WaitCount: 4, WaitDuration: 1500 * time.Millisecond}
	}
	m.Extra = func() []httpserver.Sample {
		return []httpserver.Sample{{Name: "epicme_verifier_cache_hits_total", Help: "Hits.", Type: "counter", Value: 7}}
	}
	srv.EnableMetrics(m)
	ts := httptest.NewServer(srv.HTTP.Handler)
	defer ts.Close()

	send := func(auth, tool string) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/mcp", strings.NewReader(`{}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if tool != "" {
			req.Header.Set("Mcp-Method", "tools/call")
			req.Header.Set("Mcp-Name", tool)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send("", "")
	send("Bearer bad", "")
	send("Bearer narrow", "")
	send("Bearer stream", "")
	send("Bearer good", "get_entry")
	send("Bearer good", "get_entry")
	send("Bearer good", "made_up_tool")
	m.ToolCall("get_entry", time.Millisecond, false)
	m.ToolCall("get_entry", 2*time.Millisecond, false)
	m.ToolCall("get_entry", time.Millisecond, true)
	get(t, ts.URL+"/healthz")
	get(t, ts.URL+"/no/such/page")

	resp, body := get(t, ts.URL+"/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		`epicme_http_requests_total{code="200",route="/mcp"} 4`,
		`epicme_http_requests_total{code="401",route="/mcp"} 2`,
		`epicme_http_requests_total{code="403",route="/mcp"} 1`,
		`epicme_http_requests_total{code="200",route="GET /healthz"} 1`,
		`epicme_http_requests_total{code="404",route="unmatched"} 1`,
		`epicme_auth_decisions_total{result="missing_token"} 1`,
		`epicme_auth_decisions_total{result="invalid_token"} 1`,
		`epicme_auth_decisions_total{result="insufficient_scope"} 1`,
		`epicme_auth_decisions_total{result="ok"} 4`,
		"# TYPE epicme_tool_calls_total counter",
		`epicme_tool_calls_total{result="ok",tool="get_entry"} 2`,
		`epicme_tool_calls_total{result="error",tool="get_entry"} 1`,
		`epicme_tool_duration_seconds_count{tool="get_entry"} 3`,
		`epicme_tool_duration_seconds_bucket{tool="get_entry",le="+Inf"} 3`,
		`epicme_tool_duration_seconds_bucket{tool="get_entry",le="0.001"} 2`,
		`epicme_http_request_duration_seconds_count{route="/mcp"} 7`,
		"# TYPE epicme_http_request_duration_seconds histogram",
		"# TYPE epicme_db_connections_open gauge",
		"epicme_db_connections_open 3",
		"# TYPE epicme_db_wait_seconds_total counter",
		"epicme_db_wait_seconds_total 1.5",
		"# TYPE go_goroutines gauge",
		"# TYPE epicme_verifier_cache_hits_total counter",
		"epicme_verifier_cache_hits_total 7",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if resp, _ := get(t, ts.URL+"/metrics", "X-Forwarded-For", "203.0.113.9"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics through a proxy: %d, want 404", resp.StatusCode)
	}
	if strings.Contains(body, "made_up_tool") {
		t.Error("a tool name the server does not have became a label")
	}
}

// TestMetricsRegistryPerServer starts two servers in one process: each
// counts only its own requests.
func TestMetricsRegistryPerServer(t *testing.T) {
	var urls []string
	for range 2 {
		srv, err := httpserver.New(httpserver.Config{MCP: http.NotFoundHandler(), Auth: passThrough})
		if err != nil {
			t.Fatal(err)
		}
		srv.EnableMetrics(httpserver.NewMetrics())
		ts := httptest.NewServer(srv.HTTP.Handler)
		defer ts.Close()
		urls = append(urls, ts.URL)
	}
	get(t, urls[0]+"/healthz")
	get(t, urls[0]+"/healthz")
	_, body := get(t, urls[1]+"/metrics")
	if strings.Contains(body, `route="GET /healthz"`) {
		t.Fatalf("the second server counts the first one's requests:\n%s", body)
	}
	_, body = get(t, urls[0]+"/metrics")
	if !strings.Contains(body, `epicme_http_requests_total{code="200",route="GET /healthz"} 2`+"\n") {
		t.Fatalf("the first server lost its requests:\n%s", body)
	}
}
