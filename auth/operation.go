package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
)

// Operation is one JSON-RPC message of an MCP request body, read once: what
// it asks for, and the parts of it the layers after authentication need
// (the MCP handler reads them from the context, see [BodyFromContext],
// rather than decoding the body again).
type Operation struct {
	// JSONRPC is the jsonrpc member ("2.0").
	JSONRPC string
	// Method is the JSON-RPC method ("" for a response to a server request).
	Method string
	// Name is the tool or prompt name (tools/call, prompts/get), the resource
	// URI (resources/read, resources/subscribe, resources/unsubscribe), or,
	// for completion/complete, "prompt:<name>" or "resource:<uri template>".
	Name string
	// ID is the raw JSON-RPC id (nil for notifications and for a null id).
	ID json.RawMessage
	// Arguments is params.arguments as sent (tools/call, prompts/get).
	Arguments json.RawMessage
	// Result and Error are the members of a response to a server request.
	Result, Error json.RawMessage
	// ProtocolVersion, ClientCapabilities and ClientInfo are the raw values
	// of the params._meta members MCP 2026-07-28 puts on every request
	// (basic/lifecycle), nil when absent.
	ProtocolVersion, ClientCapabilities, ClientInfo json.RawMessage
	// Message is the message's own bytes (one element of a batch).
	Message json.RawMessage
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

// IsResponse reports whether the message answers a server request: no
// method, an id, and a result or an error (JSON-RPC 2.0 §5).
func (o Operation) IsResponse() bool {
	return o.Method == "" && o.ID != nil && (o.Result != nil || o.Error != nil)
}

// Body is a JSON-RPC request body read once: its bytes and its messages.
type Body struct {
	// Raw is the body as received.
	Raw []byte
	// Batch is true for a JSON array of messages (JSON-RPC 2.0 §6), which
	// only MCP 2025-03-26 allows.
	Batch bool
	// Ops are the messages, one for a body that is not a batch.
	Ops []Operation
	// Err is why the body could not be read as JSON-RPC (wrapping
	// [ErrBadMessage]); Ops is empty then.
	Err error
}

type bodyKey struct{}

// ContextWithBody returns ctx carrying b.
func ContextWithBody(ctx context.Context, b *Body) context.Context {
	return context.WithValue(ctx, bodyKey{}, b)
}

// BodyFromContext returns the body read by [ResourceServer.Protect] (or
// put there by [ContextWithBody]), nil if none.
func BodyFromContext(ctx context.Context) *Body {
	b, _ := ctx.Value(bodyKey{}).(*Body)
	return b
}

// ReadBody reads a request body that has been read into memory.
func ReadBody(raw []byte) *Body {
	b := &Body{Raw: raw}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	b.Batch = len(trimmed) > 0 && trimmed[0] == '['
	b.Ops, b.Err = ReadOperations(raw)
	return b
}

// ErrBadMessage wraps every error of [ReadOperations]: the body is not a
// JSON-RPC message or batch the middleware can judge, so it is refused
// rather than passed on unchecked.
var ErrBadMessage = errors.New("unreadable JSON-RPC message")

// ReadOperations reads the operations a JSON-RPC request body asks for: one
// for a single message, one per element for a batch (JSON-RPC 2.0 §6), in
// one pass over the bytes.
//
// Member names are matched exactly, as the JSON-RPC and MCP schemas spell
// them. Because JSON decoders differ on the rest, a message that two of
// them could read as two different operations is refused: a member
// differing from a meaningful one only in case ("Method", "NAME"; Go's
// encoding/json matches it, others do not), a meaningful member given
// twice (`{"method":"tools/list","method":"tools/call"}`: encoding/json
// keeps the last, others the first), an escaped member name spelling a
// meaningful one, and invalid UTF-8 or a lone surrogate in a method, name
// or URI.
func ReadOperations(body []byte) ([]Operation, error) {
	p := jsonScanner{b: body}
	p.space()
	if p.i >= len(p.b) {
		return nil, badMessage("empty body")
	}
	var ops []Operation
	if p.b[p.i] == '[' {
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			return nil, badMessage("empty batch")
		}
		for {
			p.space()
			op, err := p.message()
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
			p.space()
			if p.i < len(p.b) && p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				break
			}
			return nil, badMessage("the batch is not a JSON array of messages")
		}
	} else {
		op, err := p.message()
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	p.space()
	if p.i != len(p.b) {
		return nil, badMessage("data after the message")
	}
	return ops, nil
}

func badMessage(reason string) error {
	return &messageError{reason}
}

type messageError struct{ reason string }

func (e *messageError) Error() string        { return "unreadable JSON-RPC message: " + e.reason }
func (e *messageError) Is(target error) bool { return target == ErrBadMessage }

var (
	messageKeys = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramKeys   = []string{"name", "uri", "arguments", "ref", "_meta"}
	refKeys     = []string{"type", "name", "uri"}
	// metaKeys are the _meta members of MCP 2026-07-28 basic/lifecycle.
	metaKeys = []string{"io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities", "io.modelcontextprotocol/clientInfo"}
)

// message reads one JSON-RPC message at the scanner.
func (p *jsonScanner) message() (Operation, error) {
	var op Operation
	start := p.i
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return op, badMessage("message is not a JSON object")
	}
	var params, method, id json.RawMessage
	p.why = ""
	ok := p.members("message", messageKeys, func(i int) bool {
		switch i {
		case 0:
			var ok bool
			if op.JSONRPC, ok = p.text(); !ok {
				p.why = "message.jsonrpc is not a string"
				return false
			}
			return true
		case 1:
			id = p.value()
			return id != nil
		case 2:
			method = p.value()
			return method != nil
		case 3:
			params = p.value()
			return params != nil
		case 4:
			op.Result = p.value()
			return op.Result != nil
		default:
			op.Error = p.value()
			return op.Error != nil
		}
	})
	if !ok {
		return op, badMessage(p.why)
	}
	op.Message = p.b[start:p.i]
	if string(id) != "null" {
		op.ID = id
	}
	if method == nil {
		if op.Result != nil || op.Error != nil {
			return op, nil
		}
		return op, badMessage("message has neither method nor result nor error")
	}
	var err error
	if op.Method, err = stringValue(method, "message.method"); err != nil {
		return op, err
	}
	if op.Method == "" {
		return op, badMessage("message.method is empty")
	}
	if params == nil || string(params) == "null" {
		return op, nil
	}
	return op, op.readParams(params)
}

// readParams reads the members of params that name what is asked for.
func (op *Operation) readParams(params json.RawMessage) error {
	q := jsonScanner{b: params}
	var name, uri, ref json.RawMessage
	ok := q.members("params", paramKeys, func(i int) bool {
		v := q.value()
		switch i {
		case 0:
			name = v
		case 1:
			uri = v
		case 2:
			op.Arguments = v
		case 3:
			ref = v
		default:
			return v != nil && op.readMeta(v)
		}
		return v != nil
	})
	if !ok {
		return badMessage(q.why)
	}
	var err error
	switch op.Method {
	case "tools/call", "prompts/get":
		op.Name, err = optionalString(name, "params.name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		op.Name, err = optionalString(uri, "params.uri")
	case "completion/complete":
		if ref != nil && string(ref) != "null" {
			err = op.readRef(ref)
		}
	}
	return err
}

func (op *Operation) readRef(ref json.RawMessage) error {
	q := jsonScanner{b: ref}
	var typ, name, uri json.RawMessage
	ok := q.members("params.ref", refKeys, func(i int) bool {
		v := q.value()
		switch i {
		case 0:
			typ = v
		case 1:
			name = v
		default:
			uri = v
		}
		return v != nil
	})
	if !ok {
		return badMessage(q.why)
	}
	t, err := optionalString(typ, "params.ref.type")
	if err != nil {
		return err
	}
	switch t {
	case "ref/prompt":
		n, err := optionalString(name, "params.ref.name")
		op.Name = "prompt:" + n
		return err
	case "ref/resource":
		u, err := optionalString(uri, "params.ref.uri")
		op.Name = "resource:" + u
		return err
	}
	return nil
}

// readMeta reads the _meta members of MCP 2026-07-28. A library keeps
// _meta in a map, so names match exactly; a repeated one, an escaped one,
// or one differing only in case is refused all the same.
func (op *Operation) readMeta(meta json.RawMessage) bool {
	q := jsonScanner{b: meta}
	return q.members("params._meta", metaKeys, func(i int) bool {
		v := q.value()
		switch i {
		case 0:
			op.ProtocolVersion = v
		case 1:
			op.ClientCapabilities = v
		default:
			op.ClientInfo = v
		}
		return v != nil
	})
}

func stringValue(raw json.RawMessage, what string) (string, error) {
	q := jsonScanner{b: raw}
	s, ok := q.text()
	if !ok {
		return "", badMessage(what + " is not a string of valid UTF-8")
	}
	return s, nil
}

func optionalString(raw json.RawMessage, what string) (string, error) {
	if raw == nil {
		return "", nil
	}
	return stringValue(raw, what)
}
