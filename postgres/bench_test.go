package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/epicme/epicme/internal/testenv"

	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/epicme/epicme/storetest"
)

// The benchmarks share one fixture, the same as the sqlite package's:
// benchUsers users with benchEntries entries of about 1 KB each, loaded with
// BulkInsert and analysed.
const (
	benchUsers   = 200
	benchEntries = 100
)

var bench struct {
	once sync.Once
	drop func() error
	db   *postgres.DB
	fx   *storetest.BenchFixture
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.db != nil {
		bench.db.Close()
	}
	if bench.drop != nil {
		if err := bench.drop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// BenchmarkStore runs the storage benchmarks of storetest.Bench.
//
//	EPICME_TEST_POSTGRES_URL=... go test -run '^$' -bench . -benchtime 2s ./sqlite/ ./postgres/
func BenchmarkStore(b *testing.B) {
	bench.once.Do(func() {
		ctx := context.Background()
		var url string
		if url, bench.drop, bench.err = pgtest.CreateDatabase(ctx); bench.err != nil {
			return
		}
		if bench.db, bench.err = postgres.Open(ctx, url); bench.err != nil {
			return
		}
		if bench.fx, bench.err = storetest.FillBenchFixture(ctx, bench.db, benchUsers, benchEntries); bench.err != nil {
			return
		}
		bench.err = bench.db.Analyze(ctx)
	})
	if bench.err != nil {
		if strings.Contains(bench.err.Error(), pgtest.SkipMessage) {
			testenv.Missing(b, testenv.Postgres, bench.err.Error())
		}
		b.Fatal(bench.err)
	}
	storetest.Bench(b, bench.db, bench.fx)
}
