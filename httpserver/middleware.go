package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"
)

// RequestIDHeader carries the request id. A client may send one (it is kept
// if it is short and plain); otherwise the server makes one. Either way the
// response echoes it and every log line of the request carries it, so a user
// can quote it in a bug report.
const RequestIDHeader = "X-Request-Id"

const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts ids that are safe to echo and to log: printable,
// short, no spaces or quotes that could forge log fields.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// middleware wraps every route. Outermost first: request id, response
// recording (status, size, write deadline, stream detection), access log,
// panic recovery, body size cap.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()

		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx, cancel := context.WithCancel(context.WithValue(r.Context(), requestIDKey{}, id))
		defer cancel()
		r = r.WithContext(ctx)

		// The write deadline is per response rather than on the server, so
		// that an event stream can lift it (see startStream).
		_ = http.NewResponseController(w).SetWriteDeadline(start.Add(s.cfg.WriteTimeout))

		rec := &responseRecorder{ResponseWriter: w, server: s, cancel: cancel}
		defer func() {
			if rec.stream {
				s.streams.remove(rec)
			}
			s.logAccess(ctx, r, rec, time.Since(start))
		}()
		defer s.recoverPanic(rec, r)

		if !s.hostAllowed(r) {
			writeJSONError(rec, http.StatusMisdirectedRequest, "misdirected_request",
				fmt.Sprintf("this server does not answer for the host %q; use the URL it prints (its --public-url)", r.Host))
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeJSONError(rec, http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("request body must be at most %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(rec, r)
	})
}

// logAccess writes one line per request. It logs the path without the query
// string and no headers: either may carry credentials.
func (s *Server) logAccess(ctx context.Context, r *http.Request, rec *responseRecorder, d time.Duration) {
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	status := rec.status
	if status == 0 {
		// The handler wrote nothing; net/http answers 200 with an empty body.
		status = http.StatusOK
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d),
	)
}

// recoverPanic turns a panic in a handler into a logged error and, when the
// response has not started, a JSON 500 that tells the client nothing about
// the cause. A response that has started cannot be repaired: the connection
// is dropped so the client sees a truncated response rather than a wrong one.
func (s *Server) recoverPanic(rec *responseRecorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.ErrorContext(r.Context(), "panic serving request",
		"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if rec.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	writeJSONError(rec, http.StatusInternalServerError, "internal_error", "internal error")
}

// errorBody is the JSON body of errors this package writes itself.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: msg})
}

// responseRecorder remembers the status and size of a response, and notices
// when it becomes an event stream.
type responseRecorder struct {
	http.ResponseWriter
	server      *Server
	cancel      context.CancelFunc
	status      int
	bytes       int64
	wroteHeader bool
	stream      bool
}

// WriteHeader implements http.ResponseWriter.
func (r *responseRecorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.wroteHeader = true
		r.status = code
		if strings.HasPrefix(r.Header().Get("Content-Type"), "text/event-stream") {
			r.startStream()
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (r *responseRecorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher; event-stream writers need it.
func (r *responseRecorder) Flush() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// startStream lifts the write deadline of an event stream, which lasts as
// long as its client wants, and registers it so that shutdown can end it.
func (r *responseRecorder) startStream() {
	r.stream = true
	_ = http.NewResponseController(r.ResponseWriter).SetWriteDeadline(time.Time{})
	r.server.streams.add(r, r.cancel)
}

// hostAllowed applies Config.Hosts to a request; the health checks answer
// whatever the host.
func (s *Server) hostAllowed(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/healthcheck", "/readyz":
		return true
	}
	host := hostname(r.Host)
	for _, h := range s.cfg.Hosts {
		if strings.EqualFold(host, hostname(h)) {
			return true
		}
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil || !IsLoopbackHost(hostname(local.String())) {
		return len(s.cfg.Hosts) == 0
	}
	return IsLoopbackHost(host)
}

// hostname is the host of a Host header value or address, without its
// port or IPv6 brackets.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// IsLoopbackHost reports whether host (a name or an address, without port
// or brackets) is "localhost" or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
