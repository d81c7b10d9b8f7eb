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
)

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

func readString(m map[string]json.RawMessage, key, what string) (string, bool, error) {
	raw, ok := m[key]
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, badMessage(what + "." + key + " is not a string")
	}
	return s, true, nil
}

func readMessage(data []byte) (Operation, error) {
	var op Operation
	m, err := readObject(data, messageKeys, "message")
	if err != nil {
		return op, err
	}
	method, hasMethod, err := readString(m, "method", "message")
	if err != nil {
		return op, err
	}
	if id, ok := m["id"]; ok && string(id) != "null" {
		op.ID = id
	}
	if !hasMethod {
		if _, ok := m["result"]; ok {
			return op, nil
		}
		if _, ok := m["error"]; ok {
			return op, nil
		}
		return op, badMessage("message has neither method nor result nor error")
	}
	if method == "" {
		return op, badMessage("message.method is empty")
	}
	op.Method = method
	var params map[string]json.RawMessage
	if raw, ok := m["params"]; ok && string(raw) != "null" {
		if params, err = readObject(raw, paramKeys, "params"); err != nil {
			return op, err
		}
	}
	switch method {
	case "tools/call", "prompts/get":
		op.Name, _, err = readString(params, "name", "params")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		op.Name, _, err = readString(params, "uri", "params")
	case "completion/complete":
		raw, ok := params["ref"]
		if !ok {
			break
		}
		ref, err := readObject(raw, refKeys, "params.ref")
		if err != nil {
			return op, err
		}
		typ, _, err := readString(ref, "type", "params.ref")
		if err != nil {
			return op, err
		}
		switch typ {
		case "ref/prompt":
			name, _, err := readString(ref, "name", "params.ref")
			if err != nil {
				return op, err
			}
			op.Name = "prompt:" + name
		case "ref/resource":
			uri, _, err := readString(ref, "uri", "params.ref")
			if err != nil {
				return op, err
			}
			op.Name = "resource:" + uri
		}
	}
	return op, err
}
