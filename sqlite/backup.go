package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Backup writes a consistent copy of the database to path while the server
// keeps running: VACUUM INTO reads one snapshot inside a read transaction,
// which in WAL mode neither blocks writers nor sees their later commits, and
// writes a compact, self-contained file (no -wal beside it).
//
// It runs on a connection of its own, since the reader pool's connections
// are query_only. path must not exist; the copy is made readable by the
// owner only, as it holds password hashes and sealed keys.
//
// https://www.sqlite.org/lang_vacuum.html#vacuuminto
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: %s exists; choose a new file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	// Create the file first so that it is private from the start; VACUUM
	// INTO accepts an existing empty file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f.Close()
	conn, err := sql.Open("sqlite", dsn(db.path, false))
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("backup: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("backup of %s to %s: %w", db.path, path, err)
	}
	return nil
}
