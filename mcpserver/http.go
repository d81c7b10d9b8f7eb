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
	"time"

	"github.com/epicme/epicme"
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
		server.WithDisableLocalhostProtection(s.opts.DisableHostCheck),
	)
}

// HTTPHandler serves MCP over Streamable HTTP (MCP basic/transports) for
// every protocol revision from 2025-03-26 to 2026-07-28 on one endpoint;
// mount it at /mcp behind the authentication middleware.
//
// Around mcp-go's transport it caps request bodies (Options.MaxBodyBytes),
// keeps sessions in the session store, bound to the user and client that
// opened them (a request with the session id of someone else is refused
// with 403, one with an unknown, ended or idle session with 404), passes
// what needs another instance to it (see Peers), and restores the
// JSON-RPC codes of resource and prompt errors (see rpcError). It does not
// check Origin: the HTTP layer does.
func (s *Server) HTTPHandler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// A database outage is answered as one, 503 with Retry-After, before a
	// handler could turn it into a tool result or a JSON-RPC error under 200.
	if _, err := s.caller(r.Context()); epicme.ErrorCode(err) == epicme.EUNAVAILABLE {
		s.logger.WarnContext(r.Context(), "request refused: database unavailable", slog.Any("err", err))
		w.Header().Set("Retry-After", retryAfter)
		writeRPCError(w, http.StatusServiceUnavailable, codeUnavailable, epicme.ErrorMessage(err))
		return
	}
	modern := mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
	if r.Method == http.MethodPost {
		if r.ContentLength > s.opts.MaxBodyBytes {
			s.tooLarge(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		if r.ContentLength < 0 {
			// A body of unknown length is read here, so that one over the
			// limit gets the same answer as one whose length says so.
			if !s.bufferBody(w, r) {
				return
			}
		}
	}

	if modern && r.Method == http.MethodPost {
		if !s.bufferBody(w, r) {
			return
		}
		if s.serveFast(w, r, r.Body.(bufferedBody).data) {
			return
		}
	}

	// Revisions before 2026-07-28 carry a session id; 2026-07-28 has no
	// sessions and mcp-go ignores the header on its requests.
	if !modern {
		if r.Method == http.MethodPost && !s.bufferBody(w, r) {
			return
		}
		sid := r.Header.Get(headerSessionID)
		if sid == "" && r.Method == http.MethodGet {
			writeRPCError(w, http.StatusBadRequest, codeInvalidRequest, "Mcp-Session-Id header is required")
			return
		}
		var sess *epicme.MCPSession
		var cancel context.CancelFunc
		switch {
		case r.Method == http.MethodPost && isInitialize(r):
			c, err := s.caller(r.Context())
			if err != nil {
				writeRPCError(w, http.StatusForbidden, codeForbidden, epicme.ErrorMessage(err))
				return
			}
			if sess, err = s.sessions.startSession(r.Context(), c, r.Body.(bufferedBody).data); err != nil {
				s.sessionStoreFailed(w, r, err)
				return
			}
		case sid != "":
			var err error
			if sess, err = s.sessions.lookup(r.Context(), sid); err != nil {
				s.sessionStoreFailed(w, r, err)
				return
			}
			if sess == nil {
				// MCP 2025-03-26 basic/transports: a request with an unknown
				// or ended session gets 404, and the client starts anew.
				writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
				return
			}
			// A session is honoured only for the user and client that
			// opened it (MCP security best practices, "Session Hijacking").
			c, err := s.caller(r.Context())
			if err != nil || c.User.ID != sess.UserID || c.ClientID != sess.ClientID {
				writeRPCError(w, http.StatusForbidden, codeForbidden, "this session belongs to another user or client; start a new session")
				return
			}
			if sess, err = s.sessions.touch(r.Context(), sess); err != nil {
				s.sessionStoreFailed(w, r, err)
				return
			}
			if sess == nil {
				writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
				return
			}
			if r.Method == http.MethodPost && isClientResponse(r.Body.(bufferedBody).data) {
				s.routeResponse(w, r.WithContext(withSession(r.Context(), sess)), sess, r.Body.(bufferedBody).data)
				return
			}
		}
		if sess != nil {
			ctx := withSession(r.Context(), sess)
			if r.Method == http.MethodGet {
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			r = r.WithContext(ctx)
			defer s.sessions.hold(sess, cancel)()
			if r.Method == http.MethodGet {
				// A stream lasts: read the store once more now that the
				// stream is held, so that an end racing this request is
				// either seen here or ends the stream (endLocal).
				if _, err := s.sessionStore.GetSession(ctx, sess.ID, time.Now().Add(-s.opts.SessionIdleTTL)); err != nil {
					if epicme.ErrorCode(err) != epicme.ENOTFOUND {
						s.sessionStoreFailed(w, r, err)
						return
					}
					writeRPCError(w, http.StatusNotFound, codeInvalidRequest, "unknown or expired session; initialize a new one")
					return
				}
			}
		}
	}

	rw := &rpcWriter{ResponseWriter: w, needle: s.needle, modern: modern}
	s.http.ServeHTTP(rw, r)
	rw.finish()
}

// bufferBody reads the request body into memory (within the limit that
// MaxBytesReader set) and puts it back for the transport, answering the
// request itself when it cannot.
func (s *Server) bufferBody(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := r.Body.(bufferedBody); ok {
		return true
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.tooLarge(w)
			return false
		}
		writeRPCError(w, http.StatusBadRequest, mcp.PARSE_ERROR, "could not read the request body")
		return false
	}
	if err := checkText(body); err != nil {
		writeRPCError(w, http.StatusBadRequest, mcp.INVALID_PARAMS, epicme.ErrorMessage(err))
		return false
	}
	r.Body = bufferedBody{bytes.NewReader(body), body}
	return true
}

// bufferedBody is a request body already read into memory.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (bufferedBody) Close() error { return nil }

// isInitialize reports whether a POST request is an initialize request,
// which starts a session whatever session id it carries.
func isInitialize(r *http.Request) bool {
	b, ok := r.Body.(bufferedBody)
	if !ok {
		return false
	}
	body := b.data
	if !bytes.Contains(body, []byte(`"initialize"`)) {
		return false
	}
	var m struct {
		Method string `json:"method"`
	}
	return json.Unmarshal(body, &m) == nil && m.Method == string(mcp.MethodInitialize)
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

func (s *Server) tooLarge(w http.ResponseWriter) {
	writeRPCError(w, http.StatusRequestEntityTooLarge, codeInvalidRequest,
		fmt.Sprintf("request body is larger than the limit of %d bytes", s.opts.MaxBodyBytes))
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

// rpcWriter restores the codes of rpcErrors in mcp-go's responses, JSON or
// SSE, and on protocol 2026-07-28 gives a JSON error response the HTTP
// status of its restored code. The status is held back until the first
// write so that it can still change.
type rpcWriter struct {
	http.ResponseWriter
	needle []byte
	modern bool
	status int
	wrote  bool
}

func (w *rpcWriter) WriteHeader(code int) {
	if !w.wrote && w.status == 0 {
		w.status = code
	}
}

func (w *rpcWriter) Write(p []byte) (int, error) {
	n := len(p)
	out, code := rewriteErrors(p, w.needle)
	if !w.wrote {
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		if code != 0 && w.modern && status == http.StatusOK &&
			strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			status = statusForCode(code)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.ResponseWriter.WriteHeader(status)
		w.wrote = true
	}
	if _, err := w.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush implements http.Flusher, which mcp-go needs to stream SSE.
func (w *rpcWriter) Flush() {
	w.finish()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *rpcWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends a status held back by WriteHeader when nothing was written.
func (w *rpcWriter) finish() {
	if !w.wrote && w.status != 0 {
		w.ResponseWriter.WriteHeader(w.status)
		w.wrote = true
	}
}
