package mcpserver

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

// encodeFastResult writes the JSON of a 2026-07-28 tool result as mcp-go
// would (CallToolResult.MarshalJSON after resultType and _meta serverInfo
// are set), without building a map of the result and without encoding the
// structured content twice: the text content that repeats it is escaped
// directly from the structured bytes. It reports false for a result it does
// not know how to write (its own _meta, multi round-trip fields, content
// other than text and resource links), which the caller then encodes with
// mcp-go; TestFastPathMatchesLibrary and TestEncodeFastResult hold both
// ways to the same JSON.
func encodeFastResult(out *bytes.Buffer, res *mcp.CallToolResult, meta []byte) bool {
	if res.Meta != nil || len(res.InputRequests) > 0 || res.RequestState != "" ||
		(res.ResultType != "" && res.ResultType != mcp.ResultTypeComplete) {
		return false
	}
	structured := []byte(res.RawStructuredContent)
	if len(structured) == 0 && res.StructuredContent != nil {
		raw, ok := res.StructuredContent.(json.RawMessage)
		if !ok {
			return false
		}
		structured = raw
	}
	if len(structured) > 0 && !json.Valid(structured) {
		return false
	}
	mark := out.Len()
	out.WriteString(`{"_meta":`)
	out.Write(meta)
	out.WriteString(`,"content":[`)
	for i, c := range res.Content {
		if i > 0 {
			out.WriteByte(',')
		}
		switch c := c.(type) {
		case mcp.TextContent:
			if c.Annotations != nil || c.Meta != nil {
				out.Truncate(mark)
				return false
			}
			out.WriteString(`{"type":"text","text":`)
			writeJSONString(out, c.Text)
			out.WriteByte('}')
		case mcp.ResourceLink:
			b, err := json.Marshal(c)
			if err != nil {
				out.Truncate(mark)
				return false
			}
			out.Write(b)
		default:
			out.Truncate(mark)
			return false
		}
	}
	out.WriteByte(']')
	if res.IsError {
		out.WriteString(`,"isError":true`)
	}
	out.WriteString(`,"resultType":"complete"`)
	if len(structured) > 0 {
		out.WriteString(`,"structuredContent":`)
		out.Write(structured)
	}
	out.WriteByte('}')
	return true
}

// writeJSONString writes s as a JSON string (RFC 8259 §7), escaping what
// encoding/json escapes: quotation mark, reverse solidus, control
// characters, <, > and &, U+2028 and U+2029, and invalid UTF-8 (as U+FFFD).
// Runs of plain bytes are copied at once, so the JSON text of a result,
// whose only specials are its quotes, costs little more than a copy.
func writeJSONString(out *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	out.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			out.WriteString(s[start:i])
			switch b {
			case '"', '\\':
				out.WriteByte('\\')
				out.WriteByte(b)
			case '\n':
				out.WriteString(`\n`)
			case '\r':
				out.WriteString(`\r`)
			case '\t':
				out.WriteString(`\t`)
			case '\b':
				out.WriteString(`\b`)
			case '\f':
				out.WriteString(`\f`)
			default:
				out.WriteString(`\u00`)
				out.WriteByte(hex[b>>4])
				out.WriteByte(hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out.WriteString(s[start:i])
			out.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			out.WriteString(s[start:i])
			out.WriteString(`\u202`)
			out.WriteByte(hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	out.WriteString(s[start:])
	out.WriteByte('"')
}
