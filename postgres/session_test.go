package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/epicme/epicme"
)

// TestRule_SessionIDStoredOnlyAsHash: the table of MCP sessions holds the
// SHA-256 of a session id, never the id.
func TestRule_SessionIDStoredOnlyAsHash(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	id := "mcp-session-0123456789abcdef0123456789abcdef"
	if err := db.CreateSession(ctx, &epicme.MCPSession{ID: id, UserID: u.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.Subscribe(ctx, u.ID, id, "epicme://tags"); err != nil {
		t.Fatal(err)
	}
	var keys, raw int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM mcp_sessions WHERE key = $1`, epicme.SessionKey(id)).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool().QueryRow(ctx, `SELECT
		(SELECT count(*) FROM mcp_sessions WHERE strpos(key || user_id || client_id || capabilities, $1) > 0) +
		(SELECT count(*) FROM mcp_session_subscriptions WHERE strpos(session_key, $1) > 0)`, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if keys != 1 || raw != 0 {
		t.Fatalf("rows under the hash: %d (want 1); rows holding the id: %d (want 0)", keys, raw)
	}
}
