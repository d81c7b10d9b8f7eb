package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/epicme/epicme/sqlite"
	"github.com/epicme/epicme/storetest"
)

// The benchmarks share one fixture of benchUsers users with benchEntries
// entries of about 1 KB each, loaded with BulkInsert and optimised, as the
// bench package loads its larger one. The postgres package runs the same
// benchmarks on the same fixture.
const (
	benchUsers   = 200
	benchEntries = 100
)

var bench struct {
	once sync.Once
	dir  string
	db   *sqlite.DB
	fx   *storetest.BenchFixture
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.db != nil {
		bench.db.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// BenchmarkStore runs the storage benchmarks of storetest.Bench.
//
//	go test -run '^$' -bench . -benchtime 2s ./sqlite/ ./postgres/
func BenchmarkStore(b *testing.B) {
	bench.once.Do(func() {
		ctx := context.Background()
		if bench.dir, bench.err = os.MkdirTemp("", "epicme-bench-"); bench.err != nil {
			return
		}
		if bench.db, bench.err = sqlite.Open(ctx, filepath.Join(bench.dir, "epicme.db")); bench.err != nil {
			return
		}
		if bench.fx, bench.err = storetest.FillBenchFixture(ctx, bench.db, benchUsers, benchEntries); bench.err != nil {
			return
		}
		bench.err = bench.db.Optimize(ctx)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	storetest.Bench(b, bench.db, bench.fx)
}
