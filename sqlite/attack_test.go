package sqlite_test

import (
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/storetest"
)

// Every text field and search operator against the SQLite store; the same
// test runs on PostgreSQL.
func TestAttack_SQLInjection_Store(t *testing.T) {
	storetest.AttackSQLInjection(t, func(t *testing.T) epicme.Store { return MustOpenDB(t) })
}
