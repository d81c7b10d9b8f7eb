package postgres

import (
	"context"
	"strings"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

// Search uses PostgreSQL's text search for what an index does best, finding
// the user's entries that hold every query word: entries.search is a
// tsvector of the entry's words, each prefixed with the user's rid, under a
// GIN index, and the query is a tsquery of the same prefixed words joined
// with &. A search therefore reads only its own user's posting lists.
//
// Ranking is not ts_rank: it scores a document alone, with no notion of how
// rare a word is among the user's entries, so "more of the rarer word" could
// not win. The store counts, in this user's entries only, how many hold
// each word, and epicme.RankSearch computes BM25 from those counts, exactly
// as the sqlite store does; other users' writing never changes the order.
const (
	searchCorpusSQL = `SELECT u.rid, count(e.id), coalesce(sum(e.search_len), 0)
	FROM users u LEFT JOIN entries e ON e.user_id = u.id WHERE u.id = $1 GROUP BY u.rid`
	searchCountSQL = `SELECT count(*) FROM entries WHERE user_id = $1 AND search @@ $2::tsquery`
	searchLoadSQL  = `SELECT id, title, content, created_at, search_len FROM entries
	WHERE user_id = $1 AND search @@ $2::tsquery`
)

// tsLexeme quotes a lexeme for the tsquery input syntax, so nothing in it is
// read as an operator, a weight or a prefix match. Words from
// epicme.SearchTerms hold only letters and digits; the escaping is a second
// guard. The quoted text is taken as it is: no parser, no dictionary.
//
// https://www.postgresql.org/docs/15/datatype-textsearch.html#DATATYPE-TSQUERY
func tsLexeme(lexeme string) string {
	return `'` + strings.ReplaceAll(strings.ReplaceAll(lexeme, `\`, `\\`), `'`, `''`) + `'`
}

// SearchEntries ranks the user's entries that contain every word of q.Text
// (split by epicme.SearchTerms, so search syntax in the text is never
// interpreted), best first, with a plain-text snippet of about 30 words
// around the first match.
func (db *DB) SearchEntries(ctx context.Context, userID string, q epicme.SearchQuery) (*epicme.SearchPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return idempotent(ctx, db, func() (*epicme.SearchPage, error) { return db.search(ctx, userID, q) })
}

func (db *DB) search(ctx context.Context, userID string, q epicme.SearchQuery) (*epicme.SearchPage, error) {
	terms := q.Terms()
	var rid int64
	var corpus epicme.SearchCorpus
	err := db.pool.QueryRow(ctx, searchCorpusSQL, userID).Scan(&rid, &corpus.Entries, &corpus.Words)
	if err == pgx.ErrNoRows || (err == nil && corpus.Entries == 0) {
		return epicme.RankSearch(q, terms, corpus, nil)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}

	// The statements below run in one round trip but not in one snapshot:
	// a write landing between them can only shift a score slightly, never
	// show another user's data.
	prefix := ridPrefix(rid)
	quoted := make([]string, len(terms))
	for i, t := range terms {
		quoted[i] = tsLexeme(prefix + t)
	}
	b := &pgx.Batch{}
	b.Queue(searchLoadSQL, userID, strings.Join(quoted, " & "))
	if len(terms) > 1 {
		for _, l := range quoted {
			b.Queue(searchCountSQL, userID, l)
		}
	}
	br := db.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, epicme.Internal(err)
	}
	var candidates []epicme.SearchCandidate
	for rows.Next() {
		var c epicme.SearchCandidate
		if err := rows.Scan(&c.ID, &c.Title, &c.Content, &c.CreatedAt, &c.Length); err != nil {
			rows.Close()
			return nil, epicme.Internal(err)
		}
		c.CreatedAt = utc(c.CreatedAt)
		candidates = append(candidates, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, epicme.Internal(err)
	}
	corpus.DocFreq = make([]int, len(terms))
	if len(terms) == 1 {
		corpus.DocFreq[0] = len(candidates)
	} else {
		for i := range terms {
			if err := br.QueryRow().Scan(&corpus.DocFreq[i]); err != nil {
				return nil, epicme.Internal(err)
			}
		}
	}
	if err := br.Close(); err != nil {
		return nil, epicme.Internal(err)
	}
	return epicme.RankSearch(q, terms, corpus, candidates)
}
