package mcpserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file maps EpicMe's error vocabulary (epicme.ENOTFOUND, EINVALID,
// ECONFLICT, EFORBIDDEN, EINTERNAL) onto what MCP clients see, in one place:
//
//   - tools answer with a tool result whose isError is true and whose text is
//     the error's message (MCP 2025-11-25, server/tools, "Error Handling":
//     tool execution errors are reported in the result so the model can
//     correct itself);
//   - resources and prompts answer with a JSON-RPC error (JSON-RPC 2.0 §5.1);
//   - the HTTP layer asks HTTPStatus for the status of a code.
//
// Internal errors reach clients as "internal error"; the full error goes to
// the log.

// JSON-RPC error codes used for application errors. -32002 is MCP's
// "resource not found" (2025-03-26 .. 2025-11-25); protocol 2026-07-28 reports
// the same condition as invalid params. -32003 is ours, in the range JSON-RPC
// 2.0 §5.1 reserves for implementation-defined server errors.
const (
	codeResourceNotFound = mcp.RESOURCE_NOT_FOUND // -32002
	codeForbidden        = -32003
	codeUnavailable      = -32004             // ours too: the database is down for now; retry
	codeInvalidParams    = mcp.INVALID_PARAMS // -32602
	codeInternal         = mcp.INTERNAL_ERROR // -32603
	codeInvalidRequest   = mcp.INVALID_REQUEST
)

// HTTPStatus returns the HTTP status that stands for an application error
// code (RFC 9110 §15): 400 for invalid input, 403 for a missing permission,
// 404 for a missing row, 409 for a conflict, and 500 for anything else.
func HTTPStatus(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case epicme.EINVALID:
		return http.StatusBadRequest
	case epicme.EFORBIDDEN:
		return http.StatusForbidden
	case epicme.ENOTFOUND:
		return http.StatusNotFound
	case epicme.ECONFLICT:
		return http.StatusConflict
	case epicme.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// toolError turns an error into a tool result with isError set. Internal
// errors are logged in full and shown as "internal error".
func (s *Server) toolError(ctx context.Context, tool string, err error) *mcp.CallToolResult {
	switch epicme.ErrorCode(err) {
	case epicme.EINTERNAL:
		s.logger.ErrorContext(ctx, "tool failed", slog.String("tool", tool), slog.Any("err", err))
	case epicme.EUNAVAILABLE:
		s.logger.WarnContext(ctx, "tool failed: database unavailable", slog.String("tool", tool), slog.Any("err", err))
	}
	return mcp.NewToolResultError(epicme.ErrorMessage(err))
}

// toolFailure answers a tool call that failed: with a tool result whose
// isError is set, or, when the database is unavailable, with a JSON-RPC
// error (codeUnavailable; HTTP 503 with Retry-After on 2026-07-28), since no
// other arguments could fix it and the client should retry the same call.
func (s *Server) toolFailure(ctx context.Context, tool string, err error) (*mcp.CallToolResult, error) {
	if epicme.ErrorCode(err) == epicme.EUNAVAILABLE {
		return nil, s.rpcErr(ctx, "tool "+tool, err)
	}
	return s.toolError(ctx, tool, err), nil
}

// rpcError is a JSON-RPC error chosen by a resource or prompt handler.
//
// mcp-go reports every error a resource or prompt handler returns as -32603
// with the error's text as message, and offers no way to choose the code. So
// an rpcError spells itself as marker + code + ":" + message, where marker is
// a random string private to the Server, and the transports' writers
// (rewriteErrors) turn `"code":-32603,"message":"<marker><code>:` back into
// `"code":<code>,"message":"`. A client cannot forge the marker, because it
// never sees it.
type rpcError struct {
	marker  string
	code    int
	message string
}

func (e *rpcError) Error() string {
	return e.marker + strconv.Itoa(e.code) + ":" + e.message
}

// rpcErr maps an application error to a JSON-RPC error for resources,
// logging internal errors in full.
func (s *Server) rpcErr(ctx context.Context, what string, err error) error {
	return s.mapRPC(ctx, what, err, true)
}

// paramsErr maps an application error to a JSON-RPC error for prompts and
// completions, where a missing row is a bad argument (invalid params), not a
// missing resource.
func (s *Server) paramsErr(ctx context.Context, what string, err error) error {
	return s.mapRPC(ctx, what, err, false)
}

func (s *Server) mapRPC(ctx context.Context, what string, err error, resource bool) error {
	code := codeInternal
	switch epicme.ErrorCode(err) {
	case epicme.EINVALID:
		code = codeInvalidParams
	case epicme.ENOTFOUND:
		code = codeResourceNotFound
		if !resource || server.IsModernRequest(ctx) {
			// 2026-07-28 reports a missing resource as invalid params.
			code = codeInvalidParams
		}
	case epicme.ECONFLICT:
		code = codeInvalidParams
	case epicme.EFORBIDDEN:
		code = codeForbidden
	case epicme.EUNAVAILABLE:
		code = codeUnavailable
		s.logger.WarnContext(ctx, "request failed: database unavailable", slog.String("what", what), slog.Any("err", err))
	default:
		s.logger.ErrorContext(ctx, "request failed", slog.String("what", what), slog.Any("err", err))
	}
	return &rpcError{marker: s.marker, code: code, message: epicme.ErrorMessage(err)}
}

// rewriteErrors restores the codes of the rpcErrors in one encoded JSON-RPC
// message (or SSE event), and reports the last code restored (0 if none).
func rewriteErrors(p []byte, needle []byte) ([]byte, int) {
	if !bytes.Contains(p, needle) {
		return p, 0
	}
	var out []byte
	last := 0
	for {
		i := bytes.Index(p, needle)
		if i < 0 {
			break
		}
		rest := p[i+len(needle):]
		colon := bytes.IndexByte(rest, ':')
		if colon <= 0 || colon > 7 {
			break
		}
		code, err := strconv.Atoi(string(rest[:colon]))
		if err != nil {
			break
		}
		out = append(out, p[:i]...)
		out = append(out, `"code":`...)
		out = strconv.AppendInt(out, int64(code), 10)
		out = append(out, `,"message":"`...)
		p = rest[colon+1:]
		last = code
	}
	return append(out, p...), last
}

// errorNeedle is what an rpcError looks like once mcp-go has encoded it.
func errorNeedle(marker string) []byte {
	return []byte(`"code":` + strconv.Itoa(codeInternal) + `,"message":"` + marker)
}

// statusForCode is the HTTP status protocol 2026-07-28 gives a JSON-RPC error
// response (the same mapping mcp-go applies to its own errors).
func statusForCode(code int) int {
	switch code {
	case codeInvalidParams, codeInvalidRequest, mcp.PARSE_ERROR:
		return http.StatusBadRequest
	case codeForbidden:
		return http.StatusForbidden
	case codeUnavailable:
		return http.StatusServiceUnavailable
	case mcp.METHOD_NOT_FOUND:
		return http.StatusNotFound
	default:
		return http.StatusOK
	}
}

// forbidden is the error for a caller whose token lacks scopes; it names
// every missing scope so that clients can ask for them (step-up).
func forbidden(what string, missing []string) error {
	quoted := make([]string, len(missing))
	for i, m := range missing {
		quoted[i] = strconv.Quote(m)
	}
	msg := what + " requires the " + joinAnd(quoted) + " scope"
	if len(missing) > 1 {
		msg += "s"
	}
	return epicme.Errorf(epicme.EFORBIDDEN, "%s", msg)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}

// isAppError reports whether err carries an application error code.
func isAppError(err error) bool {
	var e *epicme.Error
	return errors.As(err, &e)
}
