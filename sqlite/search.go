package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/epicme/epicme"
)

// Search works in two steps. The full-text index (entries_fts) finds which of
// the user's entries hold each query word: it looks only inside the user's
// rowid range, so the work grows with the user's journal, not with the whole
// database. The program then ranks those entries with Okapi BM25 computed
// from this user's entries alone (entry count, average length, how many of
// the user's entries hold each word), so other users' writing can neither
// change nor reveal anything through the order of results. SQLite's own
// bm25() would use statistics of the whole table.
//
// https://en.wikipedia.org/wiki/Okapi_BM25
const (
	bm25K1      = 1.2
	bm25B       = 0.75
	titleWeight = 2 // a word in the title counts as two in the content
	snippetLen  = 30
	snippetLead = 8 // words of context before the first match
)

// isWordRune reports whether r belongs to a word, by the same rule as
// epicme.SearchTerms (letters and digits, after lower-casing).
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
// epicme.SearchTerms; a word already in lower-case ASCII is passed without
// copying.
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

// indexTerms returns what the full-text index stores for an entry: its
// distinct words separated by spaces, and the entry's length in words.
func indexTerms(title, content string) (terms string, n int) {
	seen := make(map[string]struct{}, 64)
	var b strings.Builder
	add := func(_, _ int, w string) bool {
		n++
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(w)
		}
		return true
	}
	eachWord(title, add)
	eachWord(content, add)
	return b.String(), n
}

// ftsPhrase quotes a word as an FTS5 string, so that nothing in it is read as
// query syntax. Words from epicme.SearchTerms hold only letters and digits;
// the quote doubling is a second guard.
//
// https://www.sqlite.org/fts5.html#fts5_strings
func ftsPhrase(w string) string {
	return `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
}

// The statements of a search: the user's statistics, the user's entries
// holding one word, and the matching entries' text.
const (
	searchStatsSQL = `SELECT u.rid, count(e.id), total(e.search_len)
		FROM users u LEFT JOIN entries e ON e.user_id = u.id WHERE u.id = ?`
	searchMatchSQL = `SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid BETWEEN ? AND ?`
	// INDEXED BY (the primary key's index) makes this one key lookup per
	// match: given a list of ids, the planner may otherwise scan the table.
	searchLoadSQL = `SELECT id, title, content, created_at, search_len
		FROM entries INDEXED BY sqlite_autoindex_entries_1
		WHERE user_id = ? AND id IN (SELECT value FROM json_each(?))`
)

type searchDoc struct {
	id        int64
	title     string
	content   string
	createdAt int64
	length    int
	score     float64
}

// SearchEntries ranks the user's entries that contain every word of q.Text
// (split by epicme.SearchTerms, so search syntax in the text is never
// interpreted), best first, with a plain-text snippet of about 30 words
// around the first match.
func (db *DB) SearchEntries(ctx context.Context, userID string, q epicme.SearchQuery) (*epicme.SearchPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	var after *searchKey
	if q.Cursor != "" {
		k, err := decodeSearchCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		after = &k
	}
	terms := dedupe(epicme.SearchTerms(q.Text))
	page := &epicme.SearchPage{Results: []epicme.SearchHit{}}

	// The statements below read without a shared transaction: a write
	// landing between them can only make an entry fall out of this page
	// (it is then skipped), never show another user's data.
	stmt := func(query string) (*sql.Stmt, error) { return db.stmt(ctx, db.read, query) }

	var rid sql.NullInt64
	var docs int
	var totalLen float64
	s, err := stmt(searchStatsSQL)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	if err := s.QueryRowContext(ctx, userID).Scan(&rid, &docs, &totalLen); err != nil {
		return nil, epicme.Internal(err)
	}
	if !rid.Valid || docs == 0 {
		return page, nil
	}
	lo, hi := ftsRowid(rid.Int64, 0), ftsRowid(rid.Int64, math.MaxUint32)

	match, err := stmt(searchMatchSQL)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	df := make(map[string]int, len(terms))
	var candidates map[int64]bool
	for _, t := range terms {
		rows, err := match.QueryContext(ctx, ftsPhrase(t), lo, hi)
		if err != nil {
			return nil, epicme.Internal(err)
		}
		hits := map[int64]bool{}
		for rows.Next() {
			var rowid int64
			if err := rows.Scan(&rowid); err != nil {
				rows.Close()
				return nil, epicme.Internal(err)
			}
			id := rowid & math.MaxUint32
			if candidates == nil || candidates[id] {
				hits[id] = true
			}
			df[t]++
		}
		if err := rows.Close(); err != nil {
			return nil, epicme.Internal(err)
		}
		if len(hits) == 0 {
			return page, nil
		}
		candidates = hits
	}
	if len(candidates) == 0 {
		return page, nil
	}

	ids := make([]int64, 0, len(candidates))
	for id := range candidates {
		ids = append(ids, id)
	}
	idsJSON, _ := json.Marshal(ids)
	load, err := stmt(searchLoadSQL)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	rows, err := load.QueryContext(ctx, userID, string(idsJSON))
	if err != nil {
		return nil, epicme.Internal(err)
	}
	found := make([]*searchDoc, 0, len(ids))
	for rows.Next() {
		d := &searchDoc{}
		if err := rows.Scan(&d.id, &d.title, &d.content, &d.createdAt, &d.length); err != nil {
			rows.Close()
			return nil, epicme.Internal(err)
		}
		found = append(found, d)
	}
	if err := rows.Close(); err != nil {
		return nil, epicme.Internal(err)
	}

	idf := make([]float64, len(terms))
	for i, t := range terms {
		n := float64(df[t])
		idf[i] = math.Log(1 + (float64(docs)-n+0.5)/(n+0.5))
	}
	avgLen := totalLen / float64(docs)
	for _, d := range found {
		d.score = bm25(d, terms, idf, avgLen)
	}
	sort.Slice(found, func(i, j int) bool {
		return searchKey{found[i].score, found[i].id}.before(searchKey{found[j].score, found[j].id})
	})
	var last searchKey
	for _, d := range found {
		k := searchKey{d.score, d.id}
		if after != nil && !after.before(k) {
			continue
		}
		if len(page.Results) == q.Limit {
			page.NextCursor = encodeSearchCursor(last)
			break
		}
		last = k
		page.Results = append(page.Results, epicme.SearchHit{
			ID:        d.id,
			Title:     d.title,
			Snippet:   snippet(d.content, terms),
			CreatedAt: fromNanos(d.createdAt),
		})
	}
	return page, nil
}

// bm25 scores one entry for the query words, given each word's idf.
func bm25(d *searchDoc, terms []string, idf []float64, avgLen float64) float64 {
	var tfBuf [16]float64
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
	eachWord(d.title, count(titleWeight))
	eachWord(d.content, count(1))
	norm := bm25K1 * (1 - bm25B + bm25B*float64(d.length)/max(avgLen, 1))
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

// snippet returns about snippetLen words of content around the first query
// word, as plain text with whitespace collapsed and "…" where text was cut.
// It adds no markup: the text is the entry's own.
func snippet(content string, terms []string) string {
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
		endByte = len(strings.TrimRightFunc(content, unicode.IsSpace))
	}
	text := strings.Join(strings.Fields(content[startByte:endByte]), " ")
	if from > 0 {
		text = "…" + text
	}
	if to < len(spans) || endByte < len(strings.TrimRightFunc(content, unicode.IsSpace)) {
		text += "…"
	}
	return text
}

func dedupe(words []string) []string {
	out := words[:0:0]
	for _, w := range words {
		found := false
		for _, o := range out {
			if o == w {
				found = true
				break
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
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
// base64url-encoded. Scores are recomputed for each page from the same rule,
// so the exact float picks up where the previous page stopped.
func encodeSearchCursor(k searchKey) string {
	var b [17]byte
	b[0] = 's'
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(k.score))
	binary.BigEndian.PutUint64(b[9:], uint64(k.id))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeSearchCursor(c string) (searchKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 17 || b[0] != 's' {
		return searchKey{}, epicme.Invalid("cursor", "cursor is not valid: pass the nextCursor of a previous page, or omit it for the first page")
	}
	k := searchKey{math.Float64frombits(binary.BigEndian.Uint64(b[1:])), int64(binary.BigEndian.Uint64(b[9:]))}
	if math.IsNaN(k.score) || k.id <= 0 {
		return searchKey{}, epicme.Invalid("cursor", "cursor is not valid: pass the nextCursor of a previous page, or omit it for the first page")
	}
	return k, nil
}
