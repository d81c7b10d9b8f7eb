package mcpserver

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// libraryEncoding is the JSON mcp-go writes for res on protocol 2026-07-28:
// resultType complete and _meta serverInfo, then CallToolResult.MarshalJSON.
func libraryEncoding(t testing.TB, res mcp.CallToolResult, impl mcp.Implementation) []byte {
	t.Helper()
	res.ResultType = mcp.ResultTypeComplete
	res.EnsureResultMeta().SetServerInfo(impl)
	b, err := res.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeFastResult(t *testing.T) {
	impl := mcp.Implementation{Name: "epicme", Version: "test", Title: "EpicMe Journal"}
	var m mcp.Meta
	m.SetServerInfo(impl)
	meta, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]any{"id": 7, "title": `Tea & "cake" <b>`, "content": "line\nnext\ttab \u2028 é 😀 \\ end"}
	withLink, err := toolResult(entry, "", entryLink(7, `Tea & "cake" <b>`))
	if err != nil {
		t.Fatal(err)
	}
	withSentence, err := toolResult(entry, "Entry \"7\" found.", tagLink(3, "<tag>"))
	if err != nil {
		t.Fatal(err)
	}
	errResult := mcp.NewToolResultError("Entry with ID \"9\" not found")
	structuredOnly := &mcp.CallToolResult{Content: []mcp.Content{}, StructuredContent: json.RawMessage(`{"a":[1,2,{"b":null}]}`)}
	for name, res := range map[string]*mcp.CallToolResult{
		"entry with link":       withLink,
		"sentence and tag link": withSentence,
		"error":                 errResult,
		"structured only":       structuredOnly,
		"invalid UTF-8 text":    {Content: []mcp.Content{mcp.NewTextContent("a\xffb\xc3")}},
		"control characters":    {Content: []mcp.Content{mcp.NewTextContent("\x00\x01\x1f\x7f")}},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if !encodeFastResult(&out, res, meta, false) {
				t.Fatal("encodeFastResult refused a result it should write")
			}
			want := libraryEncoding(t, *res, impl)
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("fast encoding differs from mcp-go's:\nfast:    %s\nlibrary: %s", out.Bytes(), want)
			}
		})
	}

	// Results it does not know are left to mcp-go, with nothing written.
	for name, res := range map[string]*mcp.CallToolResult{
		"own _meta":          {Result: mcp.Result{Meta: &mcp.Meta{AdditionalFields: map[string]any{"x": 1}}}},
		"image content":      {Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewImageContent("AAAA", "image/png")}},
		"request state":      requestStateResult(),
		"map structured":     {StructuredContent: map[string]any{"a": 1}},
		"invalid structured": {StructuredContent: json.RawMessage(`{"a":`)},
		"annotated text":     {Content: []mcp.Content{mcp.TextContent{Type: "text", Text: "a", Annotated: mcp.Annotated{Annotations: &mcp.Annotations{Priority: new(float64)}}}}},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			var out bytes.Buffer
			out.WriteString("prefix")
			if encodeFastResult(&out, res, meta, false) {
				t.Fatal("encodeFastResult wrote a result it should leave to mcp-go")
			}
			if out.String() != "prefix" {
				t.Errorf("buffer after refusal = %q, want it unchanged", out.String())
			}
		})
	}
}

// FuzzWriteJSONString holds the hand-written string escaper to
// encoding/json's: the same bytes for every input.
func FuzzWriteJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `{"a":"<b> & \"c\""}`, "\u2028\u2029", "\xff\xfe", "tab\there\n", "😀é", "\x00\x1f\x7f", "\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var out bytes.Buffer
		writeJSONString(&out, s)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("writeJSONString(%q) = %s, encoding/json %s", s, out.Bytes(), want)
		}
	})
}

func requestStateResult() *mcp.CallToolResult {
	res := &mcp.CallToolResult{}
	res.RequestState = "s"
	return res
}

// TestEntryOutJSON holds entryOut's hand-written JSON to what encoding/json
// writes for the same struct.
func TestEntryOutJSON(t *testing.T) {
	type plain struct {
		Entry *epicme.Entry `json:"entry"`
	}
	mood, place, empty := "calm & <happy>", "Zürich \u2028 \"old town\"", ""
	at := time.Date(2026, 11, 26, 1, 2, 3, 450000000, time.UTC)
	entries := []*epicme.Entry{
		nil,
		{ID: 1, UserID: "u1", Title: "t", Content: "c", CreatedAt: at, UpdatedAt: at},
		{ID: 1 << 40, UserID: "u\"2", Title: "Tea & \"cake\"", Content: "line\nnext\ttab\\ \x01 é 😀 \xff",
			Mood: &mood, Location: &place, Weather: &empty, IsPrivate: true, IsFavorite: true,
			CreatedAt: at.In(time.FixedZone("x", 3600)), UpdatedAt: at.Add(time.Nanosecond),
			Tags: []epicme.TagRef{{ID: 2, Name: "b<r>"}, {ID: 10, Name: "zoo"}}},
		{ID: 3, Tags: []epicme.TagRef{}},
	}
	for i, e := range entries {
		var out bytes.Buffer
		if err := (entryOut{e}).appendJSON(&out); err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(plain{e})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("entry %d:\nhand:          %s\nencoding/json: %s", i, out.Bytes(), want)
		}
	}
	// A time encoding/json cannot write is an error, as it is there.
	bad := &epicme.Entry{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	if err := (entryOut{bad}).appendJSON(&out); err == nil {
		t.Error("appendJSON of a year-10000 time succeeded")
	}
}

// TestPageOutJSON holds pageOut's hand-written JSON to encoding/json's.
func TestPageOutJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("y", -7200))
	for i, p := range []*epicme.EntryPage{
		{},
		{Entries: []epicme.EntrySummary{}},
		{Entries: []epicme.EntrySummary{{ID: 1, Title: "a <b> & \"c\"", TagCount: 3, IsFavorite: true, CreatedAt: at}, {ID: 2, Title: "é\u2028", CreatedAt: at.UTC()}}, NextCursor: "abc=="},
	} {
		var out bytes.Buffer
		if err := (pageOut{p}).appendJSON(&out); err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("page %d:\nhand:          %s\nencoding/json: %s", i, out.Bytes(), want)
		}
	}
}

// TestResourceLinkJSON holds writeResourceLink to encoding/json.
func TestResourceLinkJSON(t *testing.T) {
	size := int64(0)
	for _, l := range []mcp.ResourceLink{
		mcp.NewResourceLink("epicme://entries/1", "Tea & <cake>", `Journal Entry: "Tea"`, "application/json"),
		{Type: "resource_link", URI: "u", Name: "n", Title: "T", Size: &size},
	} {
		var out bytes.Buffer
		writeResourceLink(&out, l)
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("hand %s\nencoding/json %s", out.Bytes(), want)
		}
	}
}

// BenchmarkWriteJSONString escapes the JSON text of a list_entries page of
// 50 entries, the longest text the fast path escapes on a hot call:
// go test -run '^$' -bench WriteJSONString ./mcpserver/
func BenchmarkWriteJSONString(b *testing.B) {
	p := &epicme.EntryPage{}
	for i := range 50 {
		p.Entries = append(p.Entries, epicme.EntrySummary{ID: int64(i), Title: strings.Repeat("word ", 8), TagCount: 2, CreatedAt: time.Now()})
	}
	text, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	s := string(text)
	b.SetBytes(int64(len(s)))
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		writeJSONString(&out, s)
	}
}
