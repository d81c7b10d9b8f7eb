package httpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/httpserver"
)

// syncBuffer is a log sink that handlers on many goroutines can write to.
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

// lines returns the JSON log records.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// testServer runs a real server on a loopback port until the test ends.
type testServer struct {
	URL  string
	Logs *syncBuffer
	srv  *httpserver.Server
	stop context.CancelFunc
	done chan error
}

func passThrough(h http.Handler) http.Handler { return h }

func start(t *testing.T, cfg httpserver.Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.MCP == nil {
		cfg.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mcp") })
	}
	if cfg.Auth == nil {
		cfg.Auth = passThrough
	}
	srv, err := httpserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{URL: "http://" + ln.Addr().String(), Logs: logs, srv: srv, stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHealthzAnswersOK(t *testing.T) {
	ts := start(t, httpserver.Config{})
	for _, p := range []string{"/healthz", "/healthcheck"} {
		resp, body := get(t, ts.URL+p)
		if resp.StatusCode != 200 || strings.TrimSpace(body) != "ok" {
			t.Errorf("GET %s = %d %q; want 200 ok", p, resp.StatusCode, body)
		}
	}
}

func TestReadyzReportsDatabaseFailureAs503(t *testing.T) {
	var fail bool
	var mu sync.Mutex
	ts := start(t, httpserver.Config{Ready: func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("sql: database is closed at /secret/path")
		}
		return nil
	}})
	resp, body := get(t, ts.URL+"/readyz")
	if resp.StatusCode != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("ready: got %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	resp, body = get(t, ts.URL+"/readyz")
	var rb struct{ Status, Reason string }
	if err := json.Unmarshal([]byte(body), &rb); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if resp.StatusCode != 503 || rb.Status != "unavailable" || rb.Reason == "" {
		t.Fatalf("failing database: got %d %s; want 503 with a reason", resp.StatusCode, body)
	}
	if strings.Contains(body, "/secret/path") {
		t.Errorf("readiness body leaks the error detail: %s", body)
	}
	if !strings.Contains(ts.Logs.String(), "database is closed") {
		t.Errorf("the failure is not logged:\n%s", ts.Logs.String())
	}
}

func TestRequestIDIsGeneratedEchoedAndLogged(t *testing.T) {
	ts := start(t, httpserver.Config{})
	resp, _ := get(t, ts.URL+"/healthz")
	gen := resp.Header.Get("X-Request-Id")
	if len(gen) < 16 {
		t.Fatalf("generated request id %q is too short", gen)
	}
	resp2, _ := get(t, ts.URL+"/healthz")
	if resp2.Header.Get("X-Request-Id") == gen {
		t.Fatal("two requests got the same generated id")
	}
	resp, _ = get(t, ts.URL+"/healthz", "X-Request-Id", "client-chosen-42")
	if got := resp.Header.Get("X-Request-Id"); got != "client-chosen-42" {
		t.Errorf("a valid client id is not echoed: got %q", got)
	}
	resp, _ = get(t, ts.URL+"/healthz", "X-Request-Id", `bad id" level=error`)
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, `" =`) {
		t.Errorf("an unsafe client id is echoed: %q", got)
	}
	var ids []string
	for _, l := range ts.Logs.lines(t) {
		if l["msg"] == "request" {
			ids = append(ids, l["request_id"].(string))
		}
	}
	if len(ids) != 4 || ids[0] != gen || ids[2] != "client-chosen-42" {
		t.Errorf("access log request ids = %v; want [%s ... client-chosen-42 ...]", ids, gen)
	}
}

func TestAccessLogHasOneLinePerRequestWithoutSecrets(t *testing.T) {
	ts := start(t, httpserver.Config{})
	get(t, ts.URL+"/mcp?access_token=tok-in-query", "Authorization", "Bearer tok-in-header")
	get(t, ts.URL+"/nowhere")
	logs := ts.Logs.String()
	if strings.Contains(logs, "tok-in-") || strings.Contains(logs, "Bearer") {
		t.Fatalf("the access log contains a credential:\n%s", logs)
	}
	var access []map[string]any
	for _, l := range ts.Logs.lines(t) {
		if l["msg"] == "request" {
			access = append(access, l)
		}
	}
	if len(access) != 2 {
		t.Fatalf("got %d access lines; want 2:\n%s", len(access), logs)
	}
	first := access[0]
	if first["method"] != "GET" || first["path"] != "/mcp" || first["status"] != float64(200) ||
		first["level"] != "INFO" || first["duration"] == nil || first["request_id"] == nil {
		t.Errorf("access line = %v", first)
	}
	if access[1]["status"] != float64(404) {
		t.Errorf("404 logged as %v", access[1]["status"])
	}
}

func TestLogsInsideARequestCarryItsID(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(httpserver.LogHandler(slog.NewJSONHandler(logs, nil)))
	ts := start(t, httpserver.Config{
		Logger: logger,
		MCP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			logger.InfoContext(r.Context(), "inside the tool")
		}),
	})
	get(t, ts.URL+"/mcp", "X-Request-Id", "abc-123")
	found := false
	for _, l := range logs.lines(t) {
		if l["msg"] == "inside the tool" {
			found = true
			if l["request_id"] != "abc-123" {
				t.Errorf("handler log line has request_id %v", l["request_id"])
			}
		}
	}
	if !found {
		t.Fatal("handler log line missing")
	}
}

func TestPanicBecomesJSON500WithoutStack(t *testing.T) {
	ts := start(t, httpserver.Config{MCP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom: secret detail")
	})})
	resp, body := get(t, ts.URL+"/mcp")
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(body, "boom") || strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
		t.Errorf("the 500 body reveals the panic: %s", body)
	}
	if !strings.Contains(body, `"internal error"`) {
		t.Errorf("body = %s", body)
	}
	logs := ts.Logs.String()
	if !strings.Contains(logs, "boom: secret detail") || !strings.Contains(logs, "goroutine") {
		t.Errorf("the panic and its stack are not logged:\n%s", logs)
	}
	// The server keeps serving.
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatal("server broken after a panic")
	}
}

func TestRequestBodyIsCapped(t *testing.T) {
	ts := start(t, httpserver.Config{
		MaxBodyBytes: 1000,
		MCP: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "too big", http.StatusRequestEntityTooLarge)
				return
			}
			io.WriteString(w, "read all")
		}),
	})
	// Declared too large: refused before the handler runs.
	resp, err := http.Post(ts.URL+"/mcp", "application/json", bytes.NewReader(make([]byte, 1001)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "at most 1000 bytes") {
		t.Errorf("declared oversize: %d %s", resp.StatusCode, b)
	}
	// Streamed without a length: the handler's read fails at the cap.
	resp, err = http.Post(ts.URL+"/mcp", "application/json", io.MultiReader(strings.NewReader(strings.Repeat("x", 2000))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversize: %d", resp.StatusCode)
	}
	// At the cap: fine.
	resp, _ = http.Post(ts.URL+"/mcp", "application/json", bytes.NewReader(make([]byte, 1000)))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("body at the cap: %d", resp.StatusCode)
	}
}

func TestAuthMiddlewareGuardsOnlyMCP(t *testing.T) {
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="EpicMe"`)
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
	ts := start(t, httpserver.Config{Auth: deny})
	if resp, _ := get(t, ts.URL+"/mcp"); resp.StatusCode != 401 {
		t.Errorf("/mcp = %d; want 401 from the auth middleware", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz = %d; want 200 without auth", resp.StatusCode)
	}
}

func TestNewRefusesMissingAuth(t *testing.T) {
	_, err := httpserver.New(httpserver.Config{MCP: http.NotFoundHandler()})
	if err == nil || !strings.Contains(err.Error(), "Auth") {
		t.Fatalf("New without Auth: err = %v", err)
	}
	_, err = httpserver.New(httpserver.Config{Auth: passThrough})
	if err == nil || !strings.Contains(err.Error(), "MCP") {
		t.Fatalf("New without MCP: err = %v", err)
	}
}

// queryMux picks a test handler by the "h" query parameter of /mcp.
type queryMux map[string]http.Handler

func (m queryMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m[r.URL.Query().Get("h")].ServeHTTP(w, r)
}

func TestWriteTimeoutCutsSlowResponsesButNotStreams(t *testing.T) {
	const wt = 300 * time.Millisecond
	mux := queryMux{}
	mux["slow"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * wt)
		io.WriteString(w, "too late")
	})
	mux["stream"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := 0; i < 4; i++ {
			io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(wt)
		}
		io.WriteString(w, "data: end\n\n")
	})
	ts := start(t, httpserver.Config{WriteTimeout: wt, ReadTimeout: wt, MCP: mux})

	resp, err := http.Get(ts.URL + "/mcp?h=slow")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Errorf("a response slower than WriteTimeout was delivered")
	}

	resp, err = http.Get(ts.URL + "/mcp?h=stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream broken after %q: %v", b, err)
	}
	if strings.Count(string(b), "tick") != 4 || !strings.HasSuffix(string(b), "data: end\n\n") {
		t.Errorf("stream body = %q", b)
	}
}

func TestShutdownFinishesRequestsAndEndsStreams(t *testing.T) {
	started := make(chan struct{}, 2)
	mux := queryMux{}
	mux["work"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	mux["stream"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done()
	})
	ts := start(t, httpserver.Config{MCP: mux, ShutdownTimeout: 5 * time.Second})

	work := make(chan string, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/mcp?h=work")
		if err != nil {
			work <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		work <- string(b)
	}()
	sresp, err := http.Get(ts.URL + "/mcp?h=stream")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	<-started
	<-started

	begin := time.Now()
	ts.stop()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve returned %v after a graceful shutdown", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("shutdown waited on the event stream")
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	ts.done <- nil // for the cleanup
	if got := <-work; got != "finished" {
		t.Errorf("request in flight got %q; want it finished", got)
	}
	// The stream ended cleanly from the client's point of view.
	if _, err := bufio.NewReader(sresp.Body).ReadString('x'); err == nil {
		t.Error("stream still open after shutdown")
	}
	if _, err := http.Get(ts.URL + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	ts := start(t, httpserver.Config{MaxHeaderBytes: 4096})
	resp, _ := get(t, ts.URL+"/healthz", "X-Big", strings.Repeat("a", 16<<10))
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB of headers with a 4 KiB cap: %d; want 431", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("normal request after: %d", resp.StatusCode)
	}
}

func TestServerTimeoutsAreConfigured(t *testing.T) {
	srv, err := httpserver.New(httpserver.Config{MCP: http.NotFoundHandler(), Auth: passThrough})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.HTTP
	if h.ReadHeaderTimeout != httpserver.DefaultReadHeaderTimeout || h.ReadTimeout != httpserver.DefaultReadTimeout ||
		h.IdleTimeout != httpserver.DefaultIdleTimeout || h.MaxHeaderBytes != httpserver.DefaultMaxHeaderBytes {
		t.Errorf("defaults not applied: %+v", h)
	}
	// Write deadlines are per response, so that event streams can lift
	// theirs; a server-wide one would cut every stream.
	if h.WriteTimeout != 0 {
		t.Errorf("server-wide WriteTimeout = %v; want 0", h.WriteTimeout)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	ts := start(t, httpserver.Config{ReadHeaderTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	begin := time.Now()
	b, _ := io.ReadAll(conn)
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("connection with unfinished headers still open after %v", d)
	}
	if strings.Contains(string(b), "200 OK") {
		t.Errorf("unfinished request was answered: %q", b)
	}
}

// TestRule_HostCheckedOnEveryRoute: a request naming a host the server
// does not answer for is refused with 421 on the MCP endpoint and on every
// route other packages mount (the OAuth pages and metadata), not only on
// /mcp; the public name, loopback names on a loopback listener and the
// health checks pass (RFC 9110 §7.2, §15.5.20; MCP security best
// practices, DNS rebinding).
func TestRule_HostCheckedOnEveryRoute(t *testing.T) {
	ts := start(t, httpserver.Config{Hosts: []string{"journal.example.com"}})
	ts.srv.Handle("/oauth/authorize", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") }))
	ts.srv.Handle("/.well-known/oauth-authorization-server", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	port := ts.URL[strings.LastIndexByte(ts.URL, ':'):]
	status := func(path, host string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/mcp", "/oauth/authorize", "/.well-known/oauth-authorization-server"} {
		for _, host := range []string{"journal.example.com", "JOURNAL.example.com:443", "localhost" + port, "127.0.0.1" + port, "[::1]" + port} {
			if got := status(path, host); got != http.StatusOK {
				t.Errorf("%s with Host %s = %d, want 200", path, host, got)
			}
		}
		for _, host := range []string{"evil.example", "journal.example.com.evil.example", "10.0.0.1" + port} {
			if got := status(path, host); got != http.StatusMisdirectedRequest {
				t.Errorf("%s with Host %s = %d, want 421", path, host, got)
			}
		}
	}
	if got := status("/healthz", "10.0.0.1"); got != http.StatusOK {
		t.Errorf("/healthz by address = %d, want 200", got)
	}
}

// TestRule_LoopbackListenerAnswersLoopbackNamesOnly: with no public name
// configured, a server on loopback answers only loopback names, as mcp-go's
// transport did for /mcp alone.
func TestRule_LoopbackListenerAnswersLoopbackNamesOnly(t *testing.T) {
	ts := start(t, httpserver.Config{})
	for host, want := range map[string]int{"localhost": 200, "127.0.0.1": 200, "evil.example": 421} {
		req, _ := http.NewRequest("GET", ts.URL+"/mcp", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s = %d %s, want %d", host, resp.StatusCode, b, want)
		}
		if want == 421 && !strings.Contains(string(b), "public-url") {
			t.Errorf("the refusal does not say what to do: %s", b)
		}
	}
}
