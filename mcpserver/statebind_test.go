package mcpserver

import (
	"context"
	"strings"
	"testing"
)

// TestAttack_RequestStateReplayedWithNarrowerToken: a create_entry
// requestState obtained with a full-scope token, replayed with a token
// narrowed to entries:write and a crafted sampling answer, must neither
// create a tag (tags:write) nor reveal a tag name (tags:read), however often
// it is replayed; nor may another client of the same user replay it.
func TestAttack_RequestStateReplayedWithNarrowerToken(t *testing.T) {
	e := newTestEnv(t)
	sampleCaps := map[string]any{"sampling": map[string]any{}}
	cargs := map[string]any{"title": "Once", "content": "only once"}
	h, body := modernCall(e.alice, "create_entry", cargs, nil, sampleCaps)
	_, first := e.rawPost(t, h, body)
	state, _ := path(first, "result", "requestState").(string)
	if state == "" {
		t.Fatalf("create_entry first round = %v", first)
	}
	answer := map[string]any{inputSuggestTags: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": `[{"name":"secret-tag"}]`}}}
	for i := range 3 {
		h, body = modernCall(e.alice, "create_entry", cargs, map[string]any{"inputResponses": answer, "requestState": state}, sampleCaps)
		h.Set(hdrScopes, "entries:write")
		_, got := e.rawPost(t, h, body)
		if strings.Contains(mustJSON(got), "secret-tag") {
			t.Errorf("replay %d revealed a tag name to a token without tags:read: %v", i, got)
		}
	}
	h, body = modernCall(e.alice, "create_entry", cargs, map[string]any{"inputResponses": answer, "requestState": state}, sampleCaps)
	h.Set(hdrClient, "another-app")
	if _, got := e.rawPost(t, h, body); path(got, "result", "isError") != true {
		t.Errorf("another client replayed the state: %v", got)
	}
	tags, err := e.store.ListTags(context.Background(), e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Fatalf("replays created tags: %v", tags)
	}
}
