package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
)

func TestJournalsAreDeterministicPerSeedAndUser(t *testing.T) {
	o := FixtureOptions{Users: 10, EntriesPerUser: 5}
	o.setDefaults()
	a, b := genJournal(&o, 3), genJournal(&o, 3)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed and user gave different journals")
	}
	if c := genJournal(&o, 4); reflect.DeepEqual(a.entries, c.entries) {
		t.Fatal("two users got the same journal")
	}
	o2 := o
	o2.Seed = 2
	if c := genJournal(&o2, 3); reflect.DeepEqual(a.entries, c.entries) {
		t.Fatal("two seeds gave the same journal")
	}
}

func TestEntriesAreValidAndAboutOneKilobyte(t *testing.T) {
	o := FixtureOptions{Users: 1}
	o.setDefaults()
	j := genJournal(&o, 0)
	if len(j.entries) != 100 || len(j.tags) != 10 {
		t.Fatalf("%d entries, %d tags", len(j.entries), len(j.tags))
	}
	total := 0
	for k, e := range j.entries {
		if err := e.Validate(); err != nil {
			t.Fatalf("entry %d invalid: %v", k, err)
		}
		if n := len(j.entryTags[k]); n < 1 || n > 4 {
			t.Errorf("entry %d has %d tags", k, n)
		}
		total += len(e.Content)
	}
	for _, tag := range j.tags {
		if err := tag.Validate(); err != nil {
			t.Fatalf("tag %q invalid: %v", tag.Name, err)
		}
	}
	if avg := total / len(j.entries); avg < 900 || avg > 1300 {
		t.Errorf("average content is %d bytes; want about 1 KB", avg)
	}
}

// TestQueriesMatchSomeButNotAllEntries checks the selectivity that makes
// search_entries a realistic workload: one-word queries match a minority of
// a user's entries, two-word queries fewer, and few queries match nothing.
func TestQueriesMatchSomeButNotAllEntries(t *testing.T) {
	o := FixtureOptions{Users: 1}
	o.setDefaults()
	j := genJournal(&o, 0)
	words := make([]map[string]bool, len(j.entries))
	for k, e := range j.entries {
		words[k] = map[string]bool{}
		// Split as the query side does (SearchTerms), without its cap on
		// the number of words.
		for _, w := range strings.FieldsFunc(strings.ToLower(e.Title+" "+e.Content), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			words[k][w] = true
		}
	}
	matches := func(q string) int {
		n := 0
		for _, ws := range words {
			all := true
			for _, term := range epicme.SearchTerms(q) {
				all = all && ws[term]
			}
			if all {
				n++
			}
		}
		return n
	}
	g := newTextGen(1, 1<<40)
	for _, nwords := range []int{1, 2} {
		sum, empty := 0, 0
		const queries = 200
		for range queries {
			m := matches(g.query(nwords))
			sum += m
			if m == 0 {
				empty++
			}
		}
		avg := float64(sum) / queries
		t.Logf("%d-word queries: %.1f of 100 entries match on average, %d of %d match none", nwords, avg, empty, queries)
		if avg < 0.5 || avg > 40 {
			t.Errorf("%d-word queries match %.1f entries on average; want a minority", nwords, avg)
		}
		if nwords == 1 && empty > queries/2 {
			t.Errorf("%d of %d one-word queries match nothing", empty, queries)
		}
	}
}

// TestRunSendsStatelessCallsAndCountsFailures drives a real loopback server
// that checks what a 2026-07-28 request must carry, answers in both framings
// (length and chunked), and fails one call in ten as a tool error.
func TestRunSendsStatelessCallsAndCountsFailures(t *testing.T) {
	var n atomic.Int64
	var bad atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		var req struct {
			Method string
			Params struct {
				Name      string
				Arguments map[string]any
				Meta      map[string]any `json:"_meta"`
			}
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			bad.Store("body: " + err.Error())
		}
		switch {
		case r.Header.Get("Mcp-Protocol-Version") != ProtocolVersion,
			r.Header.Get("Mcp-Method") != "tools/call",
			r.Header.Get("Mcp-Name") != req.Params.Name,
			req.Params.Meta["io.modelcontextprotocol/protocolVersion"] != ProtocolVersion,
			req.Params.Meta["io.modelcontextprotocol/clientCapabilities"] == nil,
			!strings.Contains(r.Header.Get("Accept"), "application/json"):
			bad.Store("request lacks a 2026-07-28 header or _meta: " + string(body))
		}
		if q, _ := req.Params.Arguments["query"].(string); q == "" {
			bad.Store("search without a query")
		}
		result := `{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}`
		if i%10 == 0 {
			result = `{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}`
		}
		w.Header().Set("Content-Type", "application/json")
		if i%2 == 0 {
			w.(http.Flusher).Flush() // forces chunked encoding
		}
		io.WriteString(w, result)
	}))
	defer ts.Close()

	r, err := Run(context.Background(), RunOptions{URL: ts.URL + "/mcp", Workload: SearchEntries, Connections: 2, Warmup: -1, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if r.Calls < 20 {
		t.Fatalf("only %d calls", r.Calls)
	}
	if r.Errors == 0 || r.Errors > r.Calls/5 || !strings.Contains(r.FirstError, `"isError":true`) {
		t.Errorf("errors = %d of %d (first %q); want about one in ten", r.Errors, r.Calls, r.FirstError)
	}
	if !(r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: %+v", r)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	for _, o := range []RunOptions{
		{URL: "https://127.0.0.1/mcp", Workload: GetEntry},
		{URL: "http://127.0.0.1:1/mcp", Workload: "delete_everything"},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) succeeded", o)
		}
	}
}

// TestRunSignsADPoPProofPerCall: with DPoP, every call carries its token
// as "Authorization: DPoP" and a new proof that EpicMe's own checker
// accepts for that URL, token and key, none replayed.
func TestRunSignsADPoPProofPerCall(t *testing.T) {
	key, err := NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	checker, err := auth.NewDPoPChecker(auth.DPoPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var bad atomic.Value
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		target, _ := url.Parse(ts.URL + "/mcp")
		if scheme != "DPoP" {
			bad.Store("scheme " + scheme)
		} else if _, err := checker.Check(r.Method, target, r.Header.Get("DPoP"), tok, key.JKT); err != nil {
			bad.Store("proof refused: " + err.Error())
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}`)
	}))
	defer ts.Close()
	r, err := Run(context.Background(), RunOptions{URL: ts.URL + "/mcp", Workload: GetEntry, Connections: 2, Warmup: -1,
		Duration: 300 * time.Millisecond, DPoP: key, Tokens: []string{"token-a", "token-b"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if r.Calls < 20 || r.Errors > 0 {
		t.Fatalf("%d calls, %d errors (%s)", r.Calls, r.Errors, r.FirstError)
	}
}
