// Command mcpgo is a peer of "epicme-bench peers": get_entry on
// github.com/mark3labs/mcp-go's stateless Streamable HTTP server, behind a
// bearer check of our own (the library has none) that looks the token up by
// its SHA-256.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/epicme/epicme/bench/peers/peerkit"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type userKey struct{}

func main() {
	f := peerkit.ParseFlags()
	tokens, err := peerkit.LoadTokens(f.Tokens)
	if err != nil {
		peerkit.Fatal(err)
	}
	store, err := peerkit.OpenStore(f.DB)
	if err != nil {
		peerkit.Fatal(err)
	}

	tools, err := peerkit.LoadTools(f.Tools)
	if err != nil {
		peerkit.Fatal(err)
	}

	s := server.NewMCPServer("mcpgo-peer", "1", server.WithToolCapabilities(false))
	getEntry := mcp.NewTool(peerkit.ToolName,
		mcp.WithDescription(peerkit.ToolDescription),
		mcp.WithInteger("id", mcp.Required(), mcp.Description("The entry's id")),
		mcp.WithReadOnlyHintAnnotation(true),
	)
	// With -tools, every tool of EpicMe's list is registered from its own
	// definition (schemas kept raw, byte for byte); only get_entry is served.
	for _, raw := range tools {
		t, err := rawTool(raw)
		if err != nil {
			peerkit.Fatal(err)
		}
		if t.Name == peerkit.ToolName {
			getEntry = t
			continue
		}
		s.AddTool(t, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError(peerkit.Unserved(req.Params.Name)), nil
		})
	}
	s.AddTool(getEntry, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		user, _ := ctx.Value(userKey{}).(string)
		id, err := req.RequireInt("id")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		e, err := store.GetEntry(ctx, user, int64(id))
		if errors.Is(err, peerkit.ErrNotFound) {
			return mcp.NewToolResultError(peerkit.NotFoundText(int64(id))), nil
		}
		if err != nil {
			return nil, err
		}
		b, err := peerkit.Structured(e)
		if err != nil {
			return nil, err
		}
		return &mcp.CallToolResult{
			Content: []mcp.Content{
				mcp.NewResourceLink(peerkit.EntryURI(e.ID), e.Title, peerkit.LinkDescription(e.Title), "application/json"),
				mcp.NewTextContent(string(b)),
			},
			StructuredContent: json.RawMessage(b),
		}, nil
	})

	h := server.NewStreamableHTTPServer(s,
		server.WithStateLess(true),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			return context.WithValue(ctx, userKey{}, r.Context().Value(userKey{}))
		}),
	)
	ln, err := peerkit.Listen(f.Addr)
	if err != nil {
		peerkit.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", bearer(tokens, h))
	peerkit.Fatal((&http.Server{Handler: mux}).Serve(ln))
}

// rawTool decodes a tool definition, keeping its schemas as they are.
func rawTool(raw json.RawMessage) (mcp.Tool, error) {
	var t mcp.Tool
	if err := json.Unmarshal(raw, &t); err != nil {
		return t, err
	}
	var schemas struct {
		In  json.RawMessage `json:"inputSchema"`
		Out json.RawMessage `json:"outputSchema"`
	}
	if err := json.Unmarshal(raw, &schemas); err != nil {
		return t, err
	}
	// mcp-go encodes either the typed or the raw schema, never both.
	t.InputSchema, t.OutputSchema = mcp.ToolInputSchema{}, mcp.ToolOutputSchema{}
	t.RawInputSchema, t.RawOutputSchema = schemas.In, schemas.Out
	return t, nil
}

// bearer refuses requests without a known token (RFC 6750 §3) and puts the
// token's user on the request context.
func bearer(tokens peerkit.TokenTable, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := tokens.Lookup(peerkit.BearerToken(r))
		if user == "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}
