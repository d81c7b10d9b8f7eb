package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strings"

	"github.com/epicme/epicme"
)

// Search works in two steps. The full-text index (entries_fts) finds which of
// the user's entries hold each query word: it looks only inside the user's
// rowid range, so the work grows with the user's journal, not with the whole
// database. epicme.RankSearch then ranks those entries with BM25 computed
// from this user's entries alone (entry count, total length, how many of the
// user's entries hold each word), so other users' writing can neither change
// nor reveal anything through the order of results; SQLite's own bm25() would
// use statistics of the whole table.

// indexTerms returns what the full-text index stores for an entry: its
// distinct words (epicme.SearchIndexWords) separated by spaces, and the
// entry's length in words.
func indexTerms(title, content string) (terms string, n int) {
	words, n := epicme.SearchIndexWords(title, content)
	return strings.Join(words, " "), n
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

// SearchEntries ranks the user's entries that contain every word of q.Text
// (split by epicme.SearchTerms, so search syntax in the text is never
// interpreted), best first, with a plain-text snippet of about 30 words
// around the first match.
func (db *DB) SearchEntries(ctx context.Context, userID string, q epicme.SearchQuery) (*epicme.SearchPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	terms := q.Terms()

	// The statements below read without a shared transaction: a write
	// landing between them can only shift a score or make an entry fall out
	// of this page, never show another user's data.
	var rid sql.NullInt64
	var corpus epicme.SearchCorpus
	var words float64
	if err := db.queryRow(ctx, searchStatsSQL, userID).Scan(&rid, &corpus.Entries, &words); err != nil {
		return nil, epicme.Internal(err)
	}
	corpus.Words = int64(words)
	if !rid.Valid || corpus.Entries == 0 {
		return epicme.RankSearch(q, terms, corpus, nil)
	}
	lo, hi := ftsRowid(rid.Int64, 0), ftsRowid(rid.Int64, math.MaxUint32)

	corpus.DocFreq = make([]int, len(terms))
	var candidates map[int64]bool
	for i, t := range terms {
		rows, err := db.query(ctx, searchMatchSQL, ftsPhrase(t), lo, hi)
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
			corpus.DocFreq[i]++
		}
		if err := rows.Close(); err != nil {
			return nil, epicme.Internal(err)
		}
		if len(hits) == 0 {
			return epicme.RankSearch(q, terms, corpus, nil)
		}
		candidates = hits
	}

	ids := make([]int64, 0, len(candidates))
	for id := range candidates {
		ids = append(ids, id)
	}
	idsJSON, _ := json.Marshal(ids)
	rows, err := db.query(ctx, searchLoadSQL, userID, string(idsJSON))
	if err != nil {
		return nil, epicme.Internal(err)
	}
	found := make([]epicme.SearchCandidate, 0, len(ids))
	for rows.Next() {
		var c epicme.SearchCandidate
		var created int64
		if err := rows.Scan(&c.ID, &c.Title, &c.Content, &created, &c.Length); err != nil {
			rows.Close()
			return nil, epicme.Internal(err)
		}
		c.CreatedAt = fromNanos(created)
		found = append(found, c)
	}
	if err := rows.Close(); err != nil {
		return nil, epicme.Internal(err)
	}
	return epicme.RankSearch(q, terms, corpus, found)
}
