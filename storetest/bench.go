package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/epicme/epicme"
)

// BulkStore is a store that loads a user's journal in one transaction, as
// both stores do for fixtures.
type BulkStore interface {
	epicme.Store
	BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error
}

// BenchFixture is the journal the storage benchmarks read: Users users with
// Entries entries of about 1 KB each, their words drawn with a Zipf
// distribution from Vocab, so a few words are in nearly every entry and most
// are rare.
type BenchFixture struct {
	Users   []string
	Entries int
	Vocab   []string
}

// FillBenchFixture creates users x entries entries in s, the same journal on
// every store (the random source is seeded).
func FillBenchFixture(ctx context.Context, s BulkStore, users, entries int) (*BenchFixture, error) {
	r := rand.New(rand.NewPCG(1, 2))
	f := &BenchFixture{Entries: entries, Vocab: make([]string, 5000)}
	for i := range f.Vocab {
		w := make([]byte, 3+r.IntN(7))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		f.Vocab[i] = string(w)
	}
	z := rand.NewZipf(r, 1.1, 2, uint64(len(f.Vocab)-1))
	tags := []epicme.NewTag{{Name: "work"}, {Name: "home"}, {Name: "travel"}, {Name: "family"}, {Name: "health"}}
	for u := range users {
		user, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: fmt.Sprintf("user%d@example.com", u)})
		if err != nil {
			return nil, err
		}
		in := make([]epicme.NewEntry, entries)
		for i := range in {
			in[i] = epicme.NewEntry{
				Title:      f.text(r, z, 30),
				Content:    f.text(r, z, 1000),
				IsFavorite: i%5 == 0,
				TagIDs:     []int64{int64(1 + r.IntN(5)), int64(1 + r.IntN(5))},
			}
		}
		if err := s.BulkInsert(ctx, user.ID, in, tags); err != nil {
			return nil, err
		}
		f.Users = append(f.Users, user.ID)
	}
	return f, nil
}

// text returns text of about n bytes drawn from the vocabulary.
func (f *BenchFixture) text(r *rand.Rand, z *rand.Zipf, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Vocab[z.Uint64()])
	}
	return b.String()
}

// Bench runs the storage benchmarks on s, filled with f: the reads of the
// hot tools, searches of one and two words, and entry creation. Each store
// runs the same set, so their figures compare.
func Bench(b *testing.B, s epicme.Store, f *BenchFixture) {
	ctx := context.Background()
	n := len(f.Users)
	b.Run("GetEntry", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.GetEntry(ctx, f.Users[i%n], int64(1+i%f.Entries)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// GetEntryParallel is GetEntry from as many goroutines as GOMAXPROCS,
	// through the store's connection pool.
	b.Run("GetEntryParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for pb.Next() {
				if _, err := s.GetEntry(ctx, f.Users[r.IntN(n)], int64(1+r.IntN(f.Entries))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("ListEntries50", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			page, err := s.ListEntries(ctx, f.Users[i%n], epicme.EntryFilter{Limit: 50})
			if err != nil || len(page.Entries) != min(50, f.Entries) {
				b.Fatal(err)
			}
		}
	})
	search := func(b *testing.B, words func(i int) string) {
		b.ReportAllocs()
		i, hits := 0, 0
		for b.Loop() {
			i++
			page, err := s.SearchEntries(ctx, f.Users[i%n], epicme.SearchQuery{Text: words(i)})
			if err != nil {
				b.Fatal(err)
			}
			hits += len(page.Results)
		}
		b.ReportMetric(float64(hits)/float64(i), "hits/op")
	}
	// Search1Word searches for one of the ten most common words: the worst
	// case, where most of the user's entries match and are ranked.
	b.Run("Search1Word", func(b *testing.B) {
		search(b, func(i int) string { return f.Vocab[2+i%10] })
	})
	b.Run("Search2Words", func(b *testing.B) {
		search(b, func(i int) string { return f.Vocab[2+i%10] + " " + f.Vocab[20+i%50] })
	})
	b.Run("CreateEntry", func(b *testing.B) {
		r := rand.New(rand.NewPCG(3, 4))
		z := rand.NewZipf(r, 1.1, 2, uint64(len(f.Vocab)-1))
		in := epicme.NewEntry{Title: "benchmark", Content: f.text(r, z, 1000), TagIDs: []int64{1, 2}}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := s.CreateEntry(ctx, f.Users[i%n], in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
