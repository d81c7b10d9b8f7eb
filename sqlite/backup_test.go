package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/sqlite"
)

// TestBackupWhileWriting backs up while another goroutine keeps creating
// entries: the copy opens, passes integrity_check, and holds a prefix of the
// writes (every entry up to some id, none missing below it).
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := MustOpenDB(t)
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: fmt.Sprint("entry ", i), Content: "written during the backup"}); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := written.Load(); n < 50 {
			return fmt.Errorf("%d entries written before the backup, want 50", n)
		}
		return nil
	})
	out := filepath.Join(dir, "backup.db")
	if err := db.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := db.Backup(ctx, out); err == nil {
		t.Fatal("a backup over an existing file must fail")
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	raw, err := sql.Open("sqlite", out)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var check string
	if err := raw.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	var n, count int64
	if err := raw.QueryRowContext(ctx, `SELECT coalesce(max(id), 0), count(*) FROM entries`).Scan(&n, &count); err != nil {
		t.Fatal(err)
	}
	if n < 50 || count != n {
		t.Fatalf("the backup holds %d entries with ids up to %d; want 1..n with n >= 50", count, n)
	}
	// The copy is a working database: the store opens it and reads it.
	copyDB, err := sqlite.Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if e, err := copyDB.GetEntry(ctx, u.ID, n); err != nil || e.Title != fmt.Sprint("entry ", n-1) {
		t.Fatalf("entry %d from the backup: %+v %v", n, e, err)
	}
	t.Logf("backup holds entries 1..%d; %d written in all", n, written.Load())
}
