package mcpserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// postBatch sends body on the session of c (a client of version) and
// returns the status and the raw answer.
func (e *testEnv) postBatch(t *testing.T, sid, version, scopes, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(hdrUser, e.alice.ID)
	if scopes != "" {
		req.Header.Set(hdrScopes, scopes)
	}
	if sid != "" {
		req.Header.Set(headerSessionID, sid)
	}
	req.Header.Set(mcp.HeaderProtocolVersion, version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

const batchCalls = `[
 {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entry","arguments":{"title":"Batched","content":"c"}}},
 {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}},
 {"jsonrpc":"2.0","id":"two","method":"tools/call","params":{"name":"get_entry","arguments":{"id":1}}},
 {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_tag","arguments":{"name":"t"}}}
]`

// TestRule_Batch_2025_03_26_SplitEachDecidedArrayReply: MCP 2025-03-26
// (basic, "Batching") requires receiving JSON-RPC batches. Each element is
// served as if alone, decided alone (here create_tag is outside the
// caller's scopes while the rest is not), and the reply is one array with
// an answer per request and none for the notification (JSON-RPC 2.0 §6).
func TestRule_Batch_2025_03_26_SplitEachDecidedArrayReply(t *testing.T) {
	e := newTestEnv(t)
	c := e.connect(t, clientConfig{version: v20250326, user: e.alice})
	status, out := e.postBatch(t, c.GetSessionId(), v20250326, "entries:read entries:write", batchCalls)
	var replies []map[string]any
	if status != http.StatusOK || json.Unmarshal(out, &replies) != nil || len(replies) != 3 {
		t.Fatalf("batch: %d %s", status, out)
	}
	byID := map[string]map[string]any{}
	for _, r := range replies {
		byID[mustJSON(r["id"])] = r
	}
	if path(byID["1"], "result", "isError") == true || path(byID["1"], "result") == nil {
		t.Errorf("create_entry in a batch: %v", byID["1"])
	}
	if path(byID[`"two"`], "result", "structuredContent", "entry", "title") != "Batched" {
		t.Errorf("get_entry of the entry the batch created: %v", byID[`"two"`])
	}
	msg, _ := path(byID["3"], "result", "content", 0, "text").(string)
	if path(byID["3"], "result", "isError") != true || !strings.Contains(msg, `"tags:write"`) {
		t.Errorf("create_tag without tags:write in a batch: %v", byID["3"])
	}
	if n := countEntries(t, e.store, e.alice.ID); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}

	// Only notifications: 202 and no body.
	status, out = e.postBatch(t, c.GetSessionId(), v20250326, "", `[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]`)
	if status != http.StatusAccepted || len(out) != 0 {
		t.Errorf("batch of notifications: %d %s", status, out)
	}
}

// TestRule_Batch_RemovedFrom2025_06_18: revisions from 2025-06-18 removed
// batching, so a batch there gets JSON-RPC's Invalid Request (-32600)
// saying so, not a parse error, and nothing in it runs.
func TestRule_Batch_RemovedFrom2025_06_18(t *testing.T) {
	e := newTestEnv(t)
	for _, v := range []string{v20250618, v20251125, v20260728} {
		sid := ""
		if v != v20260728 {
			sid = e.connect(t, clientConfig{version: v, user: e.alice}).GetSessionId()
		}
		status, out := e.postBatch(t, sid, v, "", batchCalls)
		var got map[string]any
		_ = json.Unmarshal(out, &got)
		msg, _ := path(got, "error", "message").(string)
		if status != http.StatusBadRequest || num(path(got, "error", "code")) != mcp.INVALID_REQUEST || !strings.Contains(msg, "removed batching in 2025-06-18") {
			t.Errorf("%s: %d %s", v, status, out)
		}
	}
	if n := countEntries(t, e.store, e.alice.ID); n != 0 {
		t.Errorf("a refused batch wrote %d entries", n)
	}
}
