package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// headerSessionID is the Streamable HTTP session header (MCP 2025-03-26
// basic/transports, "Session Management").
const headerSessionID = "Mcp-Session-Id"

func (s *Server) initHTTP() {
	s.http = server.NewStreamableHTTPServer(s.mcp,
		// Session mode: revisions 2025-03-26..2025-11-25 need a session for
		// server-initiated requests (elicitation, sampling) and
		// notifications. 2026-07-28 requests are stateless whatever this
		// says: mcp-go serves them without a session.
		server.WithSessionIdManagerResolver(s.sessions),
		server.WithSessionIdleTTL(s.opts.SessionIdleTTL),
		server.WithStreamableHTTPLogger(libraryLogger(s.logger)),
		// The Host check (DNS rebinding) is the HTTP layer's, on every
		// route (httpserver.Config.Hosts), so mcp-go's own is off.
		server.WithDisableLocalhostProtection(true),
	)
}

// HTTPHandler serves MCP over Streamable HTTP (MCP basic/transports) for
// every protocol revision from 2025-03-26 to 2026-07-28 on one endpoint;
// mount it at /mcp behind the authentication middleware and a body cap
// (httpserver caps every route; a body over the cap is 413 here).
//
// Each POST body is read once into typed messages (auth.Body: the auth
// middleware's, from the request context, or read here when there is no
// middleware), and every decision below reads those: the era, the batch
// rule, the session, the fast path. Around mcp-go's transport it keeps
// sessions in the session store, bound to the user and client that opened
// them (a request with the session id of someone else, or with an
// unknown, ended or idle session, gets 404), passes what
// needs another instance to it (see Peers), splits 2025-03-26 batches
// (batch.go), and gives 2026-07-28 error responses the HTTP status of
// their code (see statusWriter). It does not check Origin: the HTTP layer does.
func (s *Server) HTTPHandler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	modern := mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
	// A database outage is answered as one, 503 with Retry-After, before a
	// handler could turn it into a tool result or a JSON-RPC error under 200.
	if _, err := s.caller(r.Context()); epicme.ErrorCode(err) == epicme.EUNAVAILABLE {
		s.logger.WarnContext(r.Context(), "request refused: database unavailable", slog.Any("err", err))
		w.Header().Set("Retry-After", retryAfter)
		writeRPCError(w, http.StatusServiceUnavailable, codeUnavailable, epicme.ErrorMessage(err))
		return
	}
	var body *auth.Body
	if r.Method == http.MethodPost {
		var ok bool
		if body, ok = s.readBody(w, r); !ok {
			return
		}
	}
	if modern {
		if body != nil && body.Batch {
			writeBatchRemoved(w, mcp.ProtocolVersion20260728)
			return
		}
		if s.unknownResource(w, body, true) || (body != nil && s.serveFast(w, r, body, nil)) {
			return
		}
		s.serveLibrary(w, r, true)
		return
	}
	// Revisions before 2026-07-28 carry a session id.
	sess, ok := s.legacySession(w, r, body)
	if !ok {
		return
	}
	if sess != nil && s.unknownResource(w, body, false) {
		return
	}
	if body != nil && sess != nil && s.serveFast(w, r.WithContext(withSession(r.Context(), sess)), body, sess) {
		return
	}
	if sess != nil {
		var cancel context.CancelFunc
		ctx := withSession(r.Context(), sess)
		if r.Method == http.MethodGet {
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		r = r.WithContext(ctx)
		defer s.sessions.hold(sess, cancel)()
		if r.Method == http.MethodGet && !s.streamStillLive(w, r, sess) {
			return
		}
	}
	if body != nil && body.Batch {
		s.serveBatch(w, r, sess, body)
		return
	}
	if body != nil && sess != nil && isClientAnswer(body.Ops[0]) {
		s.routeResponse(w, r, sess, body.Raw)
		return
	}
	s.serveLibrary(w, r, false)
}

// unknownResource answers, itself, a resources/read of a URI that none of
// EpicMe's resources or templates matches: resource not found, with the
// URI as data.uri (MCP resources, "Error Handling"), which mcp-go's own
// answer for such a URI lacks; -32602 with HTTP 400 on 2026-07-28, -32002
// before, as for a missing entry.
func (s *Server) unknownResource(w http.ResponseWriter, body *auth.Body, modern bool) bool {
	if body == nil || body.Batch || body.Ops[0].Method != string(mcp.MethodResourcesRead) || body.Ops[0].Name == "" {
		return false
	}
	op := body.Ops[0]
	if _, ok := s.need("resources/read", op.Name); ok {
		return false
	}
	s.writeFastError(w, op.ID, resourceNotFound(op.Name, "Resource "+op.Name+" not found", modern), modern)
	return true
}

// serveLibrary hands a request EpicMe has judged to mcp-go's transport.
func (s *Server) serveLibrary(w http.ResponseWriter, r *http.Request, modern bool) {
	if !modern {
		s.http.ServeHTTP(w, r)
		return
	}
	code := new(atomic.Int64)
	s.http.ServeHTTP(&statusWriter{ResponseWriter: w, code: code},
		r.WithContext(context.WithValue(r.Context(), errorCodeKey{}, code)))
}

// readBody returns the POST body read once: by the auth middleware (on the
// context), or here. A body that is not JSON-RPC gets its parse error here,
// once (the auth middleware gives the same answer when it reads it).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (*auth.Body, bool) {
	body := auth.BodyFromContext(r.Context())
	if body == nil {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeRPCError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest,
					fmt.Sprintf("request body is larger than the limit of %d bytes", tooBig.Limit))
				return nil, false
			}
			writeRPCError(w, http.StatusBadRequest, mcp.PARSE_ERROR, "could not read the request body")
			return nil, false
		}
		body = auth.ReadBody(raw)
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	if body.Err != nil {
		writeRPCError(w, http.StatusBadRequest, mcp.PARSE_ERROR, "Parse error: "+body.Err.Error())
		return nil, false
	}
	if err := checkText(body.Raw); err != nil {
		writeRPCError(w, http.StatusBadRequest, mcp.INVALID_PARAMS, epicme.ErrorMessage(err))
		return nil, false
	}
	return body, true
}

// legacySession finds the session of a request of a revision before
// 2026-07-28, or starts one for initialize; nil for a request that needs
// none. It answers the request itself when it returns false.
func (s *Server) legacySession(w http.ResponseWriter, r *http.Request, body *auth.Body) (*epicme.MCPSession, bool) {
	sid := r.Header.Get(headerSessionID)
	switch {
	case body != nil && !body.Batch && body.Ops[0].Method == string(mcp.MethodInitialize):
		c, err := s.caller(r.Context())
		if err != nil {
			writeRPCError(w, http.StatusForbidden, codeForbidden, epicme.ErrorMessage(err))
			return nil, false
		}
		sess, err := s.sessions.startSession(r.Context(), c, body.Ops[0].Message)
		if err != nil {
			s.sessionStoreFailed(w, r, err)
			return nil, false
		}
		return sess, true
	case sid == "" && r.Method == http.MethodGet:
		writeRPCError(w, http.StatusBadRequest, codeInvalidRequest, "Mcp-Session-Id header is required")
		return nil, false
	case sid == "":
		return nil, true
	}
	sess, err := s.sessions.lookup(r.Context(), sid)
	if err != nil {
		s.sessionStoreFailed(w, r, err)
		return nil, false
	}
	if sess == nil {
		// MCP 2025-03-26 basic/transports: a request with an unknown or
		// ended session gets 404, and the client starts anew.
		writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
		return nil, false
	}
	// A session is honoured only for the user and client that opened it
	// (MCP security best practices, "Session Hijacking"). This is the one
	// place sessions are bound: the auth middleware leaves it here. Anyone
	// else gets the answer of an unknown session, on every instance, so
	// that nobody learns the id exists.
	c, err := s.caller(r.Context())
	if err != nil || c.User.ID != sess.UserID || c.ClientID != sess.ClientID {
		writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
		return nil, false
	}
	if sess, err = s.sessions.touch(r.Context(), sess); err != nil {
		s.sessionStoreFailed(w, r, err)
		return nil, false
	}
	if sess == nil {
		writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
		return nil, false
	}
	return sess, true
}

// streamStillLive reads the store once more for a GET stream, now that the
// stream is held, so that an end racing this request is either seen here
// or ends the stream (endLocal).
func (s *Server) streamStillLive(w http.ResponseWriter, r *http.Request, sess *epicme.MCPSession) bool {
	_, err := s.sessionStore.GetSession(r.Context(), sess.ID, time.Now().Add(-s.opts.SessionIdleTTL))
	switch {
	case err == nil:
		return true
	case epicme.ErrorCode(err) != epicme.ENOTFOUND:
		s.sessionStoreFailed(w, r, err)
	default:
		writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
	}
	return false
}

// isClientAnswer reports whether a message is a client's answer to a server
// request (elicitation, sampling, roots), which mcp-go delivers to the
// request waiting for it. An empty result answers a ping, which mcp-go
// acknowledges itself.
func isClientAnswer(op auth.Operation) bool {
	if !op.IsResponse() {
		return false
	}
	if op.Error != nil {
		return true
	}
	r := bytes.TrimSpace(op.Result)
	return len(r) > 0 && !bytes.Equal(r, []byte("{}")) && !bytes.Equal(r, []byte("null"))
}

// sessionStoreFailed answers a request whose session could not be read or
// stored: 503 with Retry-After when the store is unavailable, 500 otherwise.
func (s *Server) sessionStoreFailed(w http.ResponseWriter, r *http.Request, err error) {
	if epicme.ErrorCode(err) == epicme.EUNAVAILABLE {
		s.logger.WarnContext(r.Context(), "request refused: database unavailable", slog.Any("err", err))
		w.Header().Set("Retry-After", retryAfter)
		writeRPCError(w, http.StatusServiceUnavailable, codeUnavailable, epicme.ErrorMessage(err))
		return
	}
	s.logger.ErrorContext(r.Context(), "session store failed", slog.Any("err", err))
	writeRPCError(w, http.StatusInternalServerError, mcp.INTERNAL_ERROR, "internal error")
}

// writeRPCError answers with a JSON-RPC error response (JSON-RPC 2.0 §5)
// that has a null id: the request was refused before it was read.
func writeRPCError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(mcp.JSONRPCError{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(nil),
		Error:   mcp.JSONRPCErrorDetails{Code: code, Message: message},
	})
}

// retryAfter is the Retry-After (RFC 9110 §10.2.3), in seconds, of a 503
// for a database outage: long enough not to hammer a recovering server.
const retryAfter = "2"

// errorCodeKey holds, on the context of a 2026-07-28 request mcp-go
// serves, the code of the rpcError its handler returned (mapRPC records
// it), so that statusWriter can give the response that code's status.
type errorCodeKey struct{}

// statusWriter gives a 2026-07-28 JSON error response the HTTP status of
// its code (statusForCode) where mcp-go, which maps only the codes it knows,
// would send 200: 403 for codeForbidden, 503 with Retry-After for
// codeUnavailable. The code is the one the handler chose, not read back
// from the body.
type statusWriter struct {
	http.ResponseWriter
	code  *atomic.Int64
	wrote bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		if code := w.code.Load(); code != 0 && status == http.StatusOK &&
			strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			status = statusForCode(int(code))
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which mcp-go needs to stream SSE.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
