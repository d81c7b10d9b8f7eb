package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/epicme/epicme"
)

func search(t tb, s epicme.Store, userID, text string) []epicme.SearchHit {
	t.Helper()
	var all []epicme.SearchHit
	q := epicme.SearchQuery{Text: text}
	for i := 0; ; i++ {
		page, err := s.SearchEntries(context.Background(), userID, q)
		if err != nil {
			t.Fatalf("SearchEntries(%q): %v", text, err)
		}
		all = append(all, page.Results...)
		if page.NextCursor == "" {
			return all
		}
		if i > 1000 {
			t.Fatal("SearchEntries never ends")
		}
		q.Cursor = page.NextCursor
	}
}

// filler is text of n words none of which the tests search for.
func filler(n int) string {
	words := []string{"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
	}
	return b.String()
}

func testSearch(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("MatchesEveryWordInTitleOrContent", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		boat := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Sailing day", Content: "We took the boat out past the lighthouse."})
		lake := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Lake", Content: "Sailing on the LAKE, calm water."})
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Market", Content: "Bought bread and cheese."})
		equal(t, "sailing", sorted(ids(search(t, s, u.ID, "sailing"), hitID)), []int64{boat.ID, lake.ID})
		equal(t, "sailing lake", ids(search(t, s, u.ID, "Sailing lake"), hitID), []int64{lake.ID})
		equal(t, "boat", ids(search(t, s, u.ID, "BOAT"), hitID), []int64{boat.ID})
		equal(t, "sail (no prefix match)", len(search(t, s, u.ID, "sail")), 0)
		equal(t, "sailing volcano", len(search(t, s, u.ID, "sailing volcano")), 0)
		hits := search(t, s, u.ID, "lighthouse")
		if len(hits) != 1 || hits[0].Title != "Sailing day" || !hits[0].CreatedAt.Equal(boat.CreatedAt) {
			t.Fatalf("hit = %+v", hits)
		}
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Café", Content: "Über straße naïve 東京 2024"})
		for _, q := range []string{"café", "CAFÉ", "über", "STRASSE straße", "東京", "2024"} {
			want := []int64{e.ID}
			if q == "STRASSE straße" {
				want = nil // no stemming or folding beyond lower case
			}
			if got := ids(search(t, s, u.ID, q), hitID); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("search %q = %v, want %v", q, got, want)
			}
		}
	})

	t.Run("IndexFollowsUpdatesAndDeletes", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Morning", Content: "A heron by the pond."})
		if _, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{Content: ptr("A kingfisher by the pond.")}); err != nil {
			t.Fatal(err)
		}
		equal(t, "old word", len(search(t, s, u.ID, "heron")), 0)
		equal(t, "new word", ids(search(t, s, u.ID, "kingfisher"), hitID), []int64{e.ID})
		if _, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{Title: ptr("Evening")}); err != nil {
			t.Fatal(err)
		}
		equal(t, "old title", len(search(t, s, u.ID, "morning")), 0)
		equal(t, "new title", ids(search(t, s, u.ID, "evening kingfisher"), hitID), []int64{e.ID})
		if _, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{IsFavorite: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		equal(t, "after a non-text update", ids(search(t, s, u.ID, "kingfisher"), hitID), []int64{e.ID})
		if _, err := s.DeleteEntry(ctx, u.ID, e.ID); err != nil {
			t.Fatal(err)
		}
		equal(t, "after delete", len(search(t, s, u.ID, "kingfisher")), 0)
		// A failed create leaves nothing searchable.
		_, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "ghost", Content: "phantom", TagIDs: []int64{42}})
		wantCode(t, err, epicme.ENOTFOUND)
		equal(t, "after a failed create", len(search(t, s, u.ID, "phantom")), 0)
	})

	t.Run("RankingFavoursMoreOfTheRarerWord", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		// In this journal "apple" is rare and "banana" common, so an entry
		// with more apples beats one with more bananas, at equal length.
		apples := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "one", Content: "apple apple apple banana " + filler(20)})
		bananas := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "two", Content: "apple banana banana banana " + filler(20)})
		for i := range 8 {
			mustEntry(t, s, u.ID, epicme.NewEntry{Title: fmt.Sprint("b", i), Content: "banana " + filler(23)})
		}
		single := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "three", Content: "apple once " + filler(200)})
		_ = single
		equal(t, "apple banana", ids(search(t, s, u.ID, "apple banana"), hitID), []int64{apples.ID, bananas.ID})
		got := ids(search(t, s, u.ID, "apple"), hitID)
		if len(got) != 3 || got[2] != single.ID {
			t.Fatalf("apple = %v; want the long entry with one apple last", got)
		}
	})

	t.Run("RankingIgnoresOtherUsers", func(t *testing.T) {
		s := open(t)
		a, b := newUser(t, s), newUser(t, s)
		mustEntry(t, s, a.ID, epicme.NewEntry{Title: "one", Content: "apple apple apple banana " + filler(20)})
		mustEntry(t, s, a.ID, epicme.NewEntry{Title: "two", Content: "apple banana banana banana " + filler(20)})
		for i := range 8 {
			mustEntry(t, s, a.ID, epicme.NewEntry{Title: fmt.Sprint("b", i), Content: "banana " + filler(23)})
		}
		mustEntry(t, s, a.ID, epicme.NewEntry{Title: "short", Content: "apple"})
		mustEntry(t, s, a.ID, epicme.NewEntry{Title: "long", Content: "apple apple " + filler(120)})
		queries := []string{"apple banana", "apple", "banana"}
		before := map[string][]epicme.SearchHit{}
		for _, q := range queries {
			before[q] = search(t, s, a.ID, q)
		}
		// User B writes a lot about apples and nothing about bananas, in
		// entries of very different lengths: table-wide statistics would
		// now rank bananas above apples and change length normalisation.
		for i := range 60 {
			mustEntry(t, s, b.ID, epicme.NewEntry{Title: "apple", Content: strings.Repeat("apple ", 1+i%5) + filler(i*7)})
		}
		for _, q := range queries {
			equal(t, "A's results for "+q+" after B's writing", search(t, s, a.ID, q), before[q])
		}
		for _, h := range search(t, s, b.ID, "apple") {
			if h.Title != "apple" {
				t.Fatalf("B's search returned %+v", h)
			}
		}
		equal(t, "B searching for banana", len(search(t, s, b.ID, "banana")), 0)
	})

	t.Run("Snippet", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		long := filler(100) + " the <b>kingfisher</b> & \"friends\" dove into the water " + filler(100)
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Long", Content: long})
		hits := search(t, s, u.ID, "kingfisher")
		if len(hits) != 1 {
			t.Fatalf("hits = %+v", hits)
		}
		sn := hits[0].Snippet
		if !strings.Contains(sn, `<b>kingfisher</b> & "friends" dove`) {
			t.Fatalf("snippet %q does not hold the matched text verbatim", sn)
		}
		if n := len(strings.Fields(sn)); n < 20 || n > 40 {
			t.Fatalf("snippet has %d words, want about 30: %q", n, sn)
		}
		if !utf8.ValidString(sn) {
			t.Fatalf("snippet is not valid UTF-8: %q", sn)
		}
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "Heron in the title", Content: "Short\ncontent\there."})
		hits = search(t, s, u.ID, "heron")
		if len(hits) != 1 || hits[0].Snippet != "Short content here." {
			t.Fatalf("title-only match: snippet %q, want the start of the content", hits[0].Snippet)
		}
	})

	t.Run("OperatorsAreNotInterpreted", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "title x", Content: "a and near drop table entries"})
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "other", Content: "x marks the spot"})
		for _, q := range []string{`title:x`, `a AND`, `NEAR(`, `'; DROP TABLE entries; --`, `x*`, `^x`, `x OR y`, `"a" "and"`, `{title}: x`, `x NOT spot`, `-x`} {
			page, err := s.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: q})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			// The result is the plain search for the query's words.
			plain := search(t, s, u.ID, strings.Join(epicme.SearchTerms(q), " "))
			equal(t, "search "+q, ids(page.Results, hitID), ids(plain, hitID))
		}
		for _, q := range []string{`"`, `*`, `(`, `:`, `   `, ``} {
			_, err := s.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: q})
			wantInvalid(t, err, "query")
		}
		if got := listAll(t, s, u.ID, epicme.EntryFilter{}); len(got) != 2 {
			t.Fatalf("entries after hostile queries: %d, want 2", len(got))
		}
	})

	t.Run("Pages", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		for i := range 25 {
			mustEntry(t, s, u.ID, epicme.NewEntry{Title: fmt.Sprint("walk ", i), Content: strings.Repeat("walk ", 1+i%4) + filler(i)})
		}
		all, err := s.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "walk", Limit: 100})
		if err != nil || len(all.Results) != 25 || all.NextCursor != "" {
			t.Fatalf("one page = %d results, cursor %q, %v", len(all.Results), all.NextCursor, err)
		}
		var got []epicme.SearchHit
		q := epicme.SearchQuery{Text: "walk", Limit: 10}
		var sizes []int
		for {
			page, err := s.SearchEntries(ctx, u.ID, q)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Results))
			got = append(got, page.Results...)
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		equal(t, "page sizes", sizes, []int{10, 10, 5})
		equal(t, "paged results", got, all.Results)
		for _, c := range []string{"nope", "bm90IGEgY3Vyc29y"} {
			_, err := s.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "walk", Cursor: c})
			wantInvalid(t, err, "cursor")
		}
		_, err = s.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: strings.Repeat("w", epicme.MaxSearchQueryLen+1)})
		wantInvalid(t, err, "query")
		page, err := s.SearchEntries(ctx, newUser(t, s).ID, epicme.SearchQuery{Text: "walk"})
		if err != nil || page.Results == nil || len(page.Results) != 0 {
			t.Fatalf("a new user's search = %#v, %v; want an empty, non-nil list", page, err)
		}
	})
}

func sorted(xs []int64) []int64 {
	slices.Sort(xs)
	return xs
}
