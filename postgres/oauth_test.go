package postgres_test

import (
	"context"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/authservertest"
	"github.com/epicme/epicme/postgres/pgtest"
)

// TestOAuthStore runs the authorization server's storage contract on
// PostgreSQL, each subtest on an empty schema of one database.
func TestOAuthStore(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	authservertest.Run(t, func(t *testing.T) (authserver.Store, string) {
		db := mustOpen(t, pgtest.NewSchema(t, dbURL))
		u, err := db.CreateUser(context.Background(), epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "alice@example.com", PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		return db, u.ID
	})
}
