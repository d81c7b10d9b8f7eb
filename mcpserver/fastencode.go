package mcpserver

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// encodeFastResult writes the JSON of a tool result as mcp-go
// would (CallToolResult.MarshalJSON after resultType and _meta serverInfo
// are set), without building a map of the result and without encoding the
// structured content twice: the text content that repeats it is escaped
// directly from the structured bytes. It reports false for a result it does
// not know how to write (its own _meta, multi round-trip fields, content
// other than text and resource links), which the caller then encodes with
// mcp-go; TestFastPathMatchesLibrary and TestEncodeFastResult hold both
// ways to the same JSON.
//
// Structured content given as json.RawMessage is copied as it is when
// trusted is set: the journal's tools make it with encoding/json
// (toolResult), so it is valid and compact. Otherwise it is checked first.
// meta is the _meta of a 2026-07-28 result, which also gets its resultType;
// nil for a result of an earlier revision, which has neither.
func encodeFastResult(out *bytes.Buffer, res *mcp.CallToolResult, meta []byte, trusted bool) bool {
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
	if len(structured) > 0 && !trusted && !json.Valid(structured) {
		return false
	}
	mark := out.Len()
	if meta != nil {
		out.WriteString(`{"_meta":`)
		out.Write(meta)
		out.WriteString(`,"content":[`)
	} else {
		out.WriteString(`{"content":[`)
	}
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
			if c.Annotations != nil || c.Meta != nil {
				b, err := json.Marshal(c)
				if err != nil {
					out.Truncate(mark)
					return false
				}
				out.Write(b)
				continue
			}
			writeResourceLink(out, c)
		default:
			out.Truncate(mark)
			return false
		}
	}
	out.WriteByte(']')
	if res.IsError {
		out.WriteString(`,"isError":true`)
	}
	if meta != nil {
		out.WriteString(`,"resultType":"complete"`)
	}
	if len(structured) > 0 {
		out.WriteString(`,"structuredContent":`)
		out.Write(structured)
	}
	out.WriteByte('}')
	return true
}

// writeResourceLink writes a resource link without annotations or _meta
// as encoding/json writes mcp.ResourceLink: its fields in declaration order.
func writeResourceLink(out *bytes.Buffer, c mcp.ResourceLink) {
	out.WriteString(`{"type":`)
	writeJSONString(out, c.Type)
	out.WriteString(`,"uri":`)
	writeJSONString(out, c.URI)
	out.WriteString(`,"name":`)
	writeJSONString(out, c.Name)
	if c.Title != "" {
		out.WriteString(`,"title":`)
		writeJSONString(out, c.Title)
	}
	out.WriteString(`,"description":`)
	writeJSONString(out, c.Description)
	out.WriteString(`,"mimeType":`)
	writeJSONString(out, c.MIMEType)
	if c.Size != nil {
		var num [20]byte
		out.WriteString(`,"size":`)
		out.Write(strconv.AppendInt(num[:0], *c.Size, 10))
	}
	out.WriteByte('}')
}

// writeJSONString writes s as a JSON string (RFC 8259 §7), escaping what
// encoding/json escapes: quotation mark, reverse solidus, control
// characters, <, > and &, U+2028 and U+2029, and invalid UTF-8 (as U+FFFD).
func writeJSONString(out *bytes.Buffer, s string) {
	out.Grow(len(s) + len(s)/4 + 2)
	out.Write(appendJSONString(out.AvailableBuffer(), s))
}

// appendJSONString appends s to dst as writeJSONString writes it. Runs of
// plain bytes are copied at once, so the JSON text of a result, whose only
// specials are its quotes, costs little more than a copy.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if plainJSONByte[b] {
			i++
			continue
		}
		if b == '"' {
			// The common special of JSON text: copy the run and the escape
			// in one append.
			dst = append(append(dst, s[start:i]...), '\\', '"')
			i++
			start = i
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainJSONByte marks the bytes a JSON string carries as they are: ASCII
// from space up, but for the quotation mark, the reverse solidus and the
// three characters encoding/json escapes for HTML.
var plainJSONByte = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// pageOut is list_entries' structured result, which writes its own JSON.
type pageOut struct{ *epicme.EntryPage }

// appendJSON writes the page as encoding/json writes epicme.EntryPage;
// TestPageOutJSON holds the two together.
func (p pageOut) appendJSON(out *bytes.Buffer) error {
	out.Grow(len(p.Entries)*160 + 64)
	var num [20]byte
	out.WriteString(`{"entries":`)
	if p.Entries == nil {
		out.WriteString("null")
	} else {
		out.WriteByte('[')
		for i, e := range p.Entries {
			created, err := e.CreatedAt.MarshalJSON()
			if err != nil {
				return err
			}
			if i > 0 {
				out.WriteByte(',')
			}
			out.WriteString(`{"id":`)
			out.Write(strconv.AppendInt(num[:0], e.ID, 10))
			out.WriteString(`,"title":`)
			writeJSONString(out, e.Title)
			out.WriteString(`,"tagCount":`)
			out.Write(strconv.AppendInt(num[:0], int64(e.TagCount), 10))
			out.WriteString(`,"isFavorite":`)
			out.WriteString(strconv.FormatBool(e.IsFavorite))
			out.WriteString(`,"createdAt":`)
			out.Write(created)
			out.WriteByte('}')
		}
		out.WriteByte(']')
	}
	if p.NextCursor != "" {
		out.WriteString(`,"nextCursor":`)
		writeJSONString(out, p.NextCursor)
	}
	out.WriteByte('}')
	return nil
}

// jsonAppender is a tool's structured result that writes its own JSON,
// byte for byte what encoding/json writes for it, without reflection.
type jsonAppender interface {
	appendJSON(out *bytes.Buffer) error
}

// appendJSON writes {"entry":…} as encoding/json writes entryOut. get_entry
// is the journal's hottest call; TestEntryOutJSON holds the two encodings
// together.
func (o entryOut) appendJSON(out *bytes.Buffer) error {
	e := o.Entry
	if e == nil {
		out.WriteString(`{"entry":null}`)
		return nil
	}
	created, err := e.CreatedAt.MarshalJSON()
	if err != nil {
		return err
	}
	updated, err := e.UpdatedAt.MarshalJSON()
	if err != nil {
		return err
	}
	out.Grow(len(e.Content) + len(e.Title) + 64*len(e.Tags) + 256)
	var num [20]byte
	out.WriteString(`{"entry":{"id":`)
	out.Write(strconv.AppendInt(num[:0], e.ID, 10))
	out.WriteString(`,"userId":`)
	writeJSONString(out, e.UserID)
	out.WriteString(`,"title":`)
	writeJSONString(out, e.Title)
	out.WriteString(`,"content":`)
	writeJSONString(out, e.Content)
	for _, f := range [...]struct {
		name string
		v    *string
	}{{`,"mood":`, e.Mood}, {`,"location":`, e.Location}, {`,"weather":`, e.Weather}} {
		out.WriteString(f.name)
		if f.v == nil {
			out.WriteString("null")
		} else {
			writeJSONString(out, *f.v)
		}
	}
	out.WriteString(`,"isPrivate":`)
	out.WriteString(strconv.FormatBool(e.IsPrivate))
	out.WriteString(`,"isFavorite":`)
	out.WriteString(strconv.FormatBool(e.IsFavorite))
	out.WriteString(`,"createdAt":`)
	out.Write(created)
	out.WriteString(`,"updatedAt":`)
	out.Write(updated)
	if len(e.Tags) > 0 {
		out.WriteString(`,"tags":[`)
		for i, t := range e.Tags {
			if i > 0 {
				out.WriteByte(',')
			}
			out.WriteString(`{"id":`)
			out.Write(strconv.AppendInt(num[:0], t.ID, 10))
			out.WriteString(`,"name":`)
			writeJSONString(out, t.Name)
			out.WriteByte('}')
		}
		out.WriteByte(']')
	}
	out.WriteString("}}")
	return nil
}
