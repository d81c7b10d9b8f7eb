package mcpserver

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// libraryRequest is how encoding/json reads a request body: the shape the
// fast path read with it before parseFastCall, and the way mcp-go reads it.
type libraryRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string                     `json:"name"`
		Arguments json.RawMessage            `json:"arguments"`
		Meta      map[string]json.RawMessage `json:"_meta"`
	} `json:"params"`
}

// checkSameAsLibrary fails unless encoding/json reads body as parseFastCall
// did.
func checkSameAsLibrary(t *testing.T, body []byte, c fastCall) {
	t.Helper()
	var lib libraryRequest
	if err := json.Unmarshal(body, &lib); err != nil {
		t.Fatalf("parseFastCall accepted %q, which encoding/json refuses: %v", body, err)
	}
	info, hasInfo := lib.Params.Meta[mcp.MetaKeyClientInfo]
	if c.JSONRPC != lib.JSONRPC || !bytes.Equal(c.ID, lib.ID) || c.Method != lib.Method ||
		c.Name != lib.Params.Name || !bytes.Equal(c.Arguments, lib.Params.Arguments) ||
		!bytes.Equal(c.Version, lib.Params.Meta[mcp.MetaKeyProtocolVersion]) ||
		!bytes.Equal(c.Capabilities, lib.Params.Meta[mcp.MetaKeyClientCapabilities]) ||
		!bytes.Equal(c.Info, info) || c.HasInfo != hasInfo {
		t.Fatalf("body %q:\nparseFastCall %+v\nencoding/json %+v", body, c, lib)
	}
}

var fastCallSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":3},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}}}`,
	` { "params" : { "_meta" : { "x" : [1, 2.5e-3, -0, true, false, null, "\u00e9\n"] , "io.modelcontextprotocol/protocolVersion" : "2026-07-28" } , "name" : "list_entries" } , "method" : "tools/call" , "id" : "req-1" , "jsonrpc" : "2.0" , "extra" : {"a":{}} } `,
	`{"jsonrpc":"2.0","id":-1.5E+2,"method":"tools/call","params":{"name":"whoami","arguments":null}}`,
	`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{}}`,
	`{"jsonrpc":"2.0","Method":"x","method":"tools/call"}`,
	`{"jsonrpc":"2.0","method":"tools/call","method":"x"}`,
	`{"jsonrpc":"2.0","\u006dethod":"x","method":"tools/call"}`,
	`{"jsonrpc":"2.0","jſonrpc":"1.0"}`,
	`{"jsonrpc":"2.0","params":{"_meta":{"io.modelcontextprotocol/clientInfo":1,"io.modelcontextprotocol/clientInfo":2}}}`,
	`{"jsonrpc":"2.0"} x`,
	`{"jsonrpc":"2.0","id":01}`,
	`{"a":"` + "\x01" + `"}`,
	`[{"jsonrpc":"2.0"}]`,
}

func TestParseFastCall(t *testing.T) {
	accepted := map[string]bool{
		fastCallSeeds[0]: true, fastCallSeeds[1]: true, fastCallSeeds[2]: true, fastCallSeeds[3]: true,
	}
	for _, s := range fastCallSeeds {
		c, ok := parseFastCall([]byte(s))
		if ok != accepted[s] {
			t.Errorf("parseFastCall(%s) ok = %v, want %v", s, ok, accepted[s])
		}
		if ok {
			checkSameAsLibrary(t, []byte(s), c)
		}
	}
	c, _ := parseFastCall([]byte(fastCallSeeds[0]))
	if c.Name != "get_entry" || string(c.Arguments) != `{"id":3}` || string(c.Version) != `"2026-07-28"` || !c.HasInfo {
		t.Errorf("parseFastCall read %+v", c)
	}
}

// FuzzParseFastCall: every body parseFastCall accepts, encoding/json reads
// the same way, so the fast path never serves a request mcp-go would read
// differently.
func FuzzParseFastCall(f *testing.F) {
	for _, s := range fastCallSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, ok := parseFastCall(body)
		if ok {
			checkSameAsLibrary(t, body, c)
		}
	})
}
