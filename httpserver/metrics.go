package httpserver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics counts what the server does and serves it at GET /metrics through
// the Prometheus client, in a registry of its own (so that servers in one
// process, as in tests, do not share counts). The series, documented for
// operators in docs/deployment.md:
//
//	epicme_http_requests_total{route,code}        requests by route pattern and status
//	epicme_http_request_duration_seconds{route}   histogram of request durations
//	epicme_auth_decisions_total{result}           /mcp authentication outcomes
//	epicme_tool_calls_total{tool,result}          tool calls of every protocol revision
//	epicme_tool_duration_seconds{tool}            histogram of tool call durations
//	epicme_db_*                                   the database pool, when PoolStats is set
//	(others)                                      the samples of Extra
//	go_*, process_*                               the Go runtime and the process
//
// Labels only take values from fixed sets (the mux's patterns, status codes,
// the server's tool names), so no client can grow the series without bound.
// The auth result is read from the response, as RFC 6750 §3 spells it in
// WWW-Authenticate: "missing_token" (401 without an error), "invalid_token",
// "insufficient_scope" (403), "unavailable" (503) or "ok".
//
// https://prometheus.io/docs/practices/naming/
type Metrics struct {
	// PoolStats, when set, reports the database connection pool.
	PoolStats func() PoolStats
	// Extra, when set, adds samples of other parts (the verifier's cache).
	Extra func() []Sample

	registry  *prometheus.Registry
	handler   http.Handler
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	auth      *prometheus.CounterVec
	toolCalls *prometheus.CounterVec
	toolTimes *prometheus.HistogramVec
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

// buckets are the upper bounds of the duration histograms, in seconds: from
// the fast path's sub-millisecond reads to a slow search.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewMetrics returns empty metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "epicme_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "epicme_http_request_duration_seconds", Help: "HTTP request durations by route pattern.", Buckets: buckets,
		}, []string{"route"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "epicme_auth_decisions_total", Help: "Authentication outcomes of /mcp requests.",
		}, []string{"result"}),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "epicme_tool_calls_total", Help: "Tool calls by tool and result (ok, or error for a tool error or failure).",
		}, []string{"tool", "result"}),
		toolTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "epicme_tool_duration_seconds", Help: "Tool call durations by tool.", Buckets: buckets,
		}, []string{"tool"}),
	}
	m.registry.MustRegister(m.requests, m.durations, m.auth, m.toolCalls, m.toolTimes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		samples{m})
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

// ToolCall counts one call of tool, of every protocol revision and
// transport; failed is true for a tool error (isError) or a failure.
func (m *Metrics) ToolCall(tool string, took time.Duration, failed bool) {
	result := "ok"
	if failed {
		result = "error"
	}
	m.toolCalls.WithLabelValues(tool, result).Inc()
	m.toolTimes.WithLabelValues(tool).Observe(took.Seconds())
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
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		code := sw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		m.durations.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if r.URL.Path == MCPPath {
			m.auth.WithLabelValues(authResult(code, sw.Header().Get("WWW-Authenticate"))).Inc()
		}
	})
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
	w.Header().Set("Cache-Control", "no-store")
	m.handler.ServeHTTP(w, r)
}

// samples collects the pool and Extra when scraped. It describes nothing
// ahead (an unchecked collector): Extra's names are known only then.
type samples struct{ m *Metrics }

func (samples) Describe(chan<- *prometheus.Desc) {}

func (c samples) Collect(ch chan<- prometheus.Metric) {
	var all []Sample
	if c.m.PoolStats != nil {
		p := c.m.PoolStats()
		all = append(all,
			Sample{"epicme_db_connections_max", "Most connections the pool opens.", "gauge", float64(p.MaxOpen)},
			Sample{"epicme_db_connections_open", "Open connections.", "gauge", float64(p.Open)},
			Sample{"epicme_db_connections_in_use", "Connections in use.", "gauge", float64(p.InUse)},
			Sample{"epicme_db_connections_idle", "Idle connections.", "gauge", float64(p.Idle)},
			Sample{"epicme_db_wait_total", "Acquisitions that waited for a connection.", "counter", float64(p.WaitCount)},
			Sample{"epicme_db_wait_seconds_total", "Time spent waiting for connections.", "counter", p.WaitDuration.Seconds()},
		)
	}
	if c.m.Extra != nil {
		all = append(all, c.m.Extra()...)
	}
	for _, s := range all {
		t := prometheus.GaugeValue
		if s.Type == "counter" {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(s.Name, s.Help, nil, nil), t, s.Value)
	}
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
