package mcpserver

import (
	"bytes"
	"encoding/json"
	"testing"

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
			if !encodeFastResult(&out, res, meta) {
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
		"own _meta":      {Result: mcp.Result{Meta: &mcp.Meta{AdditionalFields: map[string]any{"x": 1}}}},
		"image content":  {Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewImageContent("AAAA", "image/png")}},
		"request state":  requestStateResult(),
		"map structured": {StructuredContent: map[string]any{"a": 1}},
		"annotated text": {Content: []mcp.Content{mcp.TextContent{Type: "text", Text: "a", Annotated: mcp.Annotated{Annotations: &mcp.Annotations{Priority: new(float64)}}}}},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			var out bytes.Buffer
			out.WriteString("prefix")
			if encodeFastResult(&out, res, meta) {
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
