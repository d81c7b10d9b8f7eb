package epicme

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestIndexWordsMatchSearchTerms checks that entries are indexed with exactly
// the words SearchTerms makes of a query, whatever the text: otherwise a word
// could be typed in a query but never found in the index.
func TestIndexWordsMatchSearchTerms(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, s string) {
		var got []string
		eachWord(s, func(start, end int, w string) bool {
			if strings.ToLower(s[start:end]) != w {
				t.Fatalf("span %q of %q gave word %q", s[start:end], s, w)
			}
			got = append(got, w)
			return len(got) < maxSearchTerms
		})
		if want := SearchTerms(s); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("words of %q = %q, SearchTerms = %q", s, got, want)
		}
		words, n := SearchIndexWords(s, "")
		q := SearchQuery{Text: s}
		if terms := q.Terms(); len(terms) < maxSearchTerms && strings.Join(words, "\x00") != strings.Join(terms, "\x00") {
			t.Fatalf("SearchIndexWords(%q) = %q, distinct SearchTerms = %q", s, words, terms)
		}
		if n < len(words) {
			t.Fatalf("SearchIndexWords(%q) length %d < %d distinct words", s, n, len(words))
		}
	}
	for _, s := range []string{"", "Hello, World! hello", "ÉTÉ été Straße İstanbul", "東京タワー 2024年", "a_b-c.d'e", "ǅemal ǈ ǋ", "x\u0301y", "ⅠⅡ ⅰ", "mixedCASE123abc", "\xff\xfe bad utf8"} {
		check(t, s)
	}
	rapid.Check(t, func(rt *rapid.T) {
		check(rt, rapid.String().Draw(rt, "text"))
	})
}

func TestSearchIndexWordsCountsTitleAndContent(t *testing.T) {
	words, n := SearchIndexWords("Walk, walk", "the WALK to the lake")
	if strings.Join(words, " ") != "walk the to lake" || n != 7 {
		t.Fatalf("SearchIndexWords = %q, %d", words, n)
	}
}

func TestSearchSnippet(t *testing.T) {
	words := func(n int, w string) string { return strings.TrimSpace(strings.Repeat(w+" ", n)) }
	cases := []struct{ content, want string }{
		{"Short text here.", "Short text here."},
		{"the target is here", "the target is here"},
		{words(20, "a") + " (target) " + words(40, "b"), "…" + words(8, "a") + " (target) " + words(21, "b") + "…"},
		{"  spaced\n\n target\tline  ", "spaced target line"},
		{words(50, "z"), words(30, "z") + "…"},
		{words(29, "z") + " end.", words(29, "z") + " end."},
		{"", ""},
	}
	for _, c := range cases {
		if got := searchSnippet(c.content, []string{"target"}); got != c.want {
			t.Errorf("searchSnippet(%q) =\n %q, want\n %q", c.content, got, c.want)
		}
	}
}

func TestRankSearchOrdersByPerUserBM25AndPages(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	var cands []SearchCandidate
	for i := range 7 {
		content := strings.Repeat("walk ", 1+i%3) + strings.Repeat("x ", 10)
		cands = append(cands, SearchCandidate{ID: int64(i + 1), Title: fmt.Sprint("t", i), Content: content, Length: 11 + i%3, CreatedAt: now})
	}
	q := SearchQuery{Text: "walk", Limit: 3}
	terms := q.Terms()
	corpus := SearchCorpus{Entries: 20, Words: 240, DocFreq: []int{7}}
	var got []int64
	var sizes []int
	for {
		page, err := RankSearch(q, terms, corpus, cands)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Results))
		for _, h := range page.Results {
			got = append(got, h.ID)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	// Three walks beat two beat one; equal scores put the newer id first.
	if fmt.Sprint(got) != "[6 3 5 2 7 4 1]" || fmt.Sprint(sizes) != "[3 3 1]" {
		t.Fatalf("ids %v in pages %v", got, sizes)
	}
	for _, c := range []string{"nope", "bm90IGEgY3Vyc29y"} {
		_, err := RankSearch(SearchQuery{Text: "walk", Limit: 3, Cursor: c}, terms, SearchCorpus{}, nil)
		if e, ok := err.(*Error); !ok || e.Code != EINVALID || e.Field != "cursor" {
			t.Fatalf("cursor %q: %v, want EINVALID about the cursor", c, err)
		}
	}
	page, err := RankSearch(SearchQuery{Text: "walk", Limit: 3}, terms, SearchCorpus{}, nil)
	if err != nil || page.Results == nil || len(page.Results) != 0 {
		t.Fatalf("no candidates: %#v, %v; want an empty, non-nil list", page, err)
	}
}
