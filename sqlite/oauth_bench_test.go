package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver/authservertest"
	"github.com/epicme/epicme/sqlite"
)

// BenchmarkOAuthStore runs the authorization server's storage benchmarks
// (authservertest.Bench) on a fresh database; the postgres package runs
// the same set.
//
//	go test -run '^$' -bench OAuthStore -benchtime 1s ./sqlite/ ./postgres/
func BenchmarkOAuthStore(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "epicme.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bench@example.com", PasswordHash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	authservertest.Bench(b, db, u.ID)
}
