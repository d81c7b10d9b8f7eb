package authserver_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/sqlite"
)

// An account disabled by another process is refused within the user
// cache's lifetime (one second), and a user's row is read once per lifetime,
// not once per call.
func TestCallersRefuseDisabledAccountWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://as.example.com"
	resolve := authserver.Callers(db, issuer)
	tctx := auth.ContextWithTokenInfo(ctx, &auth.TokenInfo{Issuer: issuer, Subject: u.ID, Scopes: []string{epicme.ScopeEntriesRead}})

	c1, err := resolve.ResolveCaller(tctx)
	if err != nil || c1.User.ID != u.ID {
		t.Fatalf("first call: %v %v", c1, err)
	}
	c2, err := resolve.ResolveCaller(tctx)
	if err != nil || c2.User != c1.User {
		t.Fatalf("second call read the user again or failed: %v", err)
	}

	if err := db.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := resolve.ResolveCaller(tctx); epicme.ErrorCode(err) != epicme.EFORBIDDEN {
		t.Fatalf("a disabled account after a second: %v, want EFORBIDDEN", err)
	}
}
