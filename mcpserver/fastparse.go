package mcpserver

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

// fastCall is what the fast path reads of a request body: a JSON-RPC 2.0
// request (JSON-RPC 2.0 §4) for tools/call (MCP server/tools), with the
// _meta entries of MCP 2026-07-28 basic/lifecycle that it checks.
type fastCall struct {
	JSONRPC   string
	ID        json.RawMessage
	Method    string
	Name      string
	Arguments json.RawMessage
	// Version, Capabilities and Info are the raw values of the _meta keys
	// mcp.MetaKeyProtocolVersion, mcp.MetaKeyClientCapabilities and
	// mcp.MetaKeyClientInfo; HasInfo says whether the last was present.
	Version      json.RawMessage
	Capabilities json.RawMessage
	Info         json.RawMessage
	HasInfo      bool
}

// parseFastCall reads body (RFC 8259) into a fastCall in one pass, without
// reflection. It is strict where encoding/json is lenient and reports false
// whenever the two could read the body differently: a key of the request
// or of params that matches a known one only when case is ignored, a
// repeated key, an escape in a key or in the jsonrpc, method or name
// strings, nesting deeper than maxFastDepth, or anything that is not one
// JSON value. A body it refuses goes to mcp-go, which answers it as it
// always does; FuzzParseFastCall holds every accepted body to what
// encoding/json reads.
func parseFastCall(body []byte) (fastCall, bool) {
	var c fastCall
	p := jsonScanner{b: body}
	ok := p.members([]string{"jsonrpc", "id", "method", "params"}, func(i int) bool {
		switch i {
		case 0:
			c.JSONRPC, _ = p.plainString()
			return c.JSONRPC != ""
		case 1:
			c.ID = p.value()
			return c.ID != nil
		case 2:
			c.Method, _ = p.plainString()
			return c.Method != ""
		default:
			return c.params(&p)
		}
	})
	if !ok {
		return fastCall{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return fastCall{}, false
	}
	return c, true
}

func (c *fastCall) params(p *jsonScanner) bool {
	return p.members([]string{"name", "arguments", "_meta"}, func(i int) bool {
		switch i {
		case 0:
			c.Name, _ = p.plainString()
			return c.Name != ""
		case 1:
			c.Arguments = p.value()
			return c.Arguments != nil
		default:
			return c.meta(p)
		}
	})
}

// members reads an object whose known member names are keys, as
// encoding/json would fill a struct with those fields: read(i) consumes
// the value of keys[i]; other members are skipped. It refuses what
// encoding/json could read differently from an exact, case-sensitive
// reader: an escaped name (it could spell a known one), a name equal to a
// known one but for case, and a known name given twice.
func (p *jsonScanner) members(keys []string, read func(i int) bool) bool {
	var seen uint64
	return p.object(func(key []byte, escaped bool) bool {
		if escaped {
			return false
		}
		for i, k := range keys {
			if string(key) == k {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				return read(i)
			}
		}
		return p.skipValue(0) && !foldsToAny(key, keys...)
	})
}

// meta reads _meta. mcp-go keeps _meta in a map, so its keys match exactly,
// as here.
func (c *fastCall) meta(p *jsonScanner) bool {
	var seen [3]bool
	return p.object(func(key []byte, escaped bool) bool {
		var dst *json.RawMessage
		var i int
		switch {
		case escaped:
			// An escaped key could spell a known one: leave it to mcp-go.
			return false
		case string(key) == mcp.MetaKeyProtocolVersion:
			dst, i = &c.Version, 0
		case string(key) == mcp.MetaKeyClientCapabilities:
			dst, i = &c.Capabilities, 1
		case string(key) == mcp.MetaKeyClientInfo:
			dst, i = &c.Info, 2
			c.HasInfo = true
		default:
			return p.skipValue(0)
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		*dst = p.value()
		return *dst != nil
	})
}

// foldsToAny reports whether key equals one of names when case is ignored;
// encoding/json would fill that name's field from it.
func foldsToAny(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// maxFastDepth bounds the nesting the fast path's scanner follows; deeper
// bodies go to mcp-go.
const maxFastDepth = 64

// jsonScanner walks a JSON text (RFC 8259) and validates what it skips.
type jsonScanner struct {
	b []byte
	i int
}

// space skips insignificant whitespace (RFC 8259 §2).
func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object reads an object, calling member with each key (its raw bytes
// between the quotes, and whether they hold an escape) with the scanner on
// the member's value, which member must consume.
func (p *jsonScanner) object(member func(key []byte, escaped bool) bool) bool {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.space()
		start := p.i
		escaped, ok := p.str()
		if !ok {
			return false
		}
		key := p.b[start+1 : p.i-1]
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.space()
		if !member(key, escaped) {
			return false
		}
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// plainString reads a string of valid UTF-8 without escapes and returns
// its contents; "" and false for anything else (encoding/json would change
// invalid UTF-8 into U+FFFD).
func (p *jsonScanner) plainString() (string, bool) {
	start := p.i
	escaped, ok := p.str()
	if !ok || escaped || !utf8.Valid(p.b[start+1:p.i-1]) {
		return "", false
	}
	return string(p.b[start+1 : p.i-1]), true
}

// value skips one value and returns its bytes, or nil if it is not valid.
func (p *jsonScanner) value() json.RawMessage {
	start := p.i
	if !p.skipValue(0) {
		return nil
	}
	return json.RawMessage(p.b[start:p.i])
}

// skipValue skips one value (RFC 8259 §3), validating it.
func (p *jsonScanner) skipValue(depth int) bool {
	if depth > maxFastDepth || p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '{':
		return p.object(func([]byte, bool) bool { return p.skipValue(depth + 1) })
	case c == '[':
		p.i++
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return true
		}
		for {
			p.space()
			if !p.skipValue(depth + 1) {
				return false
			}
			p.space()
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case ',':
				p.i++
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

func (p *jsonScanner) literal(word string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return false
	}
	p.i += len(word)
	return true
}

// number skips a number (RFC 8259 §6).
func (p *jsonScanner) number() bool {
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	default:
		return false
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

func (p *jsonScanner) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// str skips a string (RFC 8259 §7) and reports whether it held an escape.
// Control characters must be escaped; bytes of 0x80 and above pass as
// they are, as encoding/json lets them.
func (p *jsonScanner) str() (escaped, ok bool) {
	b := p.b
	if p.i >= len(b) || b[p.i] != '"' {
		return false, false
	}
	p.i++
	for p.i < len(b) {
		c := b[p.i]
		switch {
		case c == '"':
			p.i++
			return escaped, true
		case c < 0x20:
			return false, false
		case c == '\\':
			escaped = true
			p.i++
			if p.i >= len(b) {
				return false, false
			}
			switch b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				if p.i+4 >= len(b) {
					return false, false
				}
				for _, h := range b[p.i+1 : p.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false, false
					}
				}
				p.i += 5
			default:
				return false, false
			}
		default:
			p.i++
		}
	}
	return false, false
}
