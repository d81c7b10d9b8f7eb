package httpserver

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics counts what the server does and serves it at GET /metrics in the
// Prometheus text exposition format (version 0.0.4), written here by hand:
// a few counters and histograms need no client library.
//
//	epicme_http_requests_total{route,code}        requests by route pattern and status
//	epicme_http_request_duration_seconds{route}   histogram of request durations
//	epicme_auth_decisions_total{result}           /mcp authentication outcomes
//	epicme_tool_duration_seconds{tool}            histogram of tools/call durations
//	epicme_db_*                                   the database pool, when PoolStats is set
//	(others)                                      the samples of Extra
//
// Labels only take values from fixed sets (the mux's patterns, status codes,
// the server's tool names), so no client can grow the series without bound.
// The auth result is read from the response, as RFC 6750 §3 spells it in
// WWW-Authenticate: "missing_token" (401 without an error), "invalid_token",
// "insufficient_scope" (403), "unavailable" (503) or "ok".
//
// Tool durations need the Mcp-Method and Mcp-Name headers, which clients of
// protocol 2026-07-28 send; older clients' calls count under their route
// only.
//
// https://prometheus.io/docs/instrumenting/exposition_formats/
type Metrics struct {
	// PoolStats, when set, reports the database connection pool.
	PoolStats func() PoolStats
	// Extra, when set, adds samples of other parts (the verifier's cache).
	Extra func() []Sample

	tools map[string]bool

	mu        sync.Mutex
	requests  map[[2]string]uint64 // route, code
	durations map[string]*histogram
	auth      map[string]uint64
	toolTimes map[string]*histogram
}

// PoolStats describes a database connection pool.
type PoolStats struct {
	MaxOpen, Open, InUse, Idle int
	// WaitCount and WaitDuration: acquisitions that had to wait for a
	// connection, and their total wait.
	WaitCount    int64
	WaitDuration time.Duration
}

// Sample is one value of a metric without labels.
type Sample struct {
	Name, Help string
	// Type is "counter" or "gauge".
	Type  string
	Value float64
}

// NewMetrics returns empty metrics; tools are the names of the tools whose
// calls are timed one by one.
func NewMetrics(tools []string) *Metrics {
	m := &Metrics{
		tools:     map[string]bool{},
		requests:  map[[2]string]uint64{},
		durations: map[string]*histogram{},
		auth:      map[string]uint64{},
		toolTimes: map[string]*histogram{},
	}
	for _, t := range tools {
		m.tools[t] = true
	}
	return m
}

// buckets are the upper bounds of the duration histograms, in seconds.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(buckets)+1)
	}
	i, _ := slices.BinarySearch(buckets, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// EnableMetrics counts every request in m and serves m at GET /metrics. Call
// it once, before Serve. /metrics refuses requests that came through a
// proxy; a reverse proxy should not forward it either (docs/deployment.md).
func (s *Server) EnableMetrics(m *Metrics) {
	s.Mux.Handle("GET /metrics", m)
	next := s.HTTP.Handler
	s.HTTP.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, route := s.Mux.Handler(r)
		if route == "" {
			route = "unmatched"
		}
		tool := ""
		if r.Header.Get("Mcp-Method") == "tools/call" && m.tools[r.Header.Get("Mcp-Name")] {
			tool = r.Header.Get("Mcp-Name")
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		m.record(route, r.URL.Path == MCPPath, tool, sw, time.Since(start))
	})
}

func (m *Metrics) record(route string, mcp bool, tool string, sw *statusWriter, d time.Duration) {
	code := sw.status
	if code == 0 {
		code = http.StatusOK
	}
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{route, strconv.Itoa(code)}]++
	h := m.durations[route]
	if h == nil {
		h = &histogram{}
		m.durations[route] = h
	}
	h.observe(secs)
	if mcp {
		m.auth[authResult(code, sw.Header().Get("WWW-Authenticate"))]++
	}
	if tool != "" && code == http.StatusOK {
		t := m.toolTimes[tool]
		if t == nil {
			t = &histogram{}
			m.toolTimes[tool] = t
		}
		t.observe(secs)
	}
}

// authResult names the authentication outcome of a response of /mcp.
func authResult(code int, challenge string) string {
	switch {
	case code == http.StatusUnauthorized && strings.Contains(challenge, `error="invalid_token"`):
		return "invalid_token"
	case code == http.StatusUnauthorized:
		return "missing_token"
	case code == http.StatusForbidden && strings.Contains(challenge, `error="insufficient_scope"`):
		return "insufficient_scope"
	case code == http.StatusServiceUnavailable && challenge == "":
		return "unavailable"
	}
	return "ok"
}

// ServeHTTP writes the metrics. A request that came through a reverse proxy
// (it carries Forwarded or X-Forwarded-For) is answered 404: metrics are for
// a scraper that reaches the instance directly, not for the public.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	m.write(bw)
	bw.Flush()
}

func (m *Metrics) write(w io.Writer) {
	m.mu.Lock()
	reqKeys := sortedKeys(m.requests, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	fmt.Fprintln(w, "# HELP epicme_http_requests_total HTTP requests by route pattern and status code.")
	fmt.Fprintln(w, "# TYPE epicme_http_requests_total counter")
	for _, k := range reqKeys {
		fmt.Fprintf(w, "epicme_http_requests_total{route=%s,code=%q} %d\n", quote(k[0]), k[1], m.requests[k])
	}
	writeHistograms(w, "epicme_http_request_duration_seconds", "HTTP request durations by route pattern.", "route", m.durations)
	fmt.Fprintln(w, "# HELP epicme_auth_decisions_total Authentication outcomes of /mcp requests.")
	fmt.Fprintln(w, "# TYPE epicme_auth_decisions_total counter")
	for _, k := range sortedKeys(m.auth, strings.Compare) {
		fmt.Fprintf(w, "epicme_auth_decisions_total{result=%q} %d\n", k, m.auth[k])
	}
	writeHistograms(w, "epicme_tool_duration_seconds", "Durations of successful tools/call requests by tool (protocol 2026-07-28 clients).", "tool", m.toolTimes)
	m.mu.Unlock()

	if m.PoolStats != nil {
		p := m.PoolStats()
		for _, g := range []struct {
			name, help, typ string
			v               string
		}{
			{"epicme_db_connections_max", "Most connections the pool opens.", "gauge", strconv.Itoa(p.MaxOpen)},
			{"epicme_db_connections_open", "Open connections.", "gauge", strconv.Itoa(p.Open)},
			{"epicme_db_connections_in_use", "Connections in use.", "gauge", strconv.Itoa(p.InUse)},
			{"epicme_db_connections_idle", "Idle connections.", "gauge", strconv.Itoa(p.Idle)},
			{"epicme_db_wait_total", "Acquisitions that waited for a connection.", "counter", strconv.FormatInt(p.WaitCount, 10)},
			{"epicme_db_wait_seconds_total", "Time spent waiting for connections.", "counter", strconv.FormatFloat(p.WaitDuration.Seconds(), 'g', -1, 64)},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", g.name, g.help, g.name, g.typ, g.name, g.v)
		}
	}
	if m.Extra != nil {
		for _, s := range m.Extra() {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", s.Name, s.Help, s.Name, s.Type, s.Name, strconv.FormatFloat(s.Value, 'g', -1, 64))
		}
	}
}

func writeHistograms(w io.Writer, name, help, label string, hs map[string]*histogram) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for _, k := range sortedKeys(hs, strings.Compare) {
		h := hs[k]
		var cum uint64
		for i, b := range buckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "%s_bucket{%s=%s,le=%q} %d\n", name, label, quote(k), strconv.FormatFloat(b, 'g', -1, 64), cum)
		}
		fmt.Fprintf(w, "%s_bucket{%s=%s,le=\"+Inf\"} %d\n", name, label, quote(k), h.n)
		fmt.Fprintf(w, "%s_sum{%s=%s} %s\n", name, label, quote(k), strconv.FormatFloat(h.sum, 'g', -1, 64))
		fmt.Fprintf(w, "%s_count{%s=%s} %d\n", name, label, quote(k), h.n)
	}
}

// quote writes a label value: backslash, double quote and newline escaped,
// as the exposition format requires.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	return keys
}

// statusWriter remembers the status of a response. Unwrap lets
// http.ResponseController reach the writer beneath (deadlines, flushes of
// event streams).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
