package epicme

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Search ranking is the same on every store, so it lives here, away from any
// database: a store finds which of one user's entries hold every query word
// and counts, in that user's journal only, how many entries hold each word;
// RankSearch then scores the candidates with Okapi BM25 from those per-user
// statistics and cuts the page. Other users' writing can neither change nor
// reveal anything through the order of results. Neither database's own rank
// does this: SQLite's bm25() takes its statistics from the whole table, and
// PostgreSQL's ts_rank looks at one document alone, with no notion of how
// rare a word is in the journal.
//
// https://en.wikipedia.org/wiki/Okapi_BM25
const (
	bm25K1      = 1.2
	bm25B       = 0.75
	titleWeight = 2 // a word in the title counts as two in the content
	snippetLen  = 30
	snippetLead = 8 // words of context before the first match
)

// Terms returns the distinct words of q.Text, split by SearchTerms, in order.
func (q *SearchQuery) Terms() []string {
	var out []string
	for _, w := range SearchTerms(q.Text) {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// SearchIndexWords returns what a store indexes for an entry: the distinct
// words of its title and content, split and lower-cased exactly as
// SearchTerms splits a query (so a word a query can hold is always found),
// and the entry's length in words, which ranking needs.
func SearchIndexWords(title, content string) (words []string, length int) {
	seen := make(map[string]struct{}, 64)
	add := func(_, _ int, w string) bool {
		length++
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			words = append(words, w)
		}
		return true
	}
	eachWord(title, add)
	eachWord(content, add)
	return words, length
}

// SearchCorpus is what ranking needs to know of one user's journal.
type SearchCorpus struct {
	// Entries is how many entries the user has.
	Entries int
	// Words is the sum of their lengths (SearchIndexWords).
	Words int64
	// DocFreq[i] is how many of the user's entries hold the i-th query term.
	DocFreq []int
}

// SearchCandidate is an entry that holds every query term.
type SearchCandidate struct {
	ID      int64
	Title   string
	Content string
	// Length is the entry's length in words (SearchIndexWords).
	Length    int
	CreatedAt time.Time
}

// RankSearch scores the candidates for terms (q.Terms()) with BM25 from the
// user's corpus, orders them best first (then newest id), and returns the
// page of q.Limit hits after q.Cursor, each with a plain-text snippet of
// about 30 words around the first match. q must have been validated. An
// invalid cursor is EINVALID, whether or not there are candidates.
func RankSearch(q SearchQuery, terms []string, corpus SearchCorpus, candidates []SearchCandidate) (*SearchPage, error) {
	var after *searchKey
	if q.Cursor != "" {
		k, err := decodeSearchCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		after = &k
	}
	page := &SearchPage{Results: []SearchHit{}}
	if len(candidates) == 0 || corpus.Entries == 0 {
		return page, nil
	}
	idf := make([]float64, len(terms))
	for i := range terms {
		var n float64
		if i < len(corpus.DocFreq) {
			n = float64(corpus.DocFreq[i])
		}
		idf[i] = math.Log(1 + (float64(corpus.Entries)-n+0.5)/(n+0.5))
	}
	avgLen := float64(corpus.Words) / float64(corpus.Entries)
	type scored struct {
		c   *SearchCandidate
		key searchKey
	}
	ranked := make([]scored, len(candidates))
	for i := range candidates {
		c := &candidates[i]
		ranked[i] = scored{c, searchKey{bm25(c, terms, idf, avgLen), c.ID}}
	}
	slices.SortFunc(ranked, func(a, b scored) int {
		switch {
		case a.key.before(b.key):
			return -1
		case b.key.before(a.key):
			return 1
		}
		return 0
	})
	var last searchKey
	for _, r := range ranked {
		if after != nil && !after.before(r.key) {
			continue
		}
		if len(page.Results) == q.Limit {
			page.NextCursor = encodeSearchCursor(last)
			break
		}
		last = r.key
		page.Results = append(page.Results, SearchHit{
			ID:        r.c.ID,
			Title:     r.c.Title,
			Snippet:   searchSnippet(r.c.Content, terms),
			CreatedAt: r.c.CreatedAt,
		})
	}
	return page, nil
}

// isWordRune reports whether r belongs to a word, by the rule of SearchTerms
// (letters and digits, after lower-casing).
func isWordRune(r rune) bool {
	r = unicode.ToLower(r)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// asciiWord is isWordRune for ASCII bytes, the common case, without the
// Unicode tables.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range rune(utf8.RuneSelf) {
		t[c] = isWordRune(c)
	}
	return t
}()

// eachWord calls fn with the byte span and lower-cased form of every word of
// s, in order, until fn returns false. Words are split exactly as by
// SearchTerms; a word already in lower-case ASCII is passed without copying.
func eachWord(s string, fn func(start, end int, word string) bool) {
	start := -1
	plain := true // the current word is lower-case ASCII so far
	for i := 0; i < len(s); {
		c, size := s[i], 1
		var in bool
		if c < utf8.RuneSelf {
			in = asciiWord[c]
			if in && 'A' <= c && c <= 'Z' {
				plain = false
			}
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			in = isWordRune(r)
			plain = plain && !in
		}
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if !fn(start, i, lowerWord(s[start:i], plain)) {
				return
			}
			start, plain = -1, true
		}
		i += size
	}
	if start >= 0 {
		fn(start, len(s), lowerWord(s[start:], plain))
	}
}

func lowerWord(w string, plain bool) string {
	if plain {
		return w
	}
	return strings.ToLower(w)
}

// bm25 scores one entry for the query words, given each word's idf.
func bm25(c *SearchCandidate, terms []string, idf []float64, avgLen float64) float64 {
	var tfBuf [maxSearchTerms]float64
	tf := tfBuf[:0]
	if len(terms) > len(tfBuf) {
		tf = make([]float64, 0, len(terms))
	}
	tf = tf[:len(terms)]
	count := func(weight float64) func(int, int, string) bool {
		return func(_, _ int, w string) bool {
			if i := termIndex(terms, w); i >= 0 {
				tf[i] += weight
			}
			return true
		}
	}
	eachWord(c.Title, count(titleWeight))
	eachWord(c.Content, count(1))
	norm := bm25K1 * (1 - bm25B + bm25B*float64(c.Length)/max(avgLen, 1))
	var score float64
	for i, f := range tf {
		if f > 0 {
			score += idf[i] * f * (bm25K1 + 1) / (f + norm)
		}
	}
	return score
}

// termIndex returns the index of w in terms, or -1. Queries have at most 16
// words, so a scan beats a map.
func termIndex(terms []string, w string) int {
	for i, t := range terms {
		if len(t) == len(w) && t == w {
			return i
		}
	}
	return -1
}

// searchSnippet returns about snippetLen words of content around the first
// query word, as plain text with whitespace collapsed and "…" where text was
// cut. It adds no markup: the text is the entry's own.
func searchSnippet(content string, terms []string) string {
	type span struct{ start, end int }
	var spans []span
	first := -1
	eachWord(content, func(start, end int, w string) bool {
		spans = append(spans, span{start, end})
		if first < 0 && termIndex(terms, w) >= 0 {
			first = len(spans) - 1
		}
		// Past the window of the first match (or of the start, if the
		// words are only in the title) nothing more is needed.
		return first < 0 || len(spans) < first+snippetLen
	})
	if len(spans) == 0 {
		return ""
	}
	from := 0
	if first >= 0 {
		from = max(0, first-snippetLead)
	}
	to := min(len(spans), from+snippetLen)
	startByte, endByte := spans[from].start, spans[to-1].end
	// Keep what opens the first word ("(today" rather than "today").
	for startByte > 0 {
		r, size := utf8.DecodeLastRuneInString(content[:startByte])
		if unicode.IsSpace(r) {
			break
		}
		startByte -= size
	}
	trimmedEnd := len(strings.TrimRightFunc(content, unicode.IsSpace))
	// Keep punctuation that ends the last word ("today." rather than "today").
	if to < len(spans) {
		for endByte < spans[to].start {
			r, size := utf8.DecodeRuneInString(content[endByte:])
			if unicode.IsSpace(r) {
				break
			}
			endByte += size
		}
	} else {
		endByte = trimmedEnd
	}
	text := strings.Join(strings.Fields(content[startByte:endByte]), " ")
	if from > 0 {
		text = "…" + text
	}
	if to < len(spans) || endByte < trimmedEnd {
		text += "…"
	}
	return text
}

// searchKey orders search results: higher score first, then newer id.
type searchKey struct {
	score float64
	id    int64
}

func (k searchKey) before(o searchKey) bool {
	if k.score != o.score {
		return k.score > o.score
	}
	return k.id > o.id
}

// Search cursors are 's', the IEEE bits of the last score and the last id,
// base64url-encoded. Scores are recomputed for each page by the same rule,
// so the exact float picks up where the previous page stopped.
func encodeSearchCursor(k searchKey) string {
	var b [17]byte
	b[0] = 's'
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(k.score))
	binary.BigEndian.PutUint64(b[9:], uint64(k.id))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeSearchCursor(c string) (searchKey, error) {
	bad := Invalid("cursor", "cursor is not valid: pass the nextCursor of a previous page, or omit it for the first page")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 17 || b[0] != 's' {
		return searchKey{}, bad
	}
	k := searchKey{math.Float64frombits(binary.BigEndian.Uint64(b[1:])), int64(binary.BigEndian.Uint64(b[9:]))}
	if math.IsNaN(k.score) || k.id <= 0 {
		return searchKey{}, bad
	}
	return k, nil
}
