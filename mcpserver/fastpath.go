package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The fast path answers the journal's hottest requests without mcp-go's
// transport: a single tools/call of a read-only tool that cannot ask the
// client for input (fastTools), stateless (2026-07-28) or on a session of
// an earlier revision, checked from the session registry's cache. mcp-go
// decodes such a body five times and spends about 160 µs of CPU on it; the
// fast path reads the body the auth layer already read.
//
// It is deliberately narrow. It accepts only a request that mcp-go would
// serve without complaint and hands everything else (other methods, batches,
// older revisions, any header or _meta irregularity, a caller without the
// tool's scopes) to mcp-go unchanged, so that errors keep mcp-go's wording
// and codes. TestFastPathMatchesLibrary sends the same requests down both
// paths and requires the same status, content type and JSON.
//
// It calls the very handler registered with mcp-go (addTool keeps it), and
// decorates the result as mcp-go does for 2026-07-28 (MCP 2026-07-28
// basic/lifecycle: resultType and _meta serverInfo on every result).

// fastTools are the tools the fast path serves: read-only, never answered
// with input_required.
var fastTools = map[string]bool{
	"whoami":         true,
	"get_entry":      true,
	"list_entries":   true,
	"search_entries": true,
	"get_tag":        true,
	"list_tags":      true,
}

// serveFast answers r from its body, read once, when it qualifies and
// reports whether it did. It writes nothing when it returns false. sess is
// the request's session, already checked against the registry (revisions
// 2025-03-26..2025-11-25), or nil for a 2026-07-28 request.
func (s *Server) serveFast(w http.ResponseWriter, r *http.Request, body *auth.Body, sess *epicme.MCPSession) bool {
	if s.opts.DisableFastPath || body.Batch {
		return false
	}
	h := r.Header
	if h.Get(mcp.HeaderLastEventID) != "" {
		return false
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/json" {
		return false
	}
	req := body.Ops[0]
	if req.JSONRPC != mcp.JSONRPC_VERSION || req.Method != string(mcp.MethodToolsCall) ||
		!fastTools[req.Name] || !validID(req.ID) {
		return false
	}
	if sess == nil && !modernFastCall(h, req) || sess != nil && !sessionFastCall(h, req, sess) {
		return false
	}
	var args map[string]any
	if len(req.Arguments) > 0 && string(req.Arguments) != "null" {
		if !isObject(req.Arguments) || json.Unmarshal(req.Arguments, &args) != nil {
			return false
		}
	}
	handler := s.fast[req.Name]
	if handler == nil {
		return false
	}
	// A caller without the tool's scopes gets mcp-go's answer, word for word.
	c, err := s.caller(r.Context())
	if err != nil || !s.allows(c, "tools/call", req.Name) {
		return false
	}

	call := mcp.CallToolRequest{Request: mcp.Request{Method: req.Method}}
	call.Params.Name = req.Name
	call.Params.Arguments = args
	call.Header = h
	res, err := handler(r.Context(), call)
	var rpc *rpcError
	switch {
	case errors.As(err, &rpc):
		// The adapter dispatched this call, so it writes the JSON-RPC
		// error itself, as mcp-go would.
		s.writeFastError(w, req.ID, rpc, sess == nil)
	case err != nil || res == nil:
		return false
	default:
		s.writeFastResult(w, r, req, res, sess == nil)
	}
	s.fastServed.Add(1)
	return true
}

// writeFastResult writes a tool result as mcp-go would for the request's
// revision.
func (s *Server) writeFastResult(w http.ResponseWriter, r *http.Request, req auth.Operation, res *mcp.CallToolResult, modern bool) {
	// The envelope is written by hand: encoding/json would scan the whole
	// result again to validate what MarshalJSON returned.
	out := responseBuffers.Get().(*bytes.Buffer)
	defer releaseResponseBuffer(out)
	out.Grow(2*resultSizeHint(res) + len(req.ID) + len(s.fastMeta) + 64)
	out.WriteString(`{"jsonrpc":"2.0","id":`)
	out.Write(req.ID)
	out.WriteString(`,"result":`)
	// 2026-07-28 decorates every result (basic/lifecycle); earlier
	// revisions have no _meta or resultType.
	var meta []byte
	if modern {
		meta = s.fastMeta
	}
	// Every fast tool builds its result with toolResult or as a tool error.
	if !encodeFastResult(out, res, meta, true) {
		if modern {
			if res.ResultType == "" {
				res.ResultType = mcp.ResultTypeComplete
			}
			if m := res.EnsureResultMeta(); m != nil && m.ServerInfo() == nil {
				m.SetServerInfo(s.implementation)
			}
		}
		result, err := res.MarshalJSON()
		if err != nil {
			s.logger.ErrorContext(r.Context(), "encoding a tool result", "tool", req.Name, "error", err)
			writeRPCError(w, http.StatusInternalServerError, mcp.INTERNAL_ERROR, "internal error")
			return
		}
		out.Write(result)
	}
	out.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(out.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// writeFastError writes the JSON-RPC error (JSON-RPC 2.0 §5.1) of a call
// the fast path dispatched; on 2026-07-28 with the HTTP status of its code.
func (s *Server) writeFastError(w http.ResponseWriter, id json.RawMessage, e *rpcError, modern bool) {
	status := http.StatusOK
	if modern {
		status = statusForCode(e.code)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(mcp.JSONRPCError{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(id),
		Error:   mcp.NewJSONRPCErrorDetails(e.code, e.message, e.data),
	})
}

// modernFastCall reports whether a 2026-07-28 request is one mcp-go would
// serve without complaint: headers agreeing with the body, and the _meta
// of basic/lifecycle present and well formed.
func modernFastCall(h http.Header, req auth.Operation) bool {
	if h.Get(mcp.HeaderProtocolVersion) != mcp.ProtocolVersion20260728 ||
		h.Get(mcp.HeaderMethod) != string(mcp.MethodToolsCall) || h.Get(mcp.HeaderName) != req.Name {
		return false
	}
	if string(req.ProtocolVersion) != `"`+mcp.ProtocolVersion20260728+`"` || !isObject(req.ClientCapabilities) {
		return false
	}
	return req.ClientInfo == nil || isObject(req.ClientInfo)
}

// sessionFastCall reports whether a request on a session is one mcp-go
// would serve as it is: the session's own version in the header, no
// 2026-07-28 _meta (which would make it a modern request to mcp-go), and
// no Mcp-Method or Mcp-Name headers to check (the auth layer checks them
// when present; mcp-go would too).
func sessionFastCall(h http.Header, req auth.Operation, sess *epicme.MCPSession) bool {
	if h.Get(mcp.HeaderProtocolVersion) != sess.ProtocolVersion || req.ProtocolVersion != nil {
		return false
	}
	_, method := h[mcp.HeaderMethod]
	_, name := h[mcp.HeaderName]
	return !method && !name
}

// validID reports whether raw, a value the body reader has already checked
// to be valid JSON, is a JSON-RPC request id: a string or a number
// (JSON-RPC 2.0 §4; MCP forbids null).
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '"' || c == '-' || ('0' <= c && c <= '9')
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 1 && raw[0] == '{'
}

// responseBuffers holds the fast path's response buffers between
// requests: the response is copied into the connection's writer, so a
// buffer is free again once it is written.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// releaseResponseBuffer returns out to responseBuffers, unless an unusually
// large result grew it: the pool should not pin big buffers.
func releaseResponseBuffer(out *bytes.Buffer) {
	if out.Cap() > 256<<10 {
		return
	}
	out.Reset()
	responseBuffers.Put(out)
}

// resultSizeHint estimates the encoded size of a result's text, so that the
// response buffer is allocated once.
func resultSizeHint(res *mcp.CallToolResult) int {
	n := len(res.RawStructuredContent)
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			n += len(t.Text)
		}
	}
	return n + 256
}

// fastHandler is a tool handler as registered with mcp-go.
type fastHandler = server.ToolHandlerFunc
