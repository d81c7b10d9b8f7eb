// Command bare is the ceiling of "epicme-bench peers": a plain net/http
// handler that does get_entry's work (bearer token looked up by its
// SHA-256, one SQLite read, a JSON-RPC result) with no MCP library, parsing
// and writing JSON-RPC 2.0 by hand. It answers only tools/call of get_entry
// and tools/list, statelessly.
package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/epicme/epicme/bench/peers/peerkit"
)

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
	list := toolsList
	if tools != nil {
		list = map[string]any{"tools": tools}
	}
	ln, err := peerkit.Listen(f.Addr)
	if err != nil {
		peerkit.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /mcp", &handler{tokens: tokens, store: store, list: list})
	peerkit.Fatal((&http.Server{Handler: mux}).Serve(ln))
}

type handler struct {
	tokens peerkit.TokenTable
	store  *peerkit.Store
	list   any // the tools/list result
}

// request is the part of a JSON-RPC 2.0 request this server reads.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string `json:"name"`
		Arguments struct {
			ID *int64 `json:"id"`
		} `json:"arguments"`
	} `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type content struct {
	Type        string `json:"type"`
	Text        string `json:"text,omitempty"`
	URI         string `json:"uri,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	MimeType    string `json:"mimeType,omitempty"`
}

type callResult struct {
	Content           []content       `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent,omitempty"`
	IsError           bool            `json:"isError,omitempty"`
}

// toolsList is the tools/list result without -tools.
var toolsList = map[string]any{"tools": []any{map[string]any{
	"name":        peerkit.ToolName,
	"description": peerkit.ToolDescription,
	"inputSchema": map[string]any{
		"type":       "object",
		"properties": map[string]any{"id": map[string]any{"type": "integer", "description": "The entry's id"}},
		"required":   []string{"id"},
	},
	"annotations": map[string]any{"readOnlyHint": true},
}}}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := h.tokens.Lookup(peerkit.BearerToken(r))
	if user == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		write(w, response{Error: &rpcError{-32700, "parse error"}})
		return
	}
	resp := response{ID: req.ID}
	switch {
	case req.Method == "tools/list":
		resp.Result = h.list
	case req.Method == "tools/call" && req.Params.Name == peerkit.ToolName && req.Params.Arguments.ID != nil:
		id := *req.Params.Arguments.ID
		e, err := h.store.GetEntry(r.Context(), user, id)
		switch {
		case errors.Is(err, peerkit.ErrNotFound):
			resp.Result = callResult{Content: []content{{Type: "text", Text: peerkit.NotFoundText(id)}}, IsError: true}
		case err != nil:
			resp.Error = &rpcError{-32603, "internal error"}
		default:
			b, err := peerkit.Structured(e)
			if err != nil {
				resp.Error = &rpcError{-32603, "internal error"}
				break
			}
			resp.Result = callResult{
				Content: []content{
					{Type: "resource_link", URI: peerkit.EntryURI(e.ID), Name: e.Title, Description: peerkit.LinkDescription(e.Title), MimeType: "application/json"},
					{Type: "text", Text: string(b)},
				},
				StructuredContent: b,
			}
		}
	case req.Method == "tools/call":
		resp.Error = &rpcError{-32602, "unknown tool or missing id"}
	default:
		resp.Error = &rpcError{-32601, "method not found"}
	}
	write(w, resp)
}

func write(w http.ResponseWriter, resp response) {
	resp.JSONRPC = "2.0"
	b, err := json.Marshal(resp)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
