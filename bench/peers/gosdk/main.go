// Command gosdk is a peer of "epicme-bench peers": get_entry on the official
// Go SDK (github.com/modelcontextprotocol/go-sdk), stateless Streamable HTTP
// with JSON responses, behind the SDK's auth.RequireBearerToken with a
// verifier that looks the token up by its SHA-256.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/epicme/epicme/bench/peers/peerkit"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type getEntryIn struct {
	ID int64 `json:"id" jsonschema:"The entry's id"`
}

type getEntryOut struct {
	Entry *peerkit.Entry `json:"entry"`
}

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

	s := mcp.NewServer(&mcp.Implementation{Name: "gosdk-peer", Version: "1"}, nil)
	// With -tools, the other tools of EpicMe's list are listed from their own
	// definitions; only get_entry, with the schema the SDK infers, is served.
	for _, raw := range tools {
		var t mcp.Tool
		if err := json.Unmarshal(raw, &t); err != nil {
			peerkit.Fatal(err)
		}
		if t.Name == peerkit.ToolName {
			continue
		}
		s.AddTool(&t, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: peerkit.Unserved(req.Params.Name)}}}, nil
		})
	}
	mcp.AddTool(s, &mcp.Tool{
		Name:        peerkit.ToolName,
		Description: peerkit.ToolDescription,
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in getEntryIn) (*mcp.CallToolResult, getEntryOut, error) {
		ti := req.Extra.TokenInfo
		if ti == nil {
			return nil, getEntryOut{}, errors.New("no token")
		}
		e, err := store.GetEntry(ctx, ti.UserID, in.ID)
		if errors.Is(err, peerkit.ErrNotFound) {
			return nil, getEntryOut{}, errors.New(peerkit.NotFoundText(in.ID))
		}
		if err != nil {
			return nil, getEntryOut{}, fmt.Errorf("internal error")
		}
		b, err := peerkit.Structured(e)
		if err != nil {
			return nil, getEntryOut{}, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.ResourceLink{URI: peerkit.EntryURI(e.ID), Name: e.Title, Description: peerkit.LinkDescription(e.Title), MIMEType: "application/json"},
			&mcp.TextContent{Text: string(b)},
		}}, getEntryOut{e}, nil
	})

	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		user := tokens.Lookup(token)
		if user == "" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: user, Expiration: peerkit.TokenExpiry}, nil
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	ln, err := peerkit.Listen(f.Addr)
	if err != nil {
		peerkit.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", auth.RequireBearerToken(verify, nil)(h))
	peerkit.Fatal((&http.Server{Handler: mux}).Serve(ln))
}
