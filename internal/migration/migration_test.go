package migration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/epicme/epicme/internal/migration"
)

func TestRule_MigrationFileNames(t *testing.T) {
	for _, bad := range []string{"1.sql", "x_name.sql", "0000_zero.sql", "abc.sql"} {
		_, err := migration.Load(fstest.MapFS{"migrations/" + bad: {Data: []byte("SELECT 1")}})
		if err == nil || !strings.Contains(err.Error(), "NNNN_description.sql") {
			t.Fatalf("%s: %v", bad, err)
		}
	}
	_, err := migration.Load(fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/001_b.sql": {}})
	if err == nil || !strings.Contains(err.Error(), "share version 1") {
		t.Fatalf("duplicate versions: %v", err)
	}
}

// fakeTx records what Run asks of a store.
type fakeTx struct {
	applied []int
	ran     []string
	fail    string
}

func (f *fakeTx) Applied(context.Context) ([]int, error) { return f.applied, nil }

func (f *fakeTx) Apply(_ context.Context, m migration.Migration) error {
	if m.Name == f.fail {
		return errors.New("syntax error")
	}
	f.ran = append(f.ran, m.Name)
	return nil
}

var files = fstest.MapFS{
	"migrations/0002_b.sql":   {Data: []byte("B")},
	"migrations/0001_a.sql":   {Data: []byte("A")},
	"migrations/0100_c.sql":   {Data: []byte("C")},
	"migrations/0010_d.sql":   {Data: []byte("D")},
	"migrations/README.md":    {Data: []byte("not a migration")},
	"other/0003_ignored.sql":  {Data: []byte("X")},
	"migrations/0003_e.sql":   {Data: []byte("E")},
	"migrations/0004_f.sql":   {Data: []byte("F")},
	"migrations/0005_g.sql":   {Data: []byte("G")},
	"migrations/0006_h.sql":   {Data: []byte("H")},
	"migrations/0007_i.sql":   {Data: []byte("I")},
	"migrations/0008_j.sql":   {Data: []byte("J")},
	"migrations/0009_k.sql":   {Data: []byte("K")},
	"migrations/0011_l.sql":   {Data: []byte("L")},
	"migrations/0012_m.sql":   {Data: []byte("M")},
	"migrations/0101_n.sql":   {Data: []byte("N")},
	"migrations/0110_o.sql":   {Data: []byte("O")},
	"migrations/0111_p.sql":   {Data: []byte("P")},
	"migrations/0200_q.sql":   {Data: []byte("Q")},
	"migrations/1000_r.sql":   {Data: []byte("R")},
	"migrations/9999_end.sql": {Data: []byte("Z")},
}

func TestRule_MigrationsApplyInNumericOrderEachOnce(t *testing.T) {
	tx := &fakeTx{applied: []int{1, 3, 100}}
	if err := migration.Run(context.Background(), files, tx, "store", "db"); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tx.ran, " ")
	want := "0002_b.sql 0004_f.sql 0005_g.sql 0006_h.sql 0007_i.sql 0008_j.sql 0009_k.sql 0010_d.sql 0011_l.sql 0012_m.sql 0101_n.sql 0110_o.sql 0111_p.sql 0200_q.sql 1000_r.sql 9999_end.sql"
	if got != want {
		t.Fatalf("ran %s\nwant %s", got, want)
	}
	if v := migration.Latest(files); v != 9999 {
		t.Fatalf("Latest = %d, want 9999", v)
	}
}

func TestRule_MigrationsRefuseANewerDatabase(t *testing.T) {
	tx := &fakeTx{applied: []int{1, 10000}}
	err := migration.Run(context.Background(), files, tx, "store", "db.sqlite")
	if err == nil || !strings.Contains(err.Error(), "store: database db.sqlite has schema version 10000, newer than this program knows (9999)") {
		t.Fatalf("Run = %v", err)
	}
	if len(tx.ran) != 0 {
		t.Fatalf("ran %v on a newer database", tx.ran)
	}
}

func TestRule_MigrationFailureNamesTheFile(t *testing.T) {
	tx := &fakeTx{fail: "0005_g.sql"}
	err := migration.Run(context.Background(), files, tx, "store", "db")
	if err == nil || !strings.Contains(err.Error(), "store: migration 0005_g.sql failed, database db left unchanged: syntax error") {
		t.Fatalf("Run = %v", err)
	}
}
