package postgres_test

import (
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/epicme/epicme/storetest"
)

// Every text field and search operator against the PostgreSQL store; the
// same test runs on SQLite.
func TestAttack_SQLInjection_Store(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	storetest.AttackSQLInjection(t, func(t *testing.T) epicme.Store { return mustOpen(t, pgtest.NewSchema(t, dbURL)) })
}
