package authserver_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
	// In a synctest bubble the second passes on the bubble's clock, at
	// once; the database is a local file, opened and closed in the bubble.
	synctest.Test(t, func(t *testing.T) {
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
		time.Sleep(999 * time.Millisecond)
		if _, err := resolve.ResolveCaller(tctx); err != nil {
			t.Fatalf("within the second the cached row serves: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
		if _, err := resolve.ResolveCaller(tctx); epicme.ErrorCode(err) != epicme.EFORBIDDEN {
			t.Fatalf("a disabled account after a second: %v, want EFORBIDDEN", err)
		}
	})
}

// ExternalCallers maps (issuer, subject) to one local user, created on
// first use, and reuses the mapping: five requests, one EnsureUser.
func TestExternalCallersMapAndCacheTheUser(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counted := &countingUsers{UserService: db}
	resolve := authserver.ExternalCallers(counted)
	tctx := auth.ContextWithTokenInfo(ctx, &auth.TokenInfo{Issuer: "https://issuer.example", Subject: "ada", ClientID: "cli",
		Scopes: []string{epicme.ScopeEntriesRead}, Extra: map[string]any{"email": "ada@example.com"}})
	for i := 0; i < 5; i++ {
		c, err := resolve.ResolveCaller(tctx)
		if err != nil || c.User.Subject != "ada" || c.User.Email != "ada@example.com" || !c.Scopes.Has(epicme.ScopeEntriesRead) || c.ClientID != "cli" {
			t.Fatalf("%+v %v", c, err)
		}
	}
	if counted.n.Load() != 1 {
		t.Fatalf("%d EnsureUser calls for 5 requests of one user, want 1", counted.n.Load())
	}
	if _, err := resolve.ResolveCaller(ctx); epicme.ErrorCode(err) != epicme.EFORBIDDEN {
		t.Fatalf("no token: %v", err)
	}
}

type countingUsers struct {
	epicme.UserService
	n atomic.Int64
}

func (c *countingUsers) EnsureUser(ctx context.Context, issuer, subject, email string) (*epicme.User, error) {
	c.n.Add(1)
	return c.UserService.EnsureUser(ctx, issuer, subject, email)
}
