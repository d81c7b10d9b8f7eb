package mcpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

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
//   - resources and prompts answer with a JSON-RPC error (JSON-RPC 2.0 §5.1)
//     whose code mapRPC chooses, returned through server.NewHandlerError;
//   - completion/complete answers -32603 with the error's message: mcp-go
//     reports any error of a completion provider so, typed or not;
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

// rpcError is a JSON-RPC error chosen by a handler (JSON-RPC 2.0 §5.1).
// Handlers return it wrapped by server.NewHandlerError, which makes mcp-go
// write its code, message and data as they are (mcp-go reports any other
// handler error as -32603); the fast path writes it itself.
type rpcError struct {
	code    int
	message string
	data    any
}

func (e *rpcError) Error() string { return e.message }

// JSONRPCError implements server.JSONRPCErrorProvider.
func (e *rpcError) JSONRPCError() mcp.JSONRPCError {
	return mcp.JSONRPCError{
		JSONRPC: mcp.JSONRPC_VERSION,
		Error:   mcp.NewJSONRPCErrorDetails(e.code, e.message, e.data),
	}
}

// rpcErr maps an application error to a JSON-RPC error for the resource
// uri, logging internal errors in full.
func (s *Server) rpcErr(ctx context.Context, uri string, err error) error {
	return handlerError(ctx, s.mapRPC(ctx, uri, err, true))
}

// paramsErr maps an application error to a JSON-RPC error for prompts,
// where a missing row is a bad argument (invalid params), not a missing
// resource.
func (s *Server) paramsErr(ctx context.Context, what string, err error) error {
	return handlerError(ctx, s.mapRPC(ctx, what, err, false))
}

// handlerError returns e for a handler to return, recording its code for
// the HTTP status of a 2026-07-28 response (see statusWriter).
func handlerError(ctx context.Context, e *rpcError) error {
	if slot, ok := ctx.Value(errorCodeKey{}).(*atomic.Int64); ok {
		slot.Store(int64(e.code))
	}
	return server.NewHandlerError(e)
}

// resourceNotFound is the error of a missing resource: -32002 with the URI
// as data.uri (MCP resources, "Error Handling"); 2026-07-28 (modern)
// reports it as invalid params.
func resourceNotFound(uri, message string, modern bool) *rpcError {
	e := &rpcError{code: codeResourceNotFound, message: message, data: map[string]string{"uri": uri}}
	if modern {
		e.code = codeInvalidParams
	}
	return e
}

// mapRPC is the one mapping of EpicMe's error vocabulary to JSON-RPC codes;
// it logs internal errors in full. For a resource, what is its URI: a
// missing resource's error carries it as data.uri (MCP resources, "Error
// Handling").
func (s *Server) mapRPC(ctx context.Context, what string, err error, resource bool) *rpcError {
	e := &rpcError{code: codeInternal, message: epicme.ErrorMessage(err)}
	switch epicme.ErrorCode(err) {
	case epicme.EINVALID:
		e.code = codeInvalidParams
	case epicme.ENOTFOUND:
		if resource {
			return resourceNotFound(what, e.message, server.IsModernRequest(ctx))
		}
		e.code = codeInvalidParams
	case epicme.ECONFLICT:
		e.code = codeInvalidParams
	case epicme.EFORBIDDEN:
		e.code = codeForbidden
	case epicme.EUNAVAILABLE:
		e.code = codeUnavailable
		s.logger.WarnContext(ctx, "request failed: database unavailable", slog.String("what", what), slog.Any("err", err))
	default:
		s.logger.ErrorContext(ctx, "request failed", slog.String("what", what), slog.Any("err", err))
	}
	return e
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
