package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/epicme/epicme"
)

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type pragmaQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func pragma(t *testing.T, q pragmaQuerier, name string) string {
	t.Helper()
	var v string
	if err := q.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestPragmasOnEveryConnection checks the settings on the writer and on
// every reader the pool opens, not just the first connection.
func TestPragmasOnEveryConnection(t *testing.T) {
	db := openTestDB(t)
	want := map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000"}
	db.mu.Lock()
	for name, v := range want {
		if got := pragma(t, db.conn, name); got != v {
			t.Errorf("writer: PRAGMA %s = %s, want %s", name, got, v)
		}
	}
	if got := pragma(t, db.conn, "query_only"); got != "0" {
		t.Errorf("writer: query_only = %s", got)
	}
	db.mu.Unlock()

	ctx := context.Background()
	var automerge int
	if err := db.read.QueryRowContext(ctx, `SELECT v FROM entries_fts_config WHERE k = 'automerge'`).Scan(&automerge); err != nil || automerge != 16 {
		t.Errorf("FTS5 automerge = %d, %v; want 16", automerge, err)
	}
	n := db.read.Stats().MaxOpenConnections
	conns := make([]*sql.Conn, n)
	for i := range conns {
		c, err := db.read.Conn(ctx) // all held at once: n distinct connections
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		for name, v := range want {
			if got := pragma(t, c, name); got != v {
				t.Errorf("reader %d: PRAGMA %s = %s, want %s", i, name, got, v)
			}
		}
		if got := pragma(t, c, "query_only"); got != "1" {
			t.Errorf("reader %d: query_only = %s, want 1", i, got)
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM users`); err == nil {
			t.Errorf("reader %d accepted a write", i)
		}
		c.Close()
	}
}

func realMigrations(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	names, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, n := range names {
		b, _ := fs.ReadFile(migrationFS, n)
		m[n] = &fstest.MapFile{Data: b}
	}
	return m
}

func tables(t *testing.T, db *DB) []string {
	t.Helper()
	pool := db.write // a database from rawDB has only this
	if db.read != nil {
		pool = db.read // Open holds the writer's only connection
	}
	// sqlite_stat* are the planner statistics PRAGMA optimize keeps.
	rows, err := pool.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_stat%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

// rawDB opens a file without migrating it.
func rawDB(t *testing.T, path string) *DB {
	t.Helper()
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	t.Cleanup(func() { w.Close() })
	return &DB{path: path, write: w}
}

func TestFailedMigrationLeavesSchemaUnchanged(t *testing.T) {
	ctx := context.Background()
	broken := &fstest.MapFile{Data: []byte("CREATE TABLE half_done (x);\nCREATE TABLE broken (;")}

	t.Run("NewFile", func(t *testing.T) {
		db := rawDB(t, filepath.Join(t.TempDir(), "epicme.db"))
		fsys := realMigrations(t)
		fsys["migrations/9000_broken.sql"] = broken
		err := db.migrate(ctx, fsys)
		if err == nil || !strings.Contains(err.Error(), "9000_broken.sql") || !strings.Contains(err.Error(), "unchanged") {
			t.Fatalf("migrate = %v; want an error naming the file", err)
		}
		if got := tables(t, db); len(got) != 0 {
			t.Fatalf("tables after a failed first migration: %v", got)
		}
	})

	t.Run("ExistingFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "epicme.db")
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		before := tables(t, db)
		v, _ := db.SchemaVersion(ctx)
		db.Close()

		raw := rawDB(t, path)
		fsys := realMigrations(t)
		fsys["migrations/8999_fine.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE fine (x);")}
		fsys["migrations/9000_broken.sql"] = broken
		if err := raw.migrate(ctx, fsys); err == nil {
			t.Fatal("migrate succeeded")
		}
		if got := tables(t, raw); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("tables after a failed migration: %v, want %v", got, before)
		}
		raw.write.Close()
		db, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got, _ := db.SchemaVersion(ctx); got != v {
			t.Fatalf("SchemaVersion = %d, want %d", got, v)
		}
	})
}

func TestMigrationsApplyInNumericOrderOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "epicme.db")
	fsys := realMigrations(t)
	// 9100 needs the table of 9002: numeric order, not the order given.
	fsys["migrations/9100_second.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO later (x) VALUES (1);")}
	fsys["migrations/9002_first.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE later (x);")}
	for range 3 {
		db := rawDB(t, path)
		if err := db.migrate(ctx, fsys); err != nil {
			t.Fatal(err)
		}
		var rows, applied, maxV int
		db.write.QueryRow(`SELECT count(*) FROM later`).Scan(&rows)
		db.write.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&applied, &maxV)
		if rows != 1 || maxV != 9100 || applied != len(fsys) {
			t.Fatalf("rows %d, applied %d, max %d; want 1, %d, 9100", rows, applied, maxV, len(fsys))
		}
		db.write.Close()
	}
	// The program's own migrations are older than this file now.
	_, err := Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer than this program") || !strings.Contains(err.Error(), "9100") {
		t.Fatalf("Open of a newer database = %v", err)
	}
}

// TestCloseIsSafeTwiceAndWritesFailAfter covers the shutdown path.
func TestCloseIsSafeTwiceAndWritesFailAfter(t *testing.T) {
	db := openTestDB(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); db.Close() }()
	}
	wg.Wait()
	if err := db.SetPasswordHash(context.Background(), "x", "y"); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// TestQueryPlansUseIndexes checks that the queries behind every request
// reach rows through an index, never by scanning a table or sorting a
// result (sorting one entry's tags is fine): their
// cost must grow with one user's journal, not with the database.
func TestQueryPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	list := func(f epicme.EntryFilter) string {
		f.Validate()
		q, _, err := listQuery("u", f)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	queries := map[string]string{
		"GetEntry":          getEntrySQL,
		"GetTag":            getTagSQL,
		"ListEntries":       list(epicme.EntryFilter{}),
		"ListEntriesCursor": list(epicme.EntryFilter{Cursor: encodeListCursor(1, 2), From: time.Unix(1, 0), To: time.Unix(2, 0), FavoritesOnly: true}),
		"ListEntriesTags":   list(epicme.EntryFilter{TagIDs: []int64{1, 2}}),
		"ListTags":          `SELECT id, name FROM tags WHERE user_id = ? ORDER BY name_key, id`,
		"SearchStats":       searchStatsSQL,
		"SearchMatch":       searchMatchSQL,
		"SearchLoad":        searchLoadSQL,
		"UserByIdentity":    `SELECT ` + userColumns + ` FROM users WHERE issuer = ? AND subject = ?`,
		"LocalUserByEmail":  `SELECT ` + userColumns + ` FROM users WHERE issuer = 'local' AND email = ?`,
		"Link":              `SELECT id, created_at, updated_at FROM entry_tags WHERE user_id = ? AND entry_id = ? AND tag_id = ?`,
	}
	bad := regexp.MustCompile(`SCAN (entries|e|tags|t|entry_tags|et|users|u)\b|TEMP B-TREE FOR ORDER BY`)
	for name, q := range queries {
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = 1
		}
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); bad.MatchString(p) {
			t.Errorf("%s scans or sorts:\n%s", name, p)
		}
	}
}
