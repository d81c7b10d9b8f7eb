package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/migration"
)

// migrationFS holds the schema as numbered SQL files. A file named
// NNNN_description.sql is migration NNNN; files apply in numeric order, each
// once. New features add files with higher numbers (the authorization
// server's tables start at 0100); a released file is never edited.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// loadMigrations reads and orders the migrations in fsys (under migrations/).
func loadMigrations(fsys fs.FS) ([]migration.Migration, error) {
	ms, err := migration.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, all in one
// transaction: if one fails, none is kept and the schema is as it was.
// BEGIN IMMEDIATE (the writer's transaction mode) also keeps two processes
// that open a new file at once from both applying the same migration.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return openError(db.path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return openError(db.path, err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	tx := conn
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`); err != nil {
		return openError(db.path, err)
	}

	applied := map[int]bool{}
	latest := 0
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return openError(db.path, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return openError(db.path, err)
		}
		applied[v] = true
		latest = max(latest, v)
	}
	if err := rows.Close(); err != nil {
		return openError(db.path, err)
	}
	if n := len(ms); n > 0 && latest > ms[n-1].Version {
		return fmt.Errorf("sqlite: database %s has schema version %d, newer than this program knows (%d): run a newer epicme", db.path, latest, ms[n-1].Version)
	}

	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("sqlite: migration %s failed, database %s left unchanged: %w", m.Name, db.path, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("sqlite: migration %s failed, database %s left unchanged: %w", m.Name, db.path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `COMMIT`); err != nil {
		return openError(db.path, err)
	}
	committed = true
	return nil
}

// SchemaVersion returns the highest migration applied to the database.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.queryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
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
