package postgres

import (
	"context"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres/pgtest"
)

// realMigrations returns the embedded migrations plus extra files.
func realMigrations(t *testing.T, extra map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, _ := fs.ReadFile(migrationFS, n)
		m[n] = &fstest.MapFile{Data: b}
	}
	for n, sql := range extra {
		m["migrations/"+n] = &fstest.MapFile{Data: []byte(sql)}
	}
	return m
}

// tables lists the tables of the public schema.
func tables(t *testing.T, db *DB) []string {
	t.Helper()
	var names []string
	rows, err := db.pool.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

const brokenMigration = `CREATE TABLE should_vanish (x integer);
ALTER TABLE entries ADD COLUMN should_vanish integer;
SELECT 1 / 0;`

// TestFailedMigrationLeavesSchemaUnchanged applies a migration that fails
// halfway, on a new database and on one already at the current version:
// neither keeps any of its statements, and the error names the file.
func TestFailedMigrationLeavesSchemaUnchanged(t *testing.T) {
	ctx := context.Background()
	broken := realMigrations(t, map[string]string{"9001_broken.sql": brokenMigration})

	t.Run("NewDatabase", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		_, err := open(ctx, url, Options{}, broken)
		if err == nil || !strings.Contains(err.Error(), "9001_broken.sql failed") || !strings.Contains(err.Error(), "left unchanged") {
			t.Fatalf("Open with a broken migration: %v", err)
		}
		// Open with no migrations at all, to look without changing anything.
		db, err := open(ctx, url, Options{}, fstest.MapFS{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got := tables(t, db); strings.Join(got, ",") != "schema_migrations" {
			t.Fatalf("tables after a failed first migration: %v, want only the (empty) schema_migrations", got)
		}
		if v, err := db.SchemaVersion(ctx); v != 0 || err != nil {
			t.Fatalf("SchemaVersion = %d, %v; want 0", v, err)
		}
	})

	t.Run("ExistingDatabase", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "before", Content: "kept"}); err != nil {
			t.Fatal(err)
		}
		before := tables(t, db)
		if _, err := open(ctx, url, Options{}, broken); err == nil || !strings.Contains(err.Error(), "9001_broken.sql") {
			t.Fatalf("Open with a broken migration: %v", err)
		}
		if got := tables(t, db); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("tables = %v, want %v", got, before)
		}
		var cols int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'entries' AND column_name = 'should_vanish'`).Scan(&cols); err != nil || cols != 0 {
			t.Fatalf("entries.should_vanish exists (%d, %v)", cols, err)
		}
		if v, _ := db.SchemaVersion(ctx); v != LatestSchemaVersion() {
			t.Fatalf("SchemaVersion = %d, want %d", v, LatestSchemaVersion())
		}
		if e, err := db.GetEntry(ctx, u.ID, 1); err != nil || e.Title != "before" {
			t.Fatalf("GetEntry = %+v, %v", e, err)
		}
		// A fixed migration is then applied once.
		fixed := realMigrations(t, map[string]string{"9001_fixed.sql": `ALTER TABLE entries ADD COLUMN extra integer;`})
		for range 2 {
			db2, err := open(ctx, url, Options{}, fixed)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := db2.SchemaVersion(ctx); v != 9001 {
				t.Fatalf("SchemaVersion after the fix = %d, want 9001", v)
			}
			db2.Close()
		}
		// This program does not know 9001: it must refuse the database.
		if _, err := Open(ctx, url); err == nil || !strings.Contains(err.Error(), "newer than this program knows") {
			t.Fatalf("Open of a newer schema: %v", err)
		}
	})
}

func TestTsLexemeIsNeverSyntax(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, w := range []string{"1.a", "it's", `back\slash`, "a & b | !c", "x:*", "'", "<->"} {
		var got string
		if err := db.pool.QueryRow(ctx, `SELECT $1::tsquery::text`, tsLexeme(w)).Scan(&got); err != nil {
			t.Fatalf("%q: %v", w, err)
		}
		var match bool
		if err := db.pool.QueryRow(ctx, `SELECT array_to_tsvector(ARRAY[$1]) @@ $2::tsquery`, w, tsLexeme(w)).Scan(&match); err != nil || !match {
			t.Fatalf("%q: the quoted lexeme %s (%s) does not match itself: %v", w, tsLexeme(w), got, err)
		}
	}
}

// TestQueryPlansUseIndexes checks that the statements behind every request
// reach rows through an index on the user's key, so that their cost grows
// with one user's journal, not with the database; search must go through
// the GIN index of the user's prefixed words. Sequential scans are priced
// out (enable_seqscan = off) because on a test-sized table the planner
// rightly prefers them: what is checked is that an index path exists.
func TestQueryPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var users []*epicme.User
	for i := range 3 {
		u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "u" + string(rune('a'+i)) + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		entries := make([]epicme.NewEntry, 50)
		for k := range entries {
			entries[k] = epicme.NewEntry{Title: "walk", Content: "by the river and the lake", TagIDs: []int64{1}}
		}
		if err := db.BulkInsert(ctx, u.ID, entries, []epicme.NewTag{{Name: "x"}}); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	uid := users[1].ID
	var rid int64
	if err := db.pool.QueryRow(ctx, `SELECT rid FROM users WHERE id = $1`, uid).Scan(&rid); err != nil {
		t.Fatal(err)
	}
	walk, lake := tsLexeme(ridPrefix(rid)+"walk"), tsLexeme(ridPrefix(rid)+"lake")
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	list := func(f epicme.EntryFilter) (string, []any) {
		f.Validate()
		q, args, err := listQuery(uid, f)
		if err != nil {
			t.Fatal(err)
		}
		return q, args
	}
	type query struct {
		sql  string
		args []any
	}
	q1, a1 := list(epicme.EntryFilter{})
	q2, a2 := list(epicme.EntryFilter{Cursor: encodeListCursor(db.now(), 2), From: db.now().Add(-time.Hour), To: db.now(), FavoritesOnly: true})
	q3, a3 := list(epicme.EntryFilter{TagIDs: []int64{1, 2}})
	queries := map[string]query{
		"GetEntry":          {getEntrySQL, []any{uid, 1}},
		"GetTag":            {getTagSQL, []any{uid, 1}},
		"ListEntries":       {q1, a1},
		"ListEntriesCursor": {q2, a2},
		"ListEntriesTags":   {q3, a3},
		"ListTags":          {`SELECT id, name FROM tags WHERE user_id = $1 ORDER BY name_key, id`, []any{uid}},
		"SearchCorpus":      {searchCorpusSQL, []any{uid}},
		"SearchCount":       {searchCountSQL, []any{uid, walk}},
		"SearchLoad":        {searchLoadSQL, []any{uid, walk + " & " + lake}},
		"UserByIdentity":    {`SELECT ` + userColumns + ` FROM users WHERE issuer = $1 AND subject = $2`, []any{"a", "b"}},
		"LocalUserByEmail":  {`SELECT ` + userColumns + ` FROM users WHERE issuer = 'local' AND email = $1`, []any{"a"}},
		"Link":              {`SELECT id, created_at, updated_at FROM entry_tags WHERE user_id = $1 AND entry_id = $2 AND tag_id = $3`, []any{uid, 1, 1}},
	}
	// A scan of a journal table's b-tree must be bounded by the user's key;
	// the GIN index holds only this user's words by construction.
	scan := regexp.MustCompile(`Scan (?:Backward )?(?:using|on) (\w+)`)
	userBound := regexp.MustCompile(`(Index|Recheck) Cond: \(+user_id = `)
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET enable_seqscan`)
	for name, q := range queries {
		rows, err := conn.Query(ctx, `EXPLAIN `+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plan := strings.Join(lines, "\n")
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s: the plan scans a whole table:\n%s", name, plan)
		}
		for i, l := range lines {
			m := scan.FindStringSubmatch(l)
			if m == nil || strings.HasPrefix(m[1], "users") || m[1] == "entries_search" {
				continue
			}
			if i+1 >= len(lines) || !userBound.MatchString(lines[i+1]) {
				t.Errorf("%s: %s is not bounded by the user's key:\n%s", name, m[1], plan)
			}
		}
		if strings.HasPrefix(name, "Search") {
			t.Logf("%s:\n%s", name, plan)
		}
	}
}
