package epicme_test

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/epicme/epicme"
)

// FuzzSearchTerms holds the search parsers to their promises on any input:
// terms are non-empty lower-case words without separators (so no search
// syntax survives), every term of a text is among the words indexed for
// that text (a word a query can hold is always found), and ranking an
// entry that holds the terms finds it with a UTF-8 snippet and a cursor
// that reads back.
func FuzzSearchTerms(f *testing.F) {
	for _, s := range []string{
		"walk river", `"quoted" OR NEAR(a b)`, "title:x* ^y -z", "ÉCOLE école", "İstanbul ß ﬁ", "日本語の文章",
		"a\x00b", "\xff\xfe", "tab\tnew\nline", strings.Repeat("w ", 40), "x'; DROP TABLE entries; --", "secret:* & !walk",
	} {
		f.Add(s, "")
	}
	f.Add("walk", "not-a-cursor")
	f.Fuzz(func(t *testing.T, text, cursor string) {
		terms := epicme.SearchTerms(text)
		for _, w := range terms {
			if w == "" || strings.ContainsAny(w, " \t\n\"'*^:()-") {
				t.Fatalf("term %q of %q", w, text)
			}
			if strings.ToLower(w) != w {
				t.Fatalf("term %q is not lower case", w)
			}
		}
		if !utf8.ValidString(text) {
			return // stores refuse such text (Validate); the rest assumes UTF-8
		}
		words, length := epicme.SearchIndexWords(text, "")
		for _, w := range terms {
			if !slices.Contains(words, w) {
				t.Fatalf("term %q of %q is not among its indexed words %q", w, text, words)
			}
		}
		q := epicme.SearchQuery{Text: text, Cursor: cursor}
		if err := q.Validate(); err != nil {
			if epicme.ErrorCode(err) != epicme.EINVALID {
				t.Fatalf("Validate(%q): %v", text, err)
			}
			return
		}
		qt := q.Terms()
		df := make([]int, len(qt))
		for i := range df {
			df[i] = 1
		}
		cand := []epicme.SearchCandidate{{ID: 1, Title: "t", Content: text, Length: length, CreatedAt: time.Unix(0, 0)}}
		p, err := epicme.RankSearch(q, qt, epicme.SearchCorpus{Entries: 1, Words: int64(length), DocFreq: df}, cand)
		if err != nil {
			if cursor == "" || epicme.ErrorCode(err) != epicme.EINVALID {
				t.Fatalf("RankSearch(%q, cursor %q): %v", text, cursor, err)
			}
			return
		}
		if cursor == "" && len(p.Results) != 1 {
			t.Fatalf("the entry holding %q was not found: %+v", text, p)
		}
		for _, h := range p.Results {
			if !utf8.ValidString(h.Snippet) {
				t.Fatalf("snippet %q is not UTF-8", h.Snippet)
			}
		}
	})
}
