package mcpserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Every tool call a test makes through call is held to the schemas the tool
// declares in tools/list, by a JSON Schema validator EpicMe does not
// otherwise use (draft 2020-12, as MCP tool schemas are): a call the tool
// accepts must have had arguments its inputSchema allows, and its
// structuredContent must match its outputSchema (MCP 2025-11-25,
// server/tools, "Output Schema": structured results MUST conform). So the
// schemas (schema.go) and the argument checks (args.go) cannot drift apart
// unseen: every test of a tool tests both.

// toolSchemas are the compiled schemas of every tool, by name; declared
// once by the first test server.
var toolSchemas struct {
	once    sync.Once
	in, out map[string]*jsonschema.Schema
	err     error
}

// declareSchemas compiles the schemas of the tools srv declares.
func declareSchemas(tb testing.TB, srv *Server) {
	tb.Helper()
	toolSchemas.once.Do(func() {
		toolSchemas.in, toolSchemas.out = map[string]*jsonschema.Schema{}, map[string]*jsonschema.Schema{}
		for name, t := range srv.MCPServer().ListTools() {
			b, err := json.Marshal(t.Tool)
			if err != nil {
				toolSchemas.err = err
				return
			}
			var decl struct {
				In  json.RawMessage `json:"inputSchema"`
				Out json.RawMessage `json:"outputSchema"`
			}
			json.Unmarshal(b, &decl)
			for _, s := range []struct {
				raw  json.RawMessage
				into map[string]*jsonschema.Schema
				kind string
			}{{decl.In, toolSchemas.in, "input"}, {decl.Out, toolSchemas.out, "output"}} {
				if len(s.raw) == 0 {
					continue
				}
				sch, err := compileSchema(name+"-"+s.kind, s.raw)
				if err != nil {
					toolSchemas.err = fmt.Errorf("%s %sSchema: %w", name, s.kind, err)
					return
				}
				s.into[name] = sch
			}
		}
	})
	if toolSchemas.err != nil {
		tb.Fatal(toolSchemas.err)
	}
	if len(toolSchemas.in) == 0 {
		tb.Fatal("the server declares no tool schemas")
	}
}

func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := "mem:///" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// checkSchemas holds one call and its result to the tool's schemas.
func checkSchemas(tb testing.TB, name string, args any, res *mcp.CallToolResult) {
	tb.Helper()
	if res == nil || res.IsError || toolSchemas.in == nil {
		return
	}
	if in := toolSchemas.in[name]; in != nil {
		if err := in.Validate(reencode(tb, args, map[string]any{})); err != nil {
			tb.Errorf("%s accepted arguments its inputSchema refuses: %s\n%v", name, mustJSON(args), err)
		}
	}
	if out := toolSchemas.out[name]; out != nil {
		if res.StructuredContent == nil {
			tb.Errorf("%s declares an outputSchema but returned no structuredContent", name)
			return
		}
		if err := out.Validate(reencode(tb, res.StructuredContent, nil)); err != nil {
			tb.Errorf("%s returned structuredContent its outputSchema refuses: %s\n%v", name, mustJSON(res.StructuredContent), err)
		}
	}
}

// reencode turns v into the generic JSON values the validator reads; nil
// becomes empty.
func reencode(tb testing.TB, v any, empty any) any {
	tb.Helper()
	if v == nil {
		return empty
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestSchemasRefuseWhatTheToolsRefuse is the other direction: arguments
// that a tool's inputSchema refuses are refused by the tool too, with a tool
// error, on both of EpicMe's paths (the fast path serves get_entry,
// mcp-go the others).
func TestSchemasRefuseWhatTheToolsRefuse(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: "2025-11-25", user: e.alice})
	ok(t, c, "create_entry", map[string]any{"title": "t", "content": "c"})
	ok(t, c, "create_tag", map[string]any{"name": "n"})
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"get_entry", map[string]any{"id": 0}},
		{"get_entry", map[string]any{"id": "1"}},
		{"get_entry", map[string]any{"id": 1, "extra": true}},
		{"get_entry", map[string]any{}},
		{"create_entry", map[string]any{"title": "t"}},
		{"create_entry", map[string]any{"title": 1, "content": "c"}},
		{"create_entry", map[string]any{"title": "t", "content": "c", "isPrivate": 2}},
		{"create_entry", map[string]any{"title": "t", "content": "c", "tags": "x"}},
		{"list_entries", map[string]any{"limit": -1}},
		{"list_entries", map[string]any{"tagIds": []any{"a"}}},
		{"search_entries", map[string]any{}},
		{"update_entry", map[string]any{"id": 1, "title": nil, "bogus": 1}},
		{"create_tag", map[string]any{"name": 3}},
		{"add_tag_to_entry", map[string]any{"entryId": 1}},
		{"list_entries", map[string]any{"favoritesOnly": 2}},
		{"list_entries", map[string]any{"tagIds": make([]int, epicme.MaxTagsPerRequest+1)}},
		// Lengths: the schemas state them, the domain checks them.
		{"create_entry", map[string]any{"title": strings.Repeat("t", epicme.MaxTitleLen+1), "content": "c"}},
		{"create_entry", map[string]any{"title": "t", "content": ""}},
		{"create_entry", map[string]any{"title": "t", "content": "c", "mood": strings.Repeat("m", epicme.MaxMetaLen+1)}},
		{"update_entry", map[string]any{"id": 1, "weather": strings.Repeat("w", epicme.MaxMetaLen+1)}},
		{"search_entries", map[string]any{"query": strings.Repeat("q", epicme.MaxSearchQueryLen+1)}},
		{"create_tag", map[string]any{"name": strings.Repeat("n", epicme.MaxTagNameLen+1)}},
		{"update_tag", map[string]any{"id": 1, "description": strings.Repeat("d", epicme.MaxTagDescLen+1)}},
	} {
		in := toolSchemas.in[tc.tool]
		if in == nil {
			t.Fatalf("%s declares no inputSchema", tc.tool)
		}
		if in.Validate(reencode(t, tc.args, nil)) == nil {
			t.Errorf("%s %s: the inputSchema allows these arguments; the case proves nothing", tc.tool, mustJSON(tc.args))
			continue
		}
		res, err := callErr(c, tc.tool, tc.args)
		if err == nil && !res.IsError {
			t.Errorf("%s %s: the inputSchema refuses these arguments, the tool accepted them: %s", tc.tool, mustJSON(tc.args), texts(res))
		}
	}
}

// TestParamsReadWhatTheirSchemasAllow holds the reader of every tool
// argument to the schema the same param declares, value by value: what the
// schema allows is read, what it refuses is refused. The differences by
// design are allowed:
//   - null for an optional argument whose schema does not allow null may
//     read as left out (clients send null for "none");
//   - lengths of text are stated by the schema and checked by the domain
//     (TestSchemasRefuseWhatTheToolsRefuse sends such text to the tools);
//   - a date's schema says string, its reader wants RFC 3339.
func TestParamsReadWhatTheirSchemasAllow(t *testing.T) {
	probes := []probe{
		probeOf(entryIDArg), probeOf(linkEntryArg), probeOf(linkTagArg), probeOf(tagIDArg),
		probeOf(newTitleArg), probeOf(newContentArg), probeOf(queryArg), probeOf(newTagNameArg),
		probeOf(newMoodArg), probeOf(newLocationArg), probeOf(newWeatherArg), probeOf(newTagDescArg),
		probeOf(titleArg), probeOf(contentArg), probeOf(tagNameArg),
		probeOf(moodArg), probeOf(locationArg), probeOf(weatherArg), probeOf(tagDescArg),
		probeOf(newPrivateArg), probeOf(newFavoriteArg), probeOf(privateArg), probeOf(favoriteArg), probeOf(favoritesOnlyArg),
		probeOf(newTagsArg), probeOf(tagIDsArg), probeOf(limitArg), probeOf(cursorArg),
		probeOf(fromArg), probeOf(toArg),
	}
	ids := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]" }
	long := func(n int) string { return `"` + strings.Repeat("a", n) + `"` }
	values := []string{"(left out)",
		`null`, `true`, `false`, `0`, `1`, `1.0`, `2`, `-1`, `1.5`, `200`, `201`, `9007199254740992`,
		`""`, `"x"`, `"1"`, `"true"`, `"2026-07-28"`, `"2026-07-28T09:00:00Z"`, `"yesterday"`,
		long(50), long(51), long(100), long(101), long(200), long(201), long(500), long(501),
		`[]`, `[1]`, `[1,1]`, `["a"]`, `[0]`, `[1.5]`, `[null]`, ids(50), ids(51), `{}`,
	}
	for _, p := range probes {
		name, schema, required := p.spec()
		full := compileParam(t, name, schema, required)
		loose := js{}
		for k, v := range schema {
			if k != "minLength" && k != "maxLength" {
				loose[k] = v
			}
		}
		unbounded := compileParam(t, name, loose, required)
		leftOut, _ := p.read(nil, false)
		for _, text := range values {
			doc, v, present := map[string]any{}, any(nil), text != "(left out)"
			if present {
				if err := json.Unmarshal([]byte(text), &v); err != nil {
					t.Fatal(err)
				}
				doc[name] = reencode(t, v, nil)
			}
			schemaOK := full.Validate(doc) == nil
			_, isString := v.(string)
			got, readErr := p.read(v, present)
			switch readOK := readErr == nil; {
			case schemaOK == readOK,
				readOK && present && v == nil && reflect.DeepEqual(got, leftOut),
				readOK && unbounded.Validate(doc) == nil,
				!readOK && p.dates && isString:
			case readOK:
				t.Errorf("%s = %.40s: the schema refuses it, the reader accepts it", name, text)
			default:
				t.Errorf("%s = %.40s: the schema allows it, the reader refuses it: %v", name, text, readErr)
			}
		}
	}
}

// probe is a param of any type, for TestParamsReadWhatTheirSchemasAllow.
type probe struct {
	input
	read  func(v any, present bool) (any, error)
	dates bool
}

func probeOf[T any](p param[T]) probe {
	_, dates := any(p).(param[time.Time])
	return probe{p, func(v any, present bool) (any, error) { return p.read(v, present) }, dates}
}

// compileParam compiles the inputSchema of a tool that takes one argument.
func compileParam(tb testing.TB, name string, schema js, required bool) *jsonschema.Schema {
	tb.Helper()
	o := object(js{name: schema})
	if required {
		o = object(js{name: schema}, name)
	}
	sch, err := compileSchema("param-"+name, raw(o))
	if err != nil {
		tb.Fatal(err)
	}
	return sch
}

// TestParamGetAllocatesNothing keeps the hot path's argument reading (an
// id, as get_entry reads it) free of allocations.
func TestParamGetAllocatesNothing(t *testing.T) {
	a, err := newArgs(map[string]any{"id": float64(7)}, "id")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if id, err := entryIDArg.get(a); err != nil || id != 7 {
			t.Fatal(id, err)
		}
	}); n != 0 {
		t.Errorf("entryIDArg.get allocates %v times per call", n)
	}
}
