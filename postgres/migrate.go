package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/migration"
	"github.com/jackc/pgx/v5"
)

// migrationFS holds the schema as numbered SQL files. A file named
// NNNN_description.sql is migration NNNN; files apply in numeric order, each
// once. New features add files with higher numbers (the numbering follows the
// sqlite package's: the authorization server's tables start at 0100); a
// released file is never edited.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationSource is where migrations are read from: migrationFS, or a test's
// own files.
type migrationSource = fs.FS

// migrationLock is the key of the transaction-level advisory lock that
// serialises migrations (any constant works; this one spells "epicme" in
// ASCII). Advisory locks are per database, so databases sharing a server do
// not wait for each other.
//
// https://www.postgresql.org/docs/15/explicit-locking.html#ADVISORY-LOCKS
const migrationLock int64 = 0x657069636d65

// migrate applies the migrations the database lacks, all in one transaction:
// PostgreSQL's DDL is transactional, so if one fails none is kept and the
// schema is as it was. The transaction first takes an advisory lock, so
// instances that start together queue here: the first applies what is
// missing, the others then find nothing left to do.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.connectError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: waiting for the migration lock on %s: %w", db.target, err)
	}
	if err := migration.Run(ctx, fsys, migrationTx{tx, db.target}, "postgres", db.target); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: committing migrations on %s: %w", db.target, err)
	}
	return nil
}

// migrationTx is the PostgreSQL side of migration.Tx: a transaction holding
// migrationLock.
type migrationTx struct {
	tx     pgx.Tx
	target string
}

// Applied creates schema_migrations when missing and reads its versions.
func (m migrationTx) Applied(ctx context.Context) ([]int, error) {
	if _, err := m.tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("postgres: creating schema_migrations on %s: %w", m.target, err)
	}
	rows, err := m.tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations on %s: %w", m.target, err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("postgres: reading schema_migrations on %s: %w", m.target, err)
	}
	return vs, nil
}

// Apply runs the file without arguments, so pgx sends it as one simple
// query and a migration may hold many statements.
func (m migrationTx) Apply(ctx context.Context, mg migration.Migration) error {
	if _, err := m.tx.Exec(ctx, mg.SQL); err != nil {
		return err
	}
	_, err := m.tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, mg.Version, mg.Name)
	return err
}

// SchemaVersion returns the highest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, epicme.Internal(err)
	}
	return v, nil
}

// LatestSchemaVersion returns the highest migration this program carries.
func LatestSchemaVersion() int { return migration.Latest(migrationFS) }
