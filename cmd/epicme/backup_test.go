package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/sqlite"
)

// TestBackupCopiesTheDatabase backs up a data directory with the command and
// opens the copy; a second backup to the same file is refused.
func TestBackupCopiesTheDatabase(t *testing.T) {
	c := newCLI(t)
	c.mustRun("migrate")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(c.dataDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "kept", Content: "in the copy"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	if got := c.mustRun("backup", "--out", out); !strings.Contains(got, out) {
		t.Fatalf("backup printed %q", got)
	}
	db.Close()
	cp, err := sqlite.Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if e, err := cp.GetEntry(ctx, u.ID, 1); err != nil || e.Title != "kept" {
		t.Fatalf("entry from the copy: %+v %v", e, err)
	}
	if code, _, errOut := c.run("", "backup", "--out", out); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("backup over an existing file: exit %d, %s", code, errOut)
	}
	if code, _, _ := c.run("", "backup"); code != 2 {
		t.Fatalf("backup without --out: exit %d, want 2", code)
	}
	empty := newCLI(t)
	if code, _, errOut := empty.run("", "backup", "--out", filepath.Join(t.TempDir(), "x.db")); code != 1 || !strings.Contains(errOut, "no database in") {
		t.Fatalf("backup of a data directory without a database: exit %d, %s", code, errOut)
	}
	c.vars["EPICME_DATABASE_URL"] = "postgres://127.0.0.1/x"
	if code, _, errOut := c.run("", "backup", "--out", filepath.Join(t.TempDir(), "y.db")); code != 2 || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("backup with EPICME_DATABASE_URL: exit %d, %s", code, errOut)
	}
}
