package mcpserver

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// confirmer answers delete confirmations like a user would.
type confirmer struct {
	action    mcp.ElicitationResponseAction
	confirmed bool
	asked     atomic.Int32
	mu        sync.Mutex
	message   string
}

func (c *confirmer) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	c.asked.Add(1)
	c.mu.Lock()
	c.message = req.Params.Message
	c.mu.Unlock()
	res := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: c.action}}
	if c.action == mcp.ElicitationResponseActionAccept {
		res.Content = map[string]any{"confirmed": c.confirmed}
	}
	return res, nil
}

// TestDeleteConfirmedByElicitation checks delete_entry and delete_tag in
// both eras: a client that supports elicitation is asked; accept+confirmed
// deletes, decline or an unticked box does not.
func TestDeleteConfirmedByElicitation(t *testing.T) {
	for _, version := range []string{v20250326, v20251125, v20260728} {
		t.Run(version, func(t *testing.T) {
			e := newTestEnv(t)
			ctx := context.Background()
			plain := e.connect(t, clientConfig{version: version, user: e.alice})
			ok(t, plain, "create_entry", map[string]any{"title": "Keep me", "content": "x"})
			ok(t, plain, "create_entry", map[string]any{"title": "Drop me", "content": "y"})
			ok(t, plain, "create_tag", map[string]any{"name": "old"})

			decline := &confirmer{action: mcp.ElicitationResponseActionDecline}
			c := e.connect(t, clientConfig{version: version, user: e.alice, opts: []client.ClientOption{client.WithElicitationHandler(decline)}})
			res := call(t, c, "delete_entry", map[string]any{"id": 1})
			if res.IsError || texts(res)[0] != `Deleting entry "Keep me" (ID: 1) rejected by the user.` {
				t.Fatalf("declined delete = %v %q", res.IsError, texts(res))
			}
			if decline.asked.Load() != 1 || decline.message != `Are you sure you want to delete entry "Keep me" (ID: 1)?` {
				t.Errorf("asked %d times: %q", decline.asked.Load(), decline.message)
			}
			if path(structured(t, res), "success") != false {
				t.Errorf("declined delete reports success")
			}
			if _, err := e.store.GetEntry(ctx, e.alice.ID, 1); err != nil {
				t.Fatalf("declined delete removed the entry: %v", err)
			}

			unticked := &confirmer{action: mcp.ElicitationResponseActionAccept, confirmed: false}
			c = e.connect(t, clientConfig{version: version, user: e.alice, opts: []client.ClientOption{client.WithElicitationHandler(unticked)}})
			if res := call(t, c, "delete_tag", map[string]any{"id": 1}); texts(res)[0] != `Deleting tag "old" (ID: 1) rejected by the user.` {
				t.Fatalf("unticked delete_tag = %q", texts(res))
			}
			if _, err := e.store.GetTag(ctx, e.alice.ID, 1); err != nil {
				t.Fatalf("unconfirmed delete removed the tag: %v", err)
			}

			accept := &confirmer{action: mcp.ElicitationResponseActionAccept, confirmed: true}
			c = e.connect(t, clientConfig{version: version, user: e.alice, opts: []client.ClientOption{client.WithElicitationHandler(accept)}})
			if out, res := ok(t, c, "delete_entry", map[string]any{"id": 2}); path(out, "success") != true || texts(res)[0] != `Entry "Drop me" (ID: 2) deleted successfully` {
				t.Fatalf("confirmed delete = %v", out)
			}
			if _, err := e.store.GetEntry(ctx, e.alice.ID, 2); epicme.ErrorCode(err) != epicme.ENOTFOUND {
				t.Fatalf("confirmed delete kept the entry: %v", err)
			}
			if out, _ := ok(t, c, "delete_tag", map[string]any{"id": 1}); path(out, "success") != true {
				t.Fatalf("confirmed delete_tag = %v", out)
			}
			if accept.asked.Load() != 2 {
				t.Errorf("accept asked %d times, want 2", accept.asked.Load())
			}
		})
	}
}

// suggester plays the client's model for tag suggestions.
type suggester struct {
	answer string
	calls  atomic.Int32
	mu     sync.Mutex
	req    mcp.CreateMessageRequest
}

func (s *suggester) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.req = req
	s.mu.Unlock()
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(s.answer)},
		Model:           "test-model",
	}, nil
}

// TestSamplingSuggestsTags checks tag suggestion after create_entry: on
// 2026-07-28 as a multi round-trip request whose retry links the tags
// without creating a second entry; on earlier revisions in the background
// after the result, over the session's GET stream, with a log notification.
func TestSamplingSuggestsTags(t *testing.T) {
	answer := "```json\n" + `[{"id": 1}, {"name": "Mountains", "description": "High places"}, {"name": "hiking"}, {"name": ""}, {"id": 77}, {"name": "a"}, {"name": "b"}]` + "\n```"
	for _, version := range []string{v20251125, v20260728} {
		t.Run(version, func(t *testing.T) {
			e := newTestEnv(t)
			ctx := context.Background()
			model := &suggester{answer: answer}
			var logs sync.Map
			c := e.connect(t, clientConfig{version: version, user: e.alice, listen: version != v20260728,
				opts: []client.ClientOption{client.WithSamplingHandler(model)}})
			c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == "notifications/message" {
					logs.Store(mustJSON(n.Params.AdditionalFields["data"]), true)
				}
			})
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if version != v20260728 {
				if err := c.SetLevel(lctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelInfo}}); err != nil {
					t.Fatal(err)
				}
			}
			ok(t, c, "create_tag", map[string]any{"name": "hiking"})

			out, res := ok(t, c, "create_entry", map[string]any{"title": "Summit", "content": "We climbed to the top."})
			if texts(res)[0] != `Entry "Summit" created successfully with ID "1"` && !strings.HasPrefix(texts(res)[0], `Entry "Summit" created successfully with ID "1". Suggested tags added: `) {
				t.Errorf("sentence = %q", texts(res)[0])
			}
			eventually(t, "suggested tags on the entry", func() bool {
				en, err := e.store.GetEntry(ctx, e.alice.ID, 1)
				return err == nil && len(en.Tags) == 2
			})
			en, _ := e.store.GetEntry(ctx, e.alice.ID, 1)
			var names []string
			for _, tg := range en.Tags {
				names = append(names, tg.Name)
			}
			// Only the first five suggestions count: the existing tag 1, the
			// new "Mountains", a duplicate, an empty name and a tag that is
			// not the user's.
			if got := strings.Join(names, ","); got != "hiking,Mountains" && got != "Mountains,hiking" {
				t.Errorf("entry tags = %v", names)
			}
			if model.calls.Load() != 1 {
				t.Errorf("model asked %d times", model.calls.Load())
			}
			if n := countEntries(t, e.store, e.alice.ID); n != 1 {
				t.Errorf("%d entries stored, want 1", n)
			}
			model.mu.Lock()
			req := model.req
			model.mu.Unlock()
			if !strings.Contains(req.CreateMessageParams.SystemPrompt, "JSON only") || req.CreateMessageParams.MaxTokens > 500 ||
				!strings.Contains(mustJSON(req.CreateMessageParams.Messages), "We climbed to the top.") || !strings.Contains(mustJSON(req.CreateMessageParams.Messages), "hiking") {
				t.Errorf("sampling request = %+v", req.CreateMessageParams)
			}
			if version == v20260728 {
				// The final result of the retried call carries the tags.
				if len(path(out, "entry", "tags").([]any)) != 2 {
					t.Errorf("final result tags = %v", path(out, "entry", "tags"))
				}
			} else {
				eventually(t, "the log notification", func() bool {
					found := false
					logs.Range(func(k, _ any) bool {
						found = found || strings.Contains(k.(string), `Added tags to entry \"Summit\" (ID: 1)`)
						return true
					})
					return found
				})
			}

			// Without the four entry/tag scopes, no sampling.
			scopes := "entries:read entries:write"
			limited := e.connect(t, clientConfig{version: version, user: e.alice, scopes: &scopes, listen: version != v20260728,
				opts: []client.ClientOption{client.WithSamplingHandler(model)}})
			if _, res := ok(t, limited, "create_entry", map[string]any{"title": "Plain", "content": "z"}); texts(res)[0] != `Entry "Plain" created successfully with ID "2"` {
				t.Errorf("limited = %q", texts(res))
			}
			if model.calls.Load() != 1 {
				t.Errorf("model asked without the scopes")
			}
		})
	}
}

// TestRequestStateRefused checks that the requestState of a multi
// round-trip request cannot be forged, replayed by another user or for other
// arguments, or used after it expires, and that a client cannot confirm a
// delete without the server's question.
func TestRequestStateRefused(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	plain := e.connect(t, clientConfig{version: v20260728, user: e.alice})
	ok(t, plain, "create_entry", map[string]any{"title": "Precious", "content": "keep"})
	ok(t, plain, "create_entry", map[string]any{"title": "Other", "content": "also kept"})
	bobClient := e.connect(t, clientConfig{version: v20260728, user: e.bob})
	ok(t, bobClient, "create_entry", map[string]any{"title": "Bob's", "content": "b"})

	elicitCaps := map[string]any{"elicitation": map[string]any{}}
	args := map[string]any{"id": 1}
	accept := map[string]any{inputConfirm: map[string]any{"action": "accept", "content": map[string]any{"confirmed": true}}}

	// The first round asks and hands out a state.
	h, body := modernCall(e.alice, "delete_entry", args, nil, elicitCaps)
	status, first := e.rawPost(t, h, body)
	if status != http.StatusOK || path(first, "result", "resultType") != "input_required" {
		t.Fatalf("first round = %d %v", status, first)
	}
	state, _ := path(first, "result", "requestState").(string)
	if state == "" || path(first, "result", "inputRequests", inputConfirm, "method") != "elicitation/create" {
		t.Fatalf("first round = %v", first)
	}

	refused := func(name string, user *epicme.User, args any, extra map[string]any) {
		t.Helper()
		h, body := modernCall(user, "delete_entry", args, extra, elicitCaps)
		_, got := e.rawPost(t, h, body)
		if path(got, "result", "isError") != true || !strings.Contains(mustJSON(path(got, "result", "content")), "requestState is invalid or expired") {
			t.Errorf("%s: %v", name, got)
		}
	}
	tampered := []byte(state)
	tampered[3] ^= 1
	expired := e.srv.sealState(roundTrip{UserID: e.alice.ID, Tool: "delete_entry", Args: argsHash(args), Target: 1, Expires: time.Now().Add(-time.Minute).Unix()})
	otherTool := e.srv.sealState(roundTrip{UserID: e.alice.ID, Tool: "delete_tag", Args: argsHash(args), Target: 1, Expires: time.Now().Add(time.Minute).Unix()})
	otherKey, _ := New(e.store, contextCallers, Options{Logger: quietLogger(), Secret: []byte("another-secret-another-secret-another-secret")})
	foreign := otherKey.sealState(roundTrip{UserID: e.alice.ID, Tool: "delete_entry", Args: argsHash(args), Target: 1, Expires: time.Now().Add(time.Minute).Unix()})
	otherKey.Close()

	refused("no state", e.alice, args, map[string]any{"inputResponses": accept})
	refused("garbage", e.alice, args, map[string]any{"inputResponses": accept, "requestState": "garbage"})
	refused("tampered", e.alice, args, map[string]any{"inputResponses": accept, "requestState": string(tampered)})
	refused("expired", e.alice, args, map[string]any{"inputResponses": accept, "requestState": expired})
	refused("other tool", e.alice, args, map[string]any{"inputResponses": accept, "requestState": otherTool})
	refused("other key", e.alice, args, map[string]any{"inputResponses": accept, "requestState": foreign})
	refused("other user", e.bob, args, map[string]any{"inputResponses": accept, "requestState": state})
	refused("other arguments", e.alice, map[string]any{"id": 2}, map[string]any{"inputResponses": accept, "requestState": state})
	for id := int64(1); id <= 2; id++ {
		if _, err := e.store.GetEntry(ctx, e.alice.ID, id); err != nil {
			t.Fatalf("a refused state deleted entry %d: %v", id, err)
		}
	}
	if _, err := e.store.GetEntry(ctx, e.bob.ID, 1); err != nil {
		t.Fatalf("bob's entry was deleted: %v", err)
	}

	// The genuine state with a genuine answer deletes.
	h, body = modernCall(e.alice, "delete_entry", args, map[string]any{"inputResponses": accept, "requestState": state}, elicitCaps)
	if _, got := e.rawPost(t, h, body); path(got, "result", "structuredContent", "success") != true {
		t.Fatalf("genuine retry = %v", got)
	}

	// create_entry: a retry with the state never creates a second entry,
	// however often it is sent; the first completes the request, the others
	// are refused (TestAttack_CompletedRequestStateReplayed).
	sampleCaps := map[string]any{"sampling": map[string]any{}}
	cargs := map[string]any{"title": "Once", "content": "only once"}
	h, body = modernCall(e.alice, "create_entry", cargs, nil, sampleCaps)
	_, first = e.rawPost(t, h, body)
	cstate, _ := path(first, "result", "requestState").(string)
	if cstate == "" {
		t.Fatalf("create_entry first round = %v", first)
	}
	before := countEntries(t, e.store, e.alice.ID)
	answer := map[string]any{inputSuggestTags: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": `[{"name":"once"}]`}}}
	for i := 0; i < 3; i++ {
		h, body = modernCall(e.alice, "create_entry", cargs, map[string]any{"inputResponses": answer, "requestState": cstate}, sampleCaps)
		_, got := e.rawPost(t, h, body)
		if completed := path(got, "result", "structuredContent", "entry", "title") == "Once"; completed != (i == 0) {
			t.Fatalf("retry %d = %v", i, got)
		}
	}
	if after := countEntries(t, e.store, e.alice.ID); after != before {
		t.Fatalf("retries created entries: %d -> %d", before, after)
	}
	h, body = modernCall(e.bob, "create_entry", cargs, map[string]any{"inputResponses": answer, "requestState": cstate}, sampleCaps)
	if _, got := e.rawPost(t, h, body); path(got, "result", "isError") != true {
		t.Fatalf("bob replayed alice's create state: %v", got)
	}
}

// TestStdioRoundTrips checks elicitation and sampling over stdio, where the
// server-initiated requests of the legacy revisions travel on the same pipe.
func TestStdioRoundTrips(t *testing.T) {
	for _, version := range []string{v20251125, v20260728} {
		t.Run(version, func(t *testing.T) {
			db, alice, _ := openTestStore(t)
			ctx := context.Background()
			model := &suggester{answer: `[{"name":"stdio"}]`}
			answer := &confirmer{action: mcp.ElicitationResponseActionDecline}
			c, _ := startStdio(t, db, alice, version, client.WithSamplingHandler(model), client.WithElicitationHandler(answer))
			ok(t, c, "create_entry", map[string]any{"title": "Piped", "content": "through stdio"})
			eventually(t, "the suggested tag", func() bool {
				en, err := db.GetEntry(ctx, alice.ID, 1)
				return err == nil && len(en.Tags) == 1 && en.Tags[0].Name == "stdio"
			})
			if res := call(t, c, "delete_entry", map[string]any{"id": 1}); texts(res)[0] != `Deleting entry "Piped" (ID: 1) rejected by the user.` {
				t.Fatalf("declined = %q", texts(res))
			}
			answer.action, answer.confirmed = mcp.ElicitationResponseActionAccept, true
			if out, _ := ok(t, c, "delete_entry", map[string]any{"id": 1}); path(out, "success") != true {
				t.Fatalf("accepted = %v", out)
			}
			if n := countEntries(t, db, alice.ID); n != 0 || model.calls.Load() != 1 {
				t.Errorf("%d entries, %d samplings", n, model.calls.Load())
			}
		})
	}
}

// TestSamplingSuggestionWaitsForTheGETStream: a client opens its GET stream
// after initialize on its own schedule, so a create_entry may come first.
// Its tag suggestion waits for the stream and goes out on it once it opens.
func TestSamplingSuggestionWaitsForTheGETStream(t *testing.T) {
	// Nobody answers the request read here: give up on it soon.
	e := newTestEnvWith(t, func(o *Options) { o.SamplingTimeout = 100 * time.Millisecond })
	c := e.connect(t, clientConfig{version: v20251125, user: e.alice,
		opts: []client.ClientOption{client.WithSamplingHandler(&suggester{answer: "[]"})}})
	ok(t, c, "create_entry", map[string]any{"title": "Summit", "content": "We climbed to the top."})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	req.Header.Set(hdrUser, e.alice.ID)
	req.Header.Set("Mcp-Session-Id", c.GetSessionId())
	req.Header.Set(mcp.HeaderProtocolVersion, v20251125)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), `"method":"sampling/createMessage"`) {
			if !strings.Contains(sc.Text(), "We climbed to the top.") {
				t.Fatalf("the sampling request is not about the entry: %s", sc.Text())
			}
			return
		}
	}
	t.Fatalf("no sampling request on the stream opened after create_entry: %v", sc.Err())
}
