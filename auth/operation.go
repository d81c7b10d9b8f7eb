package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// Operation is what one JSON-RPC message of an MCP request asks for.
type Operation struct {
	// Method is the JSON-RPC method ("" for a response to a server request).
	Method string
	// Name is the tool or prompt name (tools/call, prompts/get), the resource
	// URI (resources/read, resources/subscribe, resources/unsubscribe), or,
	// for completion/complete, "prompt:<name>" or "resource:<uri template>".
	Name string
	// ID is the raw JSON-RPC id (nil for notifications and responses).
	ID json.RawMessage
}

// String renders the operation for logs: "tools/call create_entry".
func (o Operation) String() string {
	switch {
	case o.Method == "":
		return "response"
	case o.Name == "":
		return o.Method
	default:
		return o.Method + " " + o.Name
	}
}

// ErrBadMessage wraps every error of [ReadOperations]: the body is not a
// JSON-RPC message or batch the middleware can judge, so it is refused
// rather than passed on unchecked.
var ErrBadMessage = errors.New("unreadable JSON-RPC message")

// ReadOperations reads the operations a JSON-RPC request body asks for: one
// for a single message, one per element for a batch (JSON-RPC 2.0 §6).
//
// Member names are matched exactly, as the JSON-RPC and MCP schemas spell
// them. Because some Go JSON decoders match names case-insensitively and
// others do not, a message that has a member differing from a meaningful one
// only in case ("Method", "NAME") is refused: two MCP libraries must never
// read two different operations from the same bytes.
func ReadOperations(body []byte) ([]Operation, error) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return nil, badMessage("empty body")
	}
	if body[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, badMessage("the batch is not a JSON array of messages")
		}
		if len(raw) == 0 {
			return nil, badMessage("empty batch")
		}
		ops := make([]Operation, 0, len(raw))
		for _, m := range raw {
			op, err := readMessage(m)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		return ops, nil
	}
	op, err := readMessage(body)
	if err != nil {
		return nil, err
	}
	return []Operation{op}, nil
}

func badMessage(reason string) error {
	return &messageError{reason}
}

type messageError struct{ reason string }

func (e *messageError) Error() string        { return "unreadable JSON-RPC message: " + e.reason }
func (e *messageError) Is(target error) bool { return target == ErrBadMessage }

var (
	messageKeys = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramKeys   = []string{"name", "uri", "ref"}
	refKeys     = []string{"type", "name", "uri"}
	// allKeys are every member name whose case variants are refused.
	allKeys = []string{"jsonrpc", "id", "method", "params", "result", "error", "name", "uri", "ref", "type"}
)

// mayHaveCaseVariants is a fast, conservative test: false means no member
// name in data can be a case variant of one in allKeys, so the careful
// check can be skipped. Go's encoding/json also folds 'ſ' (U+017F) to 's'
// and the Kelvin sign (U+212A) to 'k', hence the two byte sequences.
func mayHaveCaseVariants(data []byte) bool {
	if bytes.Contains(data, []byte("\xc5\xbf")) || bytes.Contains(data, []byte("\xe2\x84\xaa")) || bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	for i := bytes.IndexByte(data, '"'); i >= 0 && i < len(data); {
		rest := data[i+1:]
		for _, k := range allKeys {
			n := len(k)
			if len(rest) > n && rest[n] == '"' && string(rest[:n]) != k && strings.EqualFold(string(rest[:n]), k) {
				return true
			}
		}
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// checkCaseVariants decodes the message, its params and params.ref into
// maps and refuses member names that collide, case-insensitively, with a
// meaningful one without being equal to it.
func checkCaseVariants(data []byte) error {
	m, err := readObject(data, messageKeys, "message")
	if err != nil {
		return err
	}
	raw, ok := m["params"]
	if !ok || string(raw) == "null" {
		return nil
	}
	p, err := readObject(raw, paramKeys, "params")
	if err != nil {
		return err
	}
	if ref, ok := p["ref"]; ok && string(ref) != "null" {
		if _, err := readObject(ref, refKeys, "params.ref"); err != nil {
			return err
		}
	}
	return nil
}

// readObject decodes an object into its members and refuses names that
// collide, case-insensitively, with one of keys without being equal to it.
func readObject(data []byte, keys []string, what string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, badMessage(what + " is not a JSON object")
	}
	for k := range m {
		for _, want := range keys {
			if k != want && strings.EqualFold(k, want) {
				return nil, badMessage(what + " has a member " + k + " that differs from " + want + " only in case")
			}
		}
	}
	return m, nil
}

// wireMessage is decoded the way Go MCP libraries decode (encoding/json
// into structs); case variants were refused before, so a case-sensitive
// decoder would read the same.
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params *struct {
		Name json.RawMessage `json:"name"`
		URI  json.RawMessage `json:"uri"`
		Ref  *struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
	} `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func rawString(raw json.RawMessage, what string) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badMessage(what + " is not a string")
	}
	return s, nil
}

func readMessage(data []byte) (Operation, error) {
	var op Operation
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return op, badMessage("message is not a JSON object")
	}
	if mayHaveCaseVariants(data) {
		if err := checkCaseVariants(data); err != nil {
			return op, err
		}
	}
	var m wireMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return op, badMessage("message does not follow JSON-RPC 2.0: " + err.Error())
	}
	if len(m.ID) > 0 && string(m.ID) != "null" {
		op.ID = m.ID
	}
	if m.Method == nil {
		if len(m.Result) > 0 || len(m.Error) > 0 {
			return op, nil
		}
		return op, badMessage("message has neither method nor result nor error")
	}
	if *m.Method == "" {
		return op, badMessage("message.method is empty")
	}
	op.Method = *m.Method
	if m.Params == nil {
		return op, nil
	}
	var err error
	switch op.Method {
	case "tools/call", "prompts/get":
		op.Name, err = rawString(m.Params.Name, "params.name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		op.Name, err = rawString(m.Params.URI, "params.uri")
	case "completion/complete":
		if ref := m.Params.Ref; ref != nil {
			switch ref.Type {
			case "ref/prompt":
				op.Name = "prompt:" + ref.Name
			case "ref/resource":
				op.Name = "resource:" + ref.URI
			}
		}
	}
	return op, err
}
