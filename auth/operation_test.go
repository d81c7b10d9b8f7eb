package auth_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/epicme/epicme/auth"
)

// libraryRequest is how encoding/json, and so mcp-go, reads a request.
type libraryRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string                     `json:"name"`
		URI       string                     `json:"uri"`
		Arguments json.RawMessage            `json:"arguments"`
		Meta      map[string]json.RawMessage `json:"_meta"`
	} `json:"params"`
}

// checkSameAsLibrary fails unless encoding/json reads the single message
// body as ReadOperations did.
func checkSameAsLibrary(t *testing.T, body []byte, op auth.Operation) {
	t.Helper()
	var lib libraryRequest
	if err := json.Unmarshal(body, &lib); err != nil {
		t.Fatalf("ReadOperations accepted %q, which encoding/json refuses: %v", body, err)
	}
	if string(lib.ID) == "null" {
		lib.ID = nil
	}
	name := ""
	switch lib.Method {
	case "tools/call", "prompts/get":
		name = lib.Params.Name
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		name = lib.Params.URI
	}
	m := lib.Params.Meta
	if op.JSONRPC != lib.JSONRPC || !bytes.Equal(op.ID, lib.ID) || op.Method != lib.Method ||
		op.Name != name || !bytes.Equal(op.Arguments, lib.Params.Arguments) ||
		!bytes.Equal(op.ProtocolVersion, m["io.modelcontextprotocol/protocolVersion"]) ||
		!bytes.Equal(op.ClientCapabilities, m["io.modelcontextprotocol/clientCapabilities"]) ||
		!bytes.Equal(op.ClientInfo, m["io.modelcontextprotocol/clientInfo"]) {
		t.Fatalf("body %q:\nReadOperations %+v\nencoding/json  %+v", body, op, lib)
	}
}

var readSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":3},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}}}`,
	` { "params" : { "_meta" : { "x" : [1, 2.5e-3, -0, true, false, null, "\u00e9\n"] , "io.modelcontextprotocol/protocolVersion" : "2026-07-28" } , "name" : "list_entries" } , "method" : "tools/call" , "id" : "req-1" , "jsonrpc" : "2.0" , "extra" : {"a":{}} } `,
	`{"jsonrpc":"2.0","id":-1.5E+2,"method":"tools/call","params":{"name":"whoami","arguments":null}}`,
	`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"caf\u00e9"}}`,
	`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"epicme://entries/\u0031"}}`,
	`{"jsonrpc":"2.0","Method":"x","method":"tools/call"}`,
	`{"jsonrpc":"2.0","method":"tools/call","method":"x"}`,
	`{"jsonrpc":"2.0","\u006dethod":"x","method":"tools/call"}`,
	`{"jsonrpc":"2.0","jſonrpc":"1.0","method":"ping"}`,
	`{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/clientInfo":1,"io.modelcontextprotocol/clientInfo":2}}}`,
	`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a\ud800"}}`,
	`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a` + "\xff" + `"}}`,
	`{"jsonrpc":"2.0","method":"ping"} x`,
	`{"jsonrpc":"2.0","id":01,"method":"ping"}`,
	`{"a":"` + "\x01" + `"}`,
	`[{"jsonrpc":"2.0"}]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_entry","arguments":{"id":1,"id":2}}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"},1]`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"a":1,"a":2}}}`,
}

func TestReadOperations_SameAsLibraryOrRefused(t *testing.T) {
	accepted := map[string]bool{readSeeds[0]: true, readSeeds[1]: true, readSeeds[2]: true, readSeeds[3]: true, readSeeds[4]: true, readSeeds[5]: true}
	for _, s := range readSeeds {
		ops, err := auth.ReadOperations([]byte(s))
		if (err == nil) != accepted[s] {
			t.Errorf("ReadOperations(%s) err = %v, want accepted %v", s, err, accepted[s])
		}
		if err == nil {
			checkSameAsLibrary(t, []byte(s), ops[0])
		}
	}
	ops, _ := auth.ReadOperations([]byte(readSeeds[0]))
	if op := ops[0]; op.Name != "get_entry" || string(op.Arguments) != `{"id":3}` || string(op.ProtocolVersion) != `"2026-07-28"` || op.ClientInfo == nil {
		t.Errorf("ReadOperations read %+v", op)
	}
}

func TestReadBody_BatchElementsKeepTheirBytes(t *testing.T) {
	b := auth.ReadBody([]byte(` [ {"jsonrpc":"2.0","id":1,"method":"ping"} , {"jsonrpc":"2.0","id":2,"result":{"x":1}} ] `))
	if b.Err != nil || !b.Batch || len(b.Ops) != 2 {
		t.Fatalf("%+v", b)
	}
	if string(b.Ops[0].Message) != `{"jsonrpc":"2.0","id":1,"method":"ping"}` || !b.Ops[1].IsResponse() || b.Ops[0].IsResponse() {
		t.Fatalf("%+v", b.Ops)
	}
}

// FuzzReadOperationsSameAsLibrary: every single message ReadOperations
// accepts, encoding/json (and so mcp-go) reads the same way, so no layer
// after the one parse can act on a different request.
func FuzzReadOperationsSameAsLibrary(f *testing.F) {
	for _, s := range readSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := auth.ReadBody(body)
		if b.Err == nil && !b.Batch {
			checkSameAsLibrary(t, body, b.Ops[0])
		}
	})
}

// TestReadOperations_ValuesAreSlicesOfTheBody: what ReadOperations returns
// points into the body it was given, so a decoder reused from the pool for
// the next body cannot change it (jsontext documents a read value as valid
// only until the next read; it parses a *bytes.Buffer in place).
func TestReadOperations_ValuesAreSlicesOfTheBody(t *testing.T) {
	body := []byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_entry","arguments":{"id":7}}},{"jsonrpc":"2.0","id":2,"result":{"ok":true}}]`)
	ops, err := auth.ReadOperations(body)
	if err != nil {
		t.Fatal(err)
	}
	// Writing into the body shows through every value read from it.
	body[bytes.IndexByte(body, '7')] = '8'
	body[bytes.Index(body, []byte("true"))] = 'T'
	if string(ops[0].Arguments) != `{"id":8}` || !bytes.Contains(ops[0].Message, []byte(`{"id":8}`)) ||
		string(ops[1].Result) != `{"ok":True}` || !bytes.Contains(ops[1].Message, []byte("True")) {
		t.Fatalf("not slices of the body: %+v", ops)
	}
	for range 100 {
		auth.ReadOperations([]byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"x","arguments":{"id":99999}}}`))
	}
	if string(ops[0].Arguments) != `{"id":8}` || string(ops[1].Result) != `{"ok":True}` || ops[0].Name != "get_entry" {
		t.Fatalf("changed after later reads: %+v", ops)
	}
}
