package auth_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/epicme/epicme/auth"
)

// FuzzParseAuthorization: the parser never panics, and whatever it accepts
// is one RFC 6750 b64token that round-trips through "Bearer <token>".
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Basic dXNlcg==", "Bearer", "Bearer  x==", "Bearer a b", "Bearer a,b", "", "Bearer =", "DPoP x"} {
		f.Add(s, false)
	}
	f.Add("Bearer abc", true)
	f.Fuzz(func(t *testing.T, h string, twice bool) {
		values := []string{h}
		if twice {
			values = append(values, h)
		}
		tok, err := auth.ParseAuthorization(values)
		if err != nil {
			if tok != "" {
				t.Fatalf("token %q returned with error %v", tok, err)
			}
			return
		}
		if twice {
			t.Fatal("two headers accepted")
		}
		if tok == "" || strings.ContainsAny(tok, " \t\",\\") {
			t.Fatalf("accepted token %q from %q", tok, h)
		}
		again, err := auth.ParseAuthorization([]string{"Bearer " + tok})
		if err != nil || again != tok {
			t.Fatalf("%q does not round-trip: %q %v", tok, again, err)
		}
	})
}

// FuzzChallenge: whatever goes into a challenge, the header value is
// printable ASCII, holds one Bearer challenge, and parses back to the
// sanitised input.
func FuzzChallenge(f *testing.F) {
	f.Add("EpicMe", "https://h/.well-known/oauth-protected-resource/mcp", "entries:read tags:read", "invalid_token", "The access token has expired")
	f.Add(`a"b`, `x\y`, "\t\n", "é", "\x00\x7f")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, realm, rm, scope, code, desc string) {
		c := auth.Challenge{Realm: realm, ResourceMetadata: rm, Scope: scope, Error: code, ErrorDescription: desc}
		s := c.String()
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				t.Fatalf("byte %#x in %q", s[i], s)
			}
		}
		back, err := parseChallenge(s)
		if err != nil {
			t.Fatalf("%q does not parse: %v", s, err)
		}
		if back != c.Sanitized() {
			t.Fatalf("%q parsed to %+v, want %+v", s, back, c.Sanitized())
		}
		if strings.Contains(s, `scope=""`) {
			t.Fatalf("empty scope in %q", s)
		}
	})
}

// FuzzReadOperations: the reader never panics, and when it accepts a single
// message it reads the same method and name as the case-insensitive
// encoding/json struct decoding MCP libraries use.
func FuzzReadOperations(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entry","arguments":{}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"epicme://entries/1"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}`,
		`{"jsonrpc":"2.0","id":4,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"NAME":"x"}}`,
		`[]`, `{}`, `null`, `[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := auth.ReadOperations(body)
		if err != nil {
			return
		}
		if len(ops) == 0 {
			t.Fatal("accepted with no operations")
		}
		if strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "[") {
			return
		}
		var lib struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
				URI  string `json:"uri"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &lib) != nil {
			return
		}
		op := ops[0]
		if lib.Method != op.Method {
			t.Fatalf("method %q, a library reads %q", op.Method, lib.Method)
		}
		switch op.Method {
		case "tools/call", "prompts/get":
			if lib.Params.Name != op.Name {
				t.Fatalf("name %q, a library reads %q", op.Name, lib.Params.Name)
			}
		case "resources/read":
			if lib.Params.URI != op.Name {
				t.Fatalf("uri %q, a library reads %q", op.Name, lib.Params.URI)
			}
		}
	})
}
