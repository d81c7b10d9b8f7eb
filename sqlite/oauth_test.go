package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/authservertest"
	"github.com/epicme/epicme/sqlite"
)

// TestOAuthStore runs the authorization server's storage contract on SQLite.
func TestOAuthStore(t *testing.T) {
	authservertest.Run(t, func(t *testing.T) (authserver.Store, string) {
		ctx := context.Background()
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "alice@example.com", PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		return db, u.ID
	})
}
