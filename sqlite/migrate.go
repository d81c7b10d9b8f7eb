package sqlite

import (
	"context"
	"database/sql"
	"embed"
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

// migrate applies the migrations the database lacks, all in one
// transaction: if one fails, none is kept and the schema is as it was.
// BEGIN IMMEDIATE (the writer's transaction mode) also keeps two processes
// that open a new file at once from both applying the same migration.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
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
	if err := migration.Run(ctx, fsys, migrationTx{conn, db.path}, "sqlite", db.path); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return openError(db.path, err)
	}
	committed = true
	return nil
}

// migrationTx is the SQLite side of migration.Tx: the writer's connection
// inside BEGIN IMMEDIATE.
type migrationTx struct {
	conn *sql.Conn
	path string
}

// Applied creates schema_migrations when missing and reads its versions.
func (tx migrationTx) Applied(ctx context.Context) ([]int, error) {
	if _, err := tx.conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	)`); err != nil {
		return nil, openError(tx.path, err)
	}
	rows, err := tx.conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, openError(tx.path, err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, openError(tx.path, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		return nil, openError(tx.path, err)
	}
	return vs, nil
}

// Apply runs m and records it.
func (tx migrationTx) Apply(ctx context.Context, m migration.Migration) error {
	if _, err := tx.conn.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	_, err := tx.conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name)
	return err
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
func LatestSchemaVersion() int { return migration.Latest(migrationFS) }
