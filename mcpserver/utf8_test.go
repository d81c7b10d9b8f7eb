package mcpserver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/mcp"
)

// badTexts are string values that JSON decoding in Go would silently turn
// into U+FFFD: raw bytes that are not UTF-8, and escaped lone surrogates
// (RFC 8259 §8.2 leaves their meaning undefined).
var badTexts = map[string]string{
	"raw bytes FF FE":       "bad \xff\xfe text",
	"truncated sequence":    "bad \xc3",
	"escaped lone high":     `bad \ud800 text`,
	"escaped lone low":      `bad \udc00 text`,
	"high then not low":     `bad \ud800\u0041 text`,
	"encoded surrogate":     "bad \xed\xa0\x80 text",
	"high at end of string": `bad \ud83d`,
}

// sendBadText posts a tools/call whose argument field holds bad, in the
// 2026-07-28 era (stateless) and on a 2025-11-25 session, and checks that
// each is refused with an error naming the field.
func sendBadText(t *testing.T, e *testEnv, sid, tool, field, argsJSON string) {
	t.Helper()
	for name, bad := range badTexts {
		args := strings.Replace(argsJSON, "BAD", bad, 1)
		for _, era := range []string{v20260728, v20251125} {
			h, _ := modernCall(e.alice, tool, nil, nil, nil)
			body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args +
				`,"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + v20260728 + `","` + mcp.MetaKeyClientCapabilities + `":{},"` + mcp.MetaKeyClientInfo + `":{"name":"raw","version":"1"}}}}`
			if era == v20251125 {
				h = http.Header{}
				h.Set(hdrUser, e.alice.ID)
				h.Set("Mcp-Session-Id", sid)
				h.Set(mcp.HeaderProtocolVersion, v20251125)
				body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
			}
			status, got := e.rawPost(t, h, body)
			msg, _ := path(got, "error", "message").(string)
			if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_PARAMS ||
				!strings.Contains(msg, `"`+field+`"`) || !strings.Contains(msg, "UTF-8") {
				t.Errorf("%s %s %s (%s): status %d %v, want 400 and an invalid-params error naming %q", era, tool, field, name, status, got, field)
			}
		}
	}
}

// TestAttack_InvalidUTF8_CreateEntry: a title or content that is not
// UTF-8, raw or escaped, is refused naming the field, and nothing is stored
// (it used to be stored as U+FFFD).
func TestAttack_InvalidUTF8_CreateEntry(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	sid := c.GetSessionId()
	sendBadText(t, e, sid, "create_entry", "title", `{"title":"BAD","content":"fine"}`)
	sendBadText(t, e, sid, "create_entry", "content", `{"title":"fine","content":"BAD"}`)
	sendBadText(t, e, sid, "create_entry", "location", `{"title":"fine","content":"fine","location":"BAD"}`)
	if n := countEntries(t, e.store, e.alice.ID); n != 0 {
		t.Fatalf("%d entries stored from text that is not UTF-8", n)
	}
}

// TestAttack_InvalidUTF8_UpdateEntry: the same for update_entry; the entry
// keeps its text.
func TestAttack_InvalidUTF8_UpdateEntry(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	ok(t, c, "create_entry", map[string]any{"title": "Kept", "content": "Kept too"})
	sid := c.GetSessionId()
	sendBadText(t, e, sid, "update_entry", "title", `{"id":1,"title":"BAD"}`)
	sendBadText(t, e, sid, "update_entry", "content", `{"id":1,"content":"BAD"}`)
	got, err := e.store.GetEntry(context.Background(), e.alice.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Kept" || got.Content != "Kept too" {
		t.Fatalf("entry changed to %q / %q", got.Title, got.Content)
	}
}

// TestAttack_InvalidUTF8_TagName: a tag name that is not UTF-8 is refused
// naming the field, and no tag is made.
func TestAttack_InvalidUTF8_TagName(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice})
	sid := c.GetSessionId()
	sendBadText(t, e, sid, "create_tag", "name", `{"name":"BAD"}`)
	tags, err := e.store.ListTags(context.Background(), e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Fatalf("tags stored from text that is not UTF-8: %v", tags)
	}
}

// Valid text, escapes and surrogate pairs included, still passes.
func TestRule_ValidUTF8Passes(t *testing.T) {
	for _, s := range []string{`{"a":"plain"}`, `{"a":"\ud83d\ude00 \u00e9 é 😀"}`, `{"\u00e9":"x","b":["\\ud800"]}`} {
		if err := checkText([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if err := checkText([]byte(`{"a":{"b":"\ud800"}}`)); epicme.ErrorCode(err) != epicme.EINVALID {
		t.Errorf("nested lone surrogate: %v", err)
	}
}
