package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a loopback MCP endpoint that answers every request with an
// empty result and remembers what each carried.
type recorder struct {
	mu     sync.Mutex
	tools  map[string]int // Mcp-Method or tool name -> calls
	tokens map[string]int // bearer token -> calls
	bad    string
}

func newRecorder(t *testing.T) (*recorder, string) {
	rec := &recorder{tools: map[string]int{}, tokens: map[string]int{}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string
			Params struct{ Name string }
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		rec.mu.Lock()
		switch {
		case r.Header.Get("Mcp-Method") != req.Method:
			rec.bad = "Mcp-Method does not match the body: " + string(body)
		case req.Method == "tools/call" && r.Header.Get("Mcp-Name") != req.Params.Name:
			rec.bad = "Mcp-Name does not match the body: " + string(body)
		}
		key := req.Method
		if req.Method == "tools/call" {
			key = req.Params.Name
		}
		rec.tools[key]++
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			rec.tokens[tok]++
		}
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	}))
	t.Cleanup(ts.Close)
	return rec, ts.URL + "/mcp"
}

func TestMixedWorkloadIsSevenReadsTwoListsOrSearchesAndOneWrite(t *testing.T) {
	rec, url := newRecorder(t)
	// One connection walks the request pool in order, so whole cycles of
	// ten give the exact mix.
	c, err := NewCaller(RunOptions{URL: url, Workload: Mixed}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 200 {
		if err := c.Call(); err != nil {
			t.Fatal(err)
		}
	}
	if rec.bad != "" {
		t.Fatal(rec.bad)
	}
	want := map[string]int{GetEntry: 140, ListEntries: 20, SearchEntries: 20, "create_entry": 20}
	for k, n := range want {
		if rec.tools[k] != n {
			t.Errorf("%s: %d calls of 200, want %d (all: %v)", k, rec.tools[k], n, rec.tools)
		}
	}
}

func TestToolsListAndOneTokenPerCall(t *testing.T) {
	rec, url := newRecorder(t)
	tokens := make([]string, 20000)
	for i := range tokens {
		tokens[i] = "tok" + strconv.Itoa(i)
	}
	r, err := Run(context.Background(), RunOptions{URL: url, Workload: ToolsList, Connections: 4, Warmup: -1, Duration: 200 * time.Millisecond, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	if rec.bad != "" {
		t.Fatal(rec.bad)
	}
	if r.Errors > 0 || rec.tools["tools/list"] == 0 || len(rec.tools) != 1 {
		t.Fatalf("%v; requests: %v", r, rec.tools)
	}
	if int(r.Calls) < len(tokens) {
		for tok, n := range rec.tokens {
			if n > 1 {
				t.Fatalf("token %q sent %d times in a run of %d calls with %d tokens", tok, n, r.Calls, len(tokens))
			}
		}
	}
}
