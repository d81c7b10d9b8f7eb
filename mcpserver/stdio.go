package mcpserver

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/mark3labs/mcp-go/server"
)

// ServeStdio serves MCP over stdio (MCP basic/transports, "stdio"): one
// JSON-RPC message per line on in and out, until in ends or ctx is
// cancelled. There is no OAuth on stdio: the CallerResolver decides who the
// requests come from (the account chosen on the command line).
//
// mcp-go keeps a single stdio session per process, so a process serves at
// most one stdio connection at a time.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	stdio := server.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(log.New(slogWriter{s.logger}, "", 0))
	return stdio.Listen(ctx, in, out)
}

// slogWriter sends mcp-go's stdio error log to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("stdio transport", "msg", string(p))
	return len(p), nil
}
