package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
)

// The benchmarks share one fixture, the same as the sqlite package's:
// benchUsers users with benchEntries entries of about 1 KB each, words drawn
// from one Zipf-distributed vocabulary, loaded with BulkInsert and analysed.
const (
	benchUsers   = 200
	benchEntries = 100
)

var bench struct {
	once  sync.Once
	drop  func() error
	db    *postgres.DB
	users []string
	vocab []string
	err   error
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

// benchText returns text of about n bytes drawn from vocab with a Zipf
// distribution, so a few words are in nearly every entry and most are rare.
func benchText(r *rand.Rand, z *rand.Zipf, vocab []string, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(vocab[z.Uint64()])
	}
	return b.String()
}

func benchDB(b *testing.B) *postgres.DB {
	b.Helper()
	bench.once.Do(func() {
		ctx := context.Background()
		var url string
		if url, bench.drop, bench.err = pgtest.CreateDatabase(ctx); bench.err != nil {
			return
		}
		if bench.db, bench.err = postgres.Open(ctx, url); bench.err != nil {
			return
		}
		r := rand.New(rand.NewPCG(1, 2))
		bench.vocab = make([]string, 5000)
		for i := range bench.vocab {
			w := make([]byte, 3+r.IntN(7))
			for j := range w {
				w[j] = byte('a' + r.IntN(26))
			}
			bench.vocab[i] = string(w)
		}
		z := rand.NewZipf(r, 1.1, 2, uint64(len(bench.vocab)-1))
		tags := []epicme.NewTag{{Name: "work"}, {Name: "home"}, {Name: "travel"}, {Name: "family"}, {Name: "health"}}
		for u := range benchUsers {
			user, err := bench.db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: fmt.Sprintf("user%d@example.com", u)})
			if err != nil {
				bench.err = err
				return
			}
			entries := make([]epicme.NewEntry, benchEntries)
			for i := range entries {
				entries[i] = epicme.NewEntry{
					Title:      benchText(r, z, bench.vocab, 30),
					Content:    benchText(r, z, bench.vocab, 1000),
					IsFavorite: i%5 == 0,
					TagIDs:     []int64{int64(1 + r.IntN(5)), int64(1 + r.IntN(5))},
				}
			}
			if bench.err = bench.db.BulkInsert(ctx, user.ID, entries, tags); bench.err != nil {
				return
			}
			bench.users = append(bench.users, user.ID)
		}
		bench.err = bench.db.Analyze(ctx)
	})
	if bench.err != nil {
		if strings.Contains(bench.err.Error(), pgtest.SkipMessage) {
			b.Skip(bench.err)
		}
		b.Fatal(bench.err)
	}
	return bench.db
}

func BenchmarkGetEntry(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := db.GetEntry(ctx, bench.users[i%benchUsers], int64(1+i%benchEntries)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetEntryParallel is GetEntry from as many goroutines as
// GOMAXPROCS, through the connection pool.
func BenchmarkGetEntryParallel(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			if _, err := db.GetEntry(ctx, bench.users[r.IntN(benchUsers)], int64(1+r.IntN(benchEntries))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkListEntries50(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		page, err := db.ListEntries(ctx, bench.users[i%benchUsers], epicme.EntryFilter{Limit: 50})
		if err != nil || len(page.Entries) != 50 {
			b.Fatal(len(page.Entries), err)
		}
	}
}

func benchSearch(b *testing.B, words func(i int) string) {
	db := benchDB(b)
	ctx := context.Background()
	b.ReportAllocs()
	i, hits := 0, 0
	for b.Loop() {
		i++
		page, err := db.SearchEntries(ctx, bench.users[i%benchUsers], epicme.SearchQuery{Text: words(i)})
		if err != nil {
			b.Fatal(err)
		}
		hits += len(page.Results)
	}
	b.ReportMetric(float64(hits)/float64(i), "hits/op")
}

// BenchmarkSearch1Word searches for one of the ten most common words: the
// worst case, where most of the user's entries match and are ranked.
func BenchmarkSearch1Word(b *testing.B) {
	benchSearch(b, func(i int) string { return bench.vocab[2+i%10] })
}

func BenchmarkSearch2Words(b *testing.B) {
	benchSearch(b, func(i int) string { return bench.vocab[2+i%10] + " " + bench.vocab[20+i%50] })
}

func BenchmarkCreateEntry(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(bench.vocab)-1))
	in := epicme.NewEntry{Title: "benchmark", Content: benchText(r, z, bench.vocab, 1000), TagIDs: []int64{1, 2}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := db.CreateEntry(ctx, bench.users[i%benchUsers], in); err != nil {
			b.Fatal(err)
		}
	}
}
