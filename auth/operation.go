package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
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
// No object of the body may give a member name twice
// (`{"method":"tools/list","method":"tools/call"}`: encoding/json keeps
// the last, others the first; RFC 7493 §2.3). The method, name and URI
// must be valid UTF-8 without lone surrogate escapes (elsewhere, in the
// arguments, the tool's own check names the argument). Member names are
// matched exactly, as the JSON-RPC and MCP schemas spell them; a message
// that two decoders could still read as two operations is refused: a
// member differing from a meaningful one only in case ("Method", "NAME";
// Go's encoding/json matches it, others do not) and an escaped member
// name spelling one.
func ReadOperations(body []byte) ([]Operation, error) {
	dec := decoders.Get().(*jsontext.Decoder)
	defer func() {
		dec.Reset(noBody) // the pool must not keep the body alive
		decoders.Put(dec)
	}()
	// Invalid UTF-8 is refused where it would name the operation (see
	// optionalString); inside arguments the tool's own check names the
	// argument, which helps the client more than a parse error.
	//
	// The values read are kept after the next read, which jsontext
	// allows only because a *bytes.Buffer is parsed in place: they are
	// slices of body itself (TestReadOperations_ValuesAreSlicesOfTheBody).
	dec.Reset(bytes.NewBuffer(body), jsontext.AllowInvalidUTF8(true))
	var ops []Operation
	if dec.PeekKind() == '[' {
		dec.ReadToken()
		for dec.PeekKind() != ']' {
			if dec.PeekKind() != '{' {
				return nil, badMessage("the batch is not a JSON array of messages")
			}
			op, err := readMessage(dec, body)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			return nil, badMessage("empty batch")
		}
		dec.ReadToken()
	} else {
		// readMessage refuses what is not an object, as members does.
		op, err := readMessage(dec, body)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, badMessage("data after the message")
	}
	return ops, nil
}

// decoders are reused: a decoder keeps the buffers with which it checks
// that no object repeats a member name.
var decoders = sync.Pool{New: func() any { return jsontext.NewDecoder(noBody) }}

// noBody is what an idle decoder reads: nothing, and it is never read.
var noBody = bytes.NewReader(nil)

func badMessage(reason string) error {
	return &messageError{reason}
}

// syntaxError reports what the decoder refused, without its Go package name.
func syntaxError(err error) error {
	if errors.Is(err, ErrBadMessage) {
		return err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return badMessage("empty or truncated body")
	}
	return badMessage(strings.TrimPrefix(err.Error(), "jsontext: "))
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

// readMessage reads one JSON-RPC message at dec.
func readMessage(dec *jsontext.Decoder, body []byte) (Operation, error) {
	var op Operation
	start := int(dec.InputOffset())
	start += len(body[start:]) - len(bytes.TrimLeft(body[start:], " \t\r\n,"))
	// The values of the message's, params', params.ref's and
	// params._meta's members, read in one walk; what they mean depends on
	// the method, which may come last.
	var v struct{ m, p, ref, meta [6]jsontext.Value }
	err := members(dec, "message", messageKeys, func(i int) error {
		if i != 3 || dec.PeekKind() == 'n' {
			return readValue(dec, v.m[:], i)
		}
		return members(dec, "params", paramKeys, func(i int) error {
			switch {
			case i == 3 && dec.PeekKind() == '{':
				return members(dec, "params.ref", refKeys, func(i int) error { return readValue(dec, v.ref[:], i) })
			case i == 4:
				return members(dec, "params._meta", metaKeys, func(i int) error { return readValue(dec, v.meta[:], i) })
			}
			return readValue(dec, v.p[:], i)
		})
	})
	if err != nil {
		return op, err
	}
	op.Message = body[start:dec.InputOffset()]
	op.Result, op.Error, op.Arguments = raw(v.m[4]), raw(v.m[5]), raw(v.p[2])
	op.ProtocolVersion, op.ClientCapabilities, op.ClientInfo = raw(v.meta[0]), raw(v.meta[1]), raw(v.meta[2])
	if op.JSONRPC, err = optionalString(v.m[0], "message.jsonrpc"); err != nil {
		return op, err
	}
	if string(v.m[1]) != "null" {
		op.ID = raw(v.m[1])
	}
	if v.m[2] == nil {
		if op.Result != nil || op.Error != nil {
			return op, nil
		}
		return op, badMessage("message has neither method nor result nor error")
	}
	if op.Method, err = optionalString(v.m[2], "message.method"); err != nil {
		return op, err
	}
	if op.Method == "" {
		return op, badMessage("message.method is empty")
	}
	op.Name, err = op.name(v.p[0], v.p[1], v.ref[:])
	return op, err
}

// name is what the method names: the tool or prompt, the resource URI, or
// the completion's reference.
func (op *Operation) name(name, uri jsontext.Value, ref []jsontext.Value) (string, error) {
	switch op.Method {
	case "tools/call", "prompts/get":
		return optionalString(name, "params.name")
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return optionalString(uri, "params.uri")
	case "completion/complete":
		t, err := optionalString(ref[0], "params.ref.type")
		switch {
		case err != nil:
			return "", err
		case t == "ref/prompt":
			n, err := optionalString(ref[1], "params.ref.name")
			return "prompt:" + n, err
		case t == "ref/resource":
			u, err := optionalString(ref[2], "params.ref.uri")
			return "resource:" + u, err
		}
	}
	return "", nil
}

// readValue reads the value at dec into v[i].
func readValue(dec *jsontext.Decoder, v []jsontext.Value, i int) (err error) {
	v[i], err = dec.ReadValue()
	return err
}

// members reads the object at dec whose known member names are keys, as a
// JSON decoder would fill a struct with those fields: read(i) consumes the
// value of keys[i]; other members are skipped (the decoder validates them).
// It refuses what two decoders could read differently: a name equal to a
// known one but for case (encoding/json matches it, exact decoders do not),
// and an escaped name that spells or folds to a known one. A name given
// twice the decoder refuses itself.
func members(dec *jsontext.Decoder, what string, keys []string, read func(i int) error) error {
	if k := dec.PeekKind(); k != '{' {
		if k == 0 {
			_, err := dec.ReadToken()
			return syntaxError(err)
		}
		return badMessage(what + " is not a JSON object")
	}
	dec.ReadToken()
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return syntaxError(err)
		}
		i, folds := lookup(keys, name)
		switch {
		case folds && bytes.IndexByte(name, '\\') >= 0:
			return badMessage(what + " has an escaped member name that spells " + keys[i])
		case folds && string(name[1:len(name)-1]) != keys[i]:
			return badMessage(what + " has a member " + string(name) + " that differs from a known one only in case")
		case folds:
			err = read(i)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return syntaxError(err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return syntaxError(err)
	}
	return nil
}

// lookup finds the key that the quoted member name equals when case is
// ignored, as encoding/json would match it.
func lookup(keys []string, quoted jsontext.Value) (int, bool) {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name, _ = jsontext.AppendUnquote(nil, quoted)
	}
	for i, k := range keys {
		if bytes.EqualFold(name, []byte(k)) {
			return i, true
		}
	}
	return 0, false
}

// optionalString reads a JSON string ("" when absent) of valid UTF-8:
// encoding/json would turn invalid bytes or a lone surrogate escape into
// U+FFFD, so two readers could see two names.
func optionalString(v jsontext.Value, what string) (string, error) {
	if v == nil {
		return "", nil
	}
	if v.Kind() != '"' {
		return "", badMessage(what + " is not a string")
	}
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1]), nil
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil || bytes.ContainsRune(s, utf8.RuneError) {
		return "", badMessage(what + " is not a string of valid UTF-8")
	}
	return string(s), nil
}

// raw is v as a json.RawMessage, nil when absent.
func raw(v jsontext.Value) json.RawMessage {
	if v == nil {
		return nil
	}
	return json.RawMessage(v)
}
