package auth

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// members reads an object whose known member names are keys, as a JSON
// decoder would fill a struct with those fields: read(i) consumes the value
// of keys[i]; other members are skipped, validated. It refuses (setting
// p.why) what two decoders could read differently: a known name given
// twice (encoding/json keeps the last, others the first), a name equal to a
// known one but for case (encoding/json matches it, exact decoders do not),
// and an escaped name that spells or folds to a known one.
func (p *jsonScanner) members(what string, keys []string, read func(i int) bool) bool {
	var seen uint64
	ok := p.object(func(key []byte, escaped bool) bool {
		if escaped {
			var name string
			if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &name) != nil {
				return false
			}
			if foldsToAny([]byte(name), keys...) {
				p.why = what + " has an escaped member name that spells " + name
				return false
			}
			return p.skipValue(0)
		}
		for i, k := range keys {
			if string(key) == k {
				if seen&(1<<i) != 0 {
					p.why = what + " has the member " + k + " twice"
					return false
				}
				seen |= 1 << i
				return read(i)
			}
		}
		if foldsToAny(key, keys...) {
			p.why = what + " has a member " + string(key) + " that differs from a known one only in case"
			return false
		}
		return p.skipValue(0)
	})
	if !ok && p.why == "" {
		p.why = what + " is not a valid JSON object"
	}
	return ok
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

// maxDepth bounds the nesting the scanner follows; a deeper body is
// refused (no MCP request needs it, and it bounds the recursion).
const maxDepth = 64

// jsonScanner walks a JSON text (RFC 8259) and validates what it skips.
type jsonScanner struct {
	b []byte
	i int
	// why says what was wrong when a read failed, if more is known than
	// "not valid JSON".
	why string
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

// text reads a string of valid UTF-8 and returns its contents; false for
// anything else, invalid UTF-8 included (encoding/json would change it into
// U+FFFD, so two readers could see two names).
func (p *jsonScanner) text() (string, bool) {
	start := p.i
	escaped, ok := p.str()
	if !ok {
		return "", false
	}
	raw := p.b[start:p.i]
	if !escaped {
		if !utf8.Valid(raw[1 : len(raw)-1]) {
			return "", false
		}
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	// encoding/json turns a lone surrogate escape into U+FFFD: refuse
	// that too, rather than read a name the client did not send.
	if json.Unmarshal(raw, &s) != nil || strings.ContainsRune(s, utf8.RuneError) {
		return "", false
	}
	return s, true
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
	if depth > maxDepth || p.i >= len(p.b) {
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
