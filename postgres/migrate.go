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

// loadMigrations reads and orders the migrations in fsys (under migrations/).
func loadMigrations(fsys fs.FS) ([]migration.Migration, error) {
	ms, err := migration.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, all in one transaction:
// PostgreSQL's DDL is transactional, so if one fails none is kept and the
// schema is as it was. The transaction first takes an advisory lock, so
// instances that start together queue here: the first applies what is
// missing, the others then find nothing left to do.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.connectError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: waiting for the migration lock on %s: %w", db.target, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: creating schema_migrations on %s: %w", db.target, err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres: reading schema_migrations on %s: %w", db.target, err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("postgres: reading schema_migrations on %s: %w", db.target, err)
	}
	applied := map[int]bool{}
	latest := 0
	for _, v := range versions {
		applied[v] = true
		latest = max(latest, v)
	}
	if n := len(ms); n > 0 && latest > ms[n-1].Version {
		return fmt.Errorf("postgres: database %s has schema version %d, newer than this program knows (%d): run a newer epicme", db.target, latest, ms[n-1].Version)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		// Without arguments pgx sends the file as one simple query, so a
		// migration may hold many statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("postgres: migration %s failed, database %s left unchanged: %w", m.Name, db.target, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("postgres: migration %s failed, database %s left unchanged: %w", m.Name, db.target, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: committing migrations on %s: %w", db.target, err)
	}
	return nil
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
func LatestSchemaVersion() int {
	ms, err := loadMigrations(migrationFS)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}
