package mcpserver

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/mark3labs/mcp-go/mcp"
)

// JSON-RPC batches (JSON-RPC 2.0 §6). MCP 2025-03-26 requires servers to
// receive them (basic, "Batching"); 2025-06-18 removed them. mcp-go reads
// one message per POST, so the adapter splits a batch of a 2025-03-26
// session into its messages, has each served as if it came alone, and
// builds the array reply. The auth middleware has decided every element
// already (its scopes included: a batch with one element the token does
// not cover is refused as a whole, with the challenge naming every scope
// the batch needs); each element is then decided again by the handler it
// reaches, as a single request would be.

// batchEra is the last revision that has batches.
const batchEra = "2025-03-26"

// writeBatchRemoved answers a batch in a revision without batches with
// JSON-RPC's Invalid Request (§5.1), saying why.
func writeBatchRemoved(w http.ResponseWriter, version string) {
	writeRPCError(w, http.StatusBadRequest, codeInvalidRequest,
		"JSON-RPC batches are not supported in protocol version "+version+
			": MCP removed batching in 2025-06-18; send one message per request")
}

// serveBatch answers a batch of a request before 2026-07-28.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request, sess *epicme.MCPSession, body *auth.Body) {
	if sess == nil {
		if v := r.Header.Get(mcp.HeaderProtocolVersion); v > batchEra {
			writeBatchRemoved(w, v)
			return
		}
		// initialize must not be batched (2025-03-26 basic/lifecycle), so
		// a batch always belongs to a session.
		writeRPCError(w, http.StatusBadRequest, codeInvalidRequest,
			"a JSON-RPC batch needs a session: send initialize alone first, then the batch with its Mcp-Session-Id")
		return
	}
	if sess.ProtocolVersion != batchEra {
		writeBatchRemoved(w, sess.ProtocolVersion)
		return
	}
	var replies [][]byte
	for _, op := range body.Ops {
		if reply := s.serveElement(r, sess, op); reply != nil {
			replies = append(replies, reply)
		}
	}
	if len(replies) == 0 {
		// Only notifications and responses: 202 Accepted, no body
		// (2025-03-26 basic/transports).
		w.WriteHeader(http.StatusAccepted)
		return
	}
	out := append([]byte{'['}, bytes.Join(replies, []byte{','})...)
	out = append(out, ']', '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// serveElement serves one message of a batch as a request of its own and
// returns its JSON-RPC reply, nil when it has none. The recorder cannot
// stream, so mcp-go answers with one JSON message, and a server request
// made while serving it goes to the session's GET stream.
func (s *Server) serveElement(r *http.Request, sess *epicme.MCPSession, op auth.Operation) []byte {
	one := r.Clone(r.Context())
	one.Body = http.NoBody
	if len(op.Message) > 0 {
		one.Body = readCloser{bytes.NewReader(op.Message)}
	}
	one.ContentLength = int64(len(op.Message))
	one.Header.Del(mcp.HeaderMethod)
	one.Header.Del(mcp.HeaderName)
	one = one.WithContext(auth.ContextWithBody(one.Context(), &auth.Body{Raw: op.Message, Ops: []auth.Operation{op}}))
	rec := &recorder{header: http.Header{}}
	if isClientAnswer(op) {
		s.routeResponse(rec, one, sess, op.Message)
	} else {
		s.serveLibrary(rec, one, false)
	}
	reply := bytes.TrimSpace(rec.body.Bytes())
	switch {
	case op.ID == nil || rec.status() == http.StatusAccepted:
		return nil
	case len(reply) > 0 && reply[0] == '{' && json.Valid(reply):
		return reply
	}
	// The transport refused the message with a plain HTTP error: give
	// the element its JSON-RPC error instead.
	msg := string(reply)
	if msg == "" {
		msg = http.StatusText(rec.status())
	}
	out, _ := json.Marshal(mcp.JSONRPCError{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(json.RawMessage(op.ID)),
		Error:   mcp.JSONRPCErrorDetails{Code: codeInvalidRequest, Message: msg},
	})
	return out
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
