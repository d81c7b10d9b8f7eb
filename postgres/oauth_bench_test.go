package postgres_test

import (
	"context"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver/authservertest"
	"github.com/epicme/epicme/postgres/pgtest"
)

// BenchmarkOAuthStore runs the authorization server's storage benchmarks
// (authservertest.Bench) on a fresh database; the sqlite package runs the
// same set.
//
//	EPICME_TEST_POSTGRES_URL=... go test -run '^$' -bench OAuthStore -benchtime 1s ./sqlite/ ./postgres/
func BenchmarkOAuthStore(b *testing.B) {
	db := mustOpen(b, pgtest.NewDatabase(b))
	u, err := db.CreateUser(context.Background(), epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bench@example.com", PasswordHash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	authservertest.Bench(b, db, u.ID)
}
