package mcpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
)

// TestAttack_CompletedRequestStateReplayed: the requestState of a
// create_entry whose second round linked a suggested tag, sent again with
// another suggestion, must be refused with a clear error, on the instance
// that completed it and on another instance sharing the database: the
// HMAC proves the state genuine, not unused. On SQLite (two Servers on one
// file) and on PostgreSQL (two Servers on one database).
func TestAttack_CompletedRequestStateReplayed(t *testing.T) {
	ctx := context.Background()
	t.Run("SQLite", func(t *testing.T) {
		db, alice, bob := openTestStore(t)
		replayCompletedState(t, db, alice, bob)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		db, err := postgres.Open(ctx, pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		alice, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "alice@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		replayCompletedState(t, db, alice, bob)
	})
}

func replayCompletedState(t *testing.T, db epicme.Store, alice, bob *epicme.User) {
	ctx := context.Background()
	a := serveTestStore(t, db, alice, bob, func(*Options) {})
	b := serveTestStore(t, db, alice, bob, func(*Options) {})
	sampleCaps := map[string]any{"sampling": map[string]any{}}
	cargs := map[string]any{"title": "Once", "content": "only once"}
	suggest := func(tag string) map[string]any {
		return map[string]any{inputSuggestTags: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": `[{"name":"` + tag + `"}]`}}}
	}
	h, body := modernCall(alice, "create_entry", cargs, nil, sampleCaps)
	_, first := a.rawPost(t, h, body)
	state, _ := path(first, "result", "requestState").(string)
	if state == "" {
		t.Fatalf("create_entry first round = %v", first)
	}
	h, body = modernCall(alice, "create_entry", cargs, map[string]any{"inputResponses": suggest("first"), "requestState": state}, sampleCaps)
	if _, got := a.rawPost(t, h, body); path(got, "result", "isError") == true || !strings.Contains(mustJSON(got), "first") {
		t.Fatalf("the second round: %v", got)
	}
	for name, inst := range map[string]*testEnv{"the same instance": a, "another instance": b} {
		h, body = modernCall(alice, "create_entry", cargs, map[string]any{"inputResponses": suggest("replayed"), "requestState": state}, sampleCaps)
		_, got := inst.rawPost(t, h, body)
		if path(got, "result", "isError") != true || !strings.Contains(mustJSON(got), "already been used") {
			t.Errorf("replay on %s: %v, want an error saying the requestState was used", name, got)
		}
	}
	tags, err := db.ListTags(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || tags[0].Name != "first" {
		t.Fatalf("tags after the replays: %v, want only the one the completed round made", tags)
	}
}
