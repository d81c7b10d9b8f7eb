package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/sqlite"
	"github.com/epicme/epicme/storetest"
)

// MustOpenDB opens a new database in a fresh temporary directory and closes
// it when the test ends.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "epicme.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) epicme.Store { return MustOpenDB(t) })
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "epicme.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "kept", Content: "still here"}); err != nil {
		t.Fatal(err)
	}
	v1, err := db.SchemaVersion(ctx)
	if err != nil || v1 != sqlite.LatestSchemaVersion() || v1 < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v1, err, sqlite.LatestSchemaVersion())
	}
	db.Close()
	for range 2 {
		db, err = sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if v, _ := db.SchemaVersion(ctx); v != v1 {
			t.Fatalf("SchemaVersion after reopen = %d, want %d", v, v1)
		}
		e, err := db.GetEntry(ctx, u.ID, 1)
		if err != nil || e.Title != "kept" {
			t.Fatalf("GetEntry after reopen = %+v, %v", e, err)
		}
		hits, err := db.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "still"})
		if err != nil || len(hits.Results) != 1 {
			t.Fatalf("search after reopen = %+v, %v", hits, err)
		}
		db.Close()
	}
}

// TestOpenRefusesBadFiles checks that each problem at start is reported with
// what is wrong and what to do, and that the file is left as it was.
func TestOpenRefusesBadFiles(t *testing.T) {
	ctx := context.Background()
	random := make([]byte, 8192)
	rand.Read(random)
	corruptBody := append([]byte("SQLite format 3\x00"), random[:4096]...)

	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path to open
		want  []string
	}{
		{"MissingDirectory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "missing", "epicme.db")
		}, []string{"does not exist", "mkdir -p"}},
		{"RandomBytes", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "epicme.db")
			writeFile(t, p, random)
			return p
		}, []string{"not a SQLite database", "backup"}},
		{"CorruptAfterHeader", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "epicme.db")
			writeFile(t, p, corruptBody)
			return p
		}, []string{"corrupt", "backup"}},
		{"ReadOnlyFile", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "epicme.db")
			db, err := sqlite.Open(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.Chmod(p, 0o444); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"read-only", "chmod u+w"}},
		{"ReadOnlyDirectory", func(t *testing.T, dir string) string {
			sub := filepath.Join(dir, "ro")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(sub, "epicme.db")
			db, err := sqlite.Open(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := os.Chmod(sub, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(sub, 0o755) })
			return p
		}, []string{"read-only", "-wal", "make it writable"}},
		{"Directory", func(t *testing.T, dir string) string {
			return dir
		}, []string{"not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := c.setup(t, dir)
			before := readDir(t, filepath.Dir(path))
			db, err := sqlite.Open(ctx, path)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) && c.name != "ReadOnlyDirectory" {
				t.Fatalf("error %q does not name the file", err)
			}
			after := readDir(t, filepath.Dir(path))
			equalFiles(t, before, after)
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readDir returns the name and content of every file in dir (nil if dir
// does not exist).
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			files[e.Name()+"/"] = nil
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func equalFiles(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: %d before, %d after", len(before), len(after))
	}
	for name, b := range before {
		a, ok := after[name]
		if !ok || !bytes.Equal(a, b) {
			t.Fatalf("file %s changed", name)
		}
	}
}

func TestDeleteUserCascades(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	var users [2]*epicme.User
	for i := range users {
		u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: string(rune('a'+i)) + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = u
		tag, _ := db.CreateTag(ctx, u.ID, epicme.NewTag{Name: "t"})
		for range 3 {
			if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "pebble", Content: "pebble beach", TagIDs: []int64{tag.ID}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.DeleteUser(ctx, users[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UserByID(ctx, users[0].ID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("deleted user: %v", err)
	}
	if n := db.CountRows(t, users[0].ID); n != 0 {
		t.Fatalf("%d rows of the deleted user remain", n)
	}
	hits, err := db.SearchEntries(ctx, users[1].ID, epicme.SearchQuery{Text: "pebble"})
	if err != nil || len(hits.Results) != 3 {
		t.Fatalf("the other user's search = %+v, %v", hits, err)
	}
	if n := db.CountRows(t, users[1].ID); n != 3+1+3+3 {
		t.Fatalf("the other user has %d rows, want 10", n)
	}
	if err := db.DeleteUser(ctx, users[0].ID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("second DeleteUser: %v", err)
	}
}

// TestConcurrentWritesAndReads checks that the single writer queues writes
// instead of failing with SQLITE_BUSY while readers run.
func TestConcurrentWritesAndReads(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u, _ := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "w@example.com"})
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "busy bees"}); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				if _, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: 10}); err != nil {
					errs <- err
				}
				if _, err := db.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "bees"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	f := epicme.EntryFilter{Limit: epicme.MaxPageSize}
	page, err := db.ListEntries(ctx, u.ID, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		seen[e.ID] = true
	}
	for id := int64(1); id <= writers*each; id++ {
		if !seen[id] {
			t.Fatalf("entry %d missing after concurrent writes", id)
		}
	}
}

func TestBulkInsert(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	u, _ := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bulk@example.com"})
	tags := []epicme.NewTag{{Name: "one"}, {Name: "two"}}
	var entries []epicme.NewEntry
	for i := range 50 {
		entries = append(entries, epicme.NewEntry{Title: "bulk", Content: "loaded quickly", TagIDs: []int64{int64(1 + i%2)}})
	}
	if err := db.BulkInsert(ctx, u.ID, entries, tags); err != nil {
		t.Fatal(err)
	}
	page, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: 100})
	if err != nil || len(page.Entries) != 50 || page.Entries[0].ID != 50 || page.Entries[0].TagCount != 1 {
		t.Fatalf("after BulkInsert: %d entries, first %+v, %v", len(page.Entries), page.Entries[0], err)
	}
	hits, _ := db.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "quickly", Limit: 100})
	if len(hits.Results) != 50 {
		t.Fatalf("search after BulkInsert: %d hits", len(hits.Results))
	}
	byTag, _ := db.ListEntries(ctx, u.ID, epicme.EntryFilter{TagIDs: []int64{2}, Limit: 100})
	if len(byTag.Entries) != 25 {
		t.Fatalf("entries with tag 2: %d", len(byTag.Entries))
	}
	// All or nothing: a missing tag rolls back the whole load.
	err = db.BulkInsert(ctx, u.ID, []epicme.NewEntry{{Title: "a", Content: "b"}, {Title: "a", Content: "b", TagIDs: []int64{7}}}, []epicme.NewTag{{Name: "three"}})
	if epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("BulkInsert with a missing tag: %v", err)
	}
	if tl, _ := db.ListTags(ctx, u.ID); len(tl) != 2 {
		t.Fatalf("a failed BulkInsert left tags: %v", tl)
	}
	if p, _ := db.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: 100}); len(p.Entries) != 50 {
		t.Fatalf("a failed BulkInsert left entries: %d", len(p.Entries))
	}
}
