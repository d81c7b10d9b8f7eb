// Package httpserver serves EpicMe over HTTP: it mounts the MCP endpoint behind
// an authentication middleware, adds health and readiness probes, and applies
// what every route needs (request ids, access logs, panic recovery, request
// size limits and timeouts that leave long-lived event streams alone).
//
// It knows nothing of the journal, OAuth or MCP beyond the handlers it is
// given; cmd/epicme builds those and hands them over in a Config.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBodyBytes      = 1 << 20 // 1 MiB: ten times the largest entry content
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
)

// MCPPath is where the MCP endpoint is served.
const MCPPath = "/mcp"

// Config says what to serve and how. Zero durations and sizes take the
// defaults above.
type Config struct {
	// Addr is the TCP address ListenAndServe binds, e.g. "127.0.0.1:8080".
	Addr string

	// MCP handles the MCP endpoint (Streamable HTTP, every protocol era).
	// Required.
	MCP http.Handler
	// Auth wraps MCP: it authenticates each request before the MCP handler
	// sees it. Required, so that the endpoint is never served without an
	// explicit decision about authentication.
	Auth func(http.Handler) http.Handler

	// Guard, when set, wraps every route inside the common middleware
	// (after request ids, the access log and the body cap, before
	// routing): for rate limits of routes other packages mount, such as
	// the token endpoint.
	Guard func(http.Handler) http.Handler

	// Hosts are the names this server answers for in the Host header (RFC
	// 9110 §7.2), such as the host of its public URL; ports are not
	// compared. A request naming another host is refused with 421
	// Misdirected Request (RFC 9110 §15.5.20) before any route sees it, on
	// every route but the health checks (probes come by address): a page,
	// a token or a tool call answered for a name the server does not own is
	// what a DNS rebinding attack needs (MCP basic/security_best_practices,
	// "Local MCP Server Compromise"). On a loopback listener the loopback
	// names (localhost, 127.0.0.1, ::1) are accepted too; with no Hosts,
	// only those, and a server on another address answers any name.
	Hosts []string

	// Home, when set, is served at / and shown to browsers that open the
	// MCP endpoint without a token (see HomePage).
	Home *HomePage

	// Ready reports whether the server can serve requests (the database
	// answers). Nil means always ready.
	Ready func(ctx context.Context) error

	// Logger receives the access log and errors. Nil discards them.
	Logger *slog.Logger

	// MaxBodyBytes caps the size of a request body.
	MaxBodyBytes int64
	// MaxHeaderBytes caps the size of the request line and headers.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds reading the request headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the start of the
	// request. Responses that turn into event streams (Content-Type
	// text/event-stream) are exempt: they last as long as the client keeps
	// them open.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its next
	// request.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once it has been asked to stop.
	ShutdownTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&c.ReadTimeout, DefaultReadTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Server is EpicMe's HTTP server: an *http.Server whose handler is a mux
// wrapped in the common middleware.
type Server struct {
	// HTTP is the underlying server. Its WriteTimeout is zero on purpose:
	// write deadlines are set per response (see Config.WriteTimeout).
	HTTP *http.Server
	// Mux routes requests. Other packages add routes with Handle.
	Mux *http.ServeMux

	cfg     Config
	log     *slog.Logger
	streams streamSet
}

// New builds the server and its routes:
//
//	/mcp            the MCP endpoint, behind cfg.Auth
//	GET /healthz    200 "ok" while the process runs (liveness)
//	GET /healthcheck the same, under the name the reference EpicMe uses
//	GET /readyz     200 when cfg.Ready succeeds, else 503 with a JSON reason
//	GET /           cfg.Home, when set
//	GET /favicon.ico 204, so that browsers' automatic request is quiet
func New(cfg Config) (*Server, error) {
	if cfg.MCP == nil {
		return nil, errors.New("httpserver: Config.MCP is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("httpserver: Config.Auth is required (the MCP endpoint is never served without an authentication decision)")
	}
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: slog.New(LogHandler(cfg.Logger.Handler())), Mux: http.NewServeMux()}

	mcp := cfg.Auth(cfg.MCP)
	if cfg.Home != nil {
		mcp = cfg.Home.browserHint(mcp)
		s.Mux.Handle("GET /{$}", cfg.Home)
	}
	s.Mux.Handle(MCPPath, mcp)
	s.Mux.HandleFunc("GET /favicon.ico", serveFavicon)
	s.Mux.HandleFunc("GET /healthz", s.handleHealth)
	s.Mux.HandleFunc("GET /healthcheck", s.handleHealth)
	s.Mux.HandleFunc("GET /readyz", s.handleReady)

	s.HTTP = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.middleware(guard(cfg.Guard, s.Mux)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func guard(g func(http.Handler) http.Handler, h http.Handler) http.Handler {
	if g == nil {
		return h
	}
	return g(h)
}

// Handle adds a route to the mux (for example the OAuth metadata documents of
// the auth package). Requests to it pass through the same middleware as every
// other route. Call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.Mux.Handle(pattern, h) }

// ListenAndServe binds cfg.Addr and serves until ctx is done; see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, ends open event streams (their clients
// reconnect elsewhere or later), and waits up to ShutdownTimeout for requests
// in flight before closing what is left. It returns nil after a graceful
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.HTTP.Serve(ln) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.streams.drain()
	err := s.HTTP.Shutdown(sctx)
	if err != nil {
		s.log.Warn("requests still running at the shutdown deadline; closing their connections", "err", err)
		_ = s.HTTP.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	if err != nil {
		return fmt.Errorf("httpserver: shutdown: %w", err)
	}
	return nil
}

// streamSet tracks responses that have become event streams, so that a
// shutdown can end them: net/http's Shutdown waits for connections to go
// idle, which a stream never does.
type streamSet struct {
	mu       sync.Mutex
	draining bool
	cancels  map[*responseRecorder]context.CancelFunc
}

// add registers a stream; it returns false when the server is draining, in
// which case the stream has already been cancelled.
func (s *streamSet) add(r *responseRecorder, cancel context.CancelFunc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		cancel()
		return false
	}
	if s.cancels == nil {
		s.cancels = make(map[*responseRecorder]context.CancelFunc)
	}
	s.cancels[r] = cancel
	return true
}

func (s *streamSet) remove(r *responseRecorder) {
	s.mu.Lock()
	delete(s.cancels, r)
	s.mu.Unlock()
}

func (s *streamSet) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	for r, cancel := range s.cancels {
		cancel()
		delete(s.cancels, r)
	}
}
