package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

// getEntrySQL reads an entry with its tags in one statement (one snapshot),
// the tags as two arrays ordered by name.
const getEntrySQL = `SELECT e.id, e.title, e.content, e.mood, e.location, e.weather,
	e.is_private, e.is_favorite, e.created_at, e.updated_at, t.ids, t.names
FROM entries e CROSS JOIN LATERAL (
	SELECT array_agg(t.id ORDER BY t.name_key, t.id) AS ids, array_agg(t.name ORDER BY t.name_key, t.id) AS names
	FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
	WHERE et.user_id = e.user_id AND et.entry_id = e.id) t
WHERE e.user_id = $1 AND e.id = $2`

func scanEntry(row pgx.Row, userID string, id int64) (*epicme.Entry, error) {
	e := epicme.Entry{UserID: userID}
	var tagIDs []int64
	var tagNames []string
	err := row.Scan(&e.ID, &e.Title, &e.Content, &e.Mood, &e.Location, &e.Weather,
		&e.IsPrivate, &e.IsFavorite, &e.CreatedAt, &e.UpdatedAt, &tagIDs, &tagNames)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.EntryNotFound(id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	e.CreatedAt, e.UpdatedAt = utc(e.CreatedAt), utc(e.UpdatedAt)
	for i, tid := range tagIDs {
		e.Tags = append(e.Tags, epicme.TagRef{ID: tid, Name: tagNames[i]})
	}
	return &e, nil
}

// GetEntry returns the user's entry with its tags ordered by name; ENOTFOUND
// if the user has no entry with this id.
func (db *DB) GetEntry(ctx context.Context, userID string, id int64) (*epicme.Entry, error) {
	return idempotent(ctx, db, func() (*epicme.Entry, error) {
		return scanEntry(db.pool.QueryRow(ctx, getEntrySQL, userID, id), userID, id)
	})
}

func (tx *Tx) getEntry(userID string, id int64) (*epicme.Entry, error) {
	return scanEntry(tx.queryRow(getEntrySQL, userID, id), userID, id)
}

// searchLexemes returns the full-text lexemes of an entry for the user whose
// rid is given (see the search column in the schema), and the entry's length
// in words. Words longer than the longest possible query are left out: no
// search can name them, and PostgreSQL caps a lexeme at 2 KB.
func searchLexemes(rid int64, title, content string) ([]string, int) {
	words, n := epicme.SearchIndexWords(title, content)
	prefix := ridPrefix(rid)
	lexemes := make([]string, 0, len(words))
	for _, w := range words {
		if len(w) > epicme.MaxSearchQueryLen && utf8.RuneCountInString(w) > epicme.MaxSearchQueryLen {
			continue
		}
		lexemes = append(lexemes, prefix+w)
	}
	return lexemes, n
}

// ridPrefix is what every lexeme of a user starts with.
func ridPrefix(rid int64) string { return strconv.FormatInt(rid, 36) + "." }

// CreateEntry validates and stores a new entry, numbered next for its user,
// linked to in.TagIDs in the same transaction. If a tag is not the user's,
// it returns ENOTFOUND naming the tag and writes nothing.
func (db *DB) CreateEntry(ctx context.Context, userID string, in epicme.NewEntry) (*epicme.Entry, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var e *epicme.Entry
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		var err error
		e, err = tx.createEntry(userID, &in)
		return err
	})
	return e, err
}

const insertEntrySQL = `INSERT INTO entries (user_id, id, created_at, updated_at, is_private, is_favorite,
	search_len, title, mood, location, weather, content, search)
	VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, array_to_tsvector($12::text[]))`

func (tx *Tx) createEntry(userID string, in *epicme.NewEntry) (*epicme.Entry, error) {
	if tx.rid == 0 {
		return nil, epicme.UserNotFound()
	}
	var id, count, used int64
	err := tx.queryRow(`UPDATE users SET next_entry_id = next_entry_id + 1 WHERE id = $1
		RETURNING next_entry_id - 1, entry_count, entry_bytes`, userID).Scan(&id, &count, &used)
	if err != nil {
		return nil, err
	}
	if err := tx.quota.CheckNewEntry(count, used, epicme.EntryBytes(in.Title, in.Content)); err != nil {
		return nil, err
	}
	// The tags, checked and in the order GetEntry gives them (by name).
	tagIDs := epicme.UniqueIDs(in.TagIDs)
	var tags []epicme.TagRef
	if len(tagIDs) > 0 {
		rows, err := tx.Query(tx.ctx, `SELECT id, name FROM tags WHERE user_id = $1 AND id = ANY($2) ORDER BY name_key, id`, userID, tagIDs)
		if err != nil {
			return nil, err
		}
		if tags, err = pgx.CollectRows(rows, pgx.RowToStructByPos[epicme.TagRef]); err != nil {
			return nil, err
		}
		for _, tid := range tagIDs {
			if !slices.ContainsFunc(tags, func(t epicme.TagRef) bool { return t.ID == tid }) {
				return nil, epicme.TagNotFound(tid)
			}
		}
	}
	e := &epicme.Entry{
		ID: id, UserID: userID, Title: in.Title, Content: in.Content,
		Mood: in.Mood, Location: in.Location, Weather: in.Weather,
		IsPrivate: in.IsPrivate, IsFavorite: in.IsFavorite,
		CreatedAt: tx.now, UpdatedAt: tx.now, Tags: tags,
	}
	lexemes, n := searchLexemes(tx.rid, e.Title, e.Content)
	if _, err := tx.exec(insertEntrySQL, userID, id, e.CreatedAt, e.IsPrivate, e.IsFavorite,
		n, e.Title, e.Mood, e.Location, e.Weather, e.Content, lexemes); err != nil {
		return nil, err
	}
	if len(tagIDs) == 0 {
		return e, nil
	}
	// A new entry has no links yet: number them all with one counter
	// update, in the order the tags were given, as separate links would be.
	var first int64
	if err := tx.queryRow(`UPDATE users SET next_entry_tag_id = next_entry_tag_id + $2 WHERE id = $1
		RETURNING next_entry_tag_id - $2`, userID, len(tagIDs)).Scan(&first); err != nil {
		return nil, err
	}
	_, err = tx.exec(`INSERT INTO entry_tags (user_id, id, entry_id, tag_id, created_at, updated_at)
		SELECT $1, $2 + t.n - 1, $3, t.tag_id, $4, $4 FROM unnest($5::bigint[]) WITH ORDINALITY AS t(tag_id, n)`,
		userID, first, id, tx.now, tagIDs)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// UpdateEntry changes the fields set in u (see epicme.EntryUpdate) and bumps
// updated_at; an empty update returns the entry unchanged. The full-text
// column follows the new title and content in the same statement.
func (db *DB) UpdateEntry(ctx context.Context, userID string, id int64, u epicme.EntryUpdate) (*epicme.Entry, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if u.Empty() {
		return db.GetEntry(ctx, userID, id)
	}
	var e *epicme.Entry
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		var err error
		if e, err = tx.getEntry(userID, id); err != nil {
			return err
		}
		grow, reindex := u.Apply(e, tx.now)
		if grow > 0 {
			// FOR UPDATE: two growing updates of one user check one after
			// the other, so together they cannot pass the limit.
			var used int64
			if err := tx.queryRow(`SELECT entry_bytes FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&used); err != nil {
				return err
			}
			if err := tx.quota.CheckBytes(used, grow); err != nil {
				return err
			}
		}
		if !reindex {
			_, err = tx.exec(`UPDATE entries SET mood = $3, location = $4, weather = $5,
				is_private = $6, is_favorite = $7, updated_at = $8 WHERE user_id = $1 AND id = $2`,
				userID, id, e.Mood, e.Location, e.Weather, e.IsPrivate, e.IsFavorite, e.UpdatedAt)
			return err
		}
		lexemes, n := searchLexemes(tx.rid, e.Title, e.Content)
		_, err = tx.exec(`UPDATE entries SET title = $3, content = $4, mood = $5, location = $6, weather = $7,
			is_private = $8, is_favorite = $9, updated_at = $10, search_len = $11, search = array_to_tsvector($12::text[])
			WHERE user_id = $1 AND id = $2`,
			userID, id, e.Title, e.Content, e.Mood, e.Location, e.Weather, e.IsPrivate, e.IsFavorite, e.UpdatedAt, n, lexemes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// DeleteEntry deletes the user's entry and, by cascade, its tag links, and
// returns the entry as it was.
func (db *DB) DeleteEntry(ctx context.Context, userID string, id int64) (*epicme.Entry, error) {
	var e *epicme.Entry
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		var err error
		if e, err = tx.getEntry(userID, id); err != nil {
			return err
		}
		_, err = tx.exec(`DELETE FROM entries WHERE user_id = $1 AND id = $2`, userID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// listQuery builds the statement of ListEntries for a validated filter.
func listQuery(userID string, f epicme.EntryFilter) (string, []any, error) {
	var q strings.Builder
	args := []any{userID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	q.WriteString(`SELECT e.id, e.title, e.is_favorite, e.created_at,
	(SELECT count(*) FROM entry_tags et WHERE et.user_id = e.user_id AND et.entry_id = e.id)
FROM entries e WHERE e.user_id = $1`)
	if !f.From.IsZero() {
		q.WriteString(` AND e.created_at >= ` + arg(ceilMicro(f.From)))
	}
	if !f.To.IsZero() {
		q.WriteString(` AND e.created_at < ` + arg(ceilMicro(f.To)))
	}
	if f.FavoritesOnly {
		q.WriteString(` AND e.is_favorite`)
	}
	if f.Cursor != "" {
		at, id, err := decodeListCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		// A row comparison, so the index on (user_id, created_at DESC,
		// id DESC) seeks straight to the first entry after the cursor.
		q.WriteString(` AND (e.created_at, e.id) < (` + arg(at) + `, ` + arg(id) + `)`)
	}
	if tags := epicme.UniqueIDs(f.TagIDs); len(tags) > 0 {
		q.WriteString(` AND e.id IN (SELECT entry_id FROM entry_tags WHERE user_id = $1 AND tag_id = ANY(` + arg(tags) +
			`) GROUP BY entry_id HAVING count(*) = ` + arg(len(tags)) + `)`)
	}
	q.WriteString(` ORDER BY e.created_at DESC, e.id DESC LIMIT ` + arg(f.Limit+1))
	return q.String(), args, nil
}

// ListEntries returns one page of the user's entries, newest first (by
// creation time, then id), filtered by f. Paging is by keyset: the cursor
// holds the (created_at, id) of the page's last entry, so pages neither
// repeat nor skip entries when others are added meanwhile.
func (db *DB) ListEntries(ctx context.Context, userID string, f epicme.EntryFilter) (*epicme.EntryPage, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, args, err := listQuery(userID, f)
	if err != nil {
		return nil, err
	}
	return idempotent(ctx, db, func() (*epicme.EntryPage, error) { return db.listEntries(ctx, f, q, args) })
}

func (db *DB) listEntries(ctx context.Context, f epicme.EntryFilter, q string, args []any) (*epicme.EntryPage, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	defer rows.Close()
	page := &epicme.EntryPage{Entries: make([]epicme.EntrySummary, 0, min(f.Limit, 64))}
	for rows.Next() {
		if len(page.Entries) == f.Limit {
			last := page.Entries[len(page.Entries)-1]
			page.NextCursor = encodeListCursor(last.CreatedAt, last.ID)
			break
		}
		var s epicme.EntrySummary
		if err := rows.Scan(&s.ID, &s.Title, &s.IsFavorite, &s.CreatedAt, &s.TagCount); err != nil {
			return nil, epicme.Internal(err)
		}
		s.CreatedAt = utc(s.CreatedAt)
		page.Entries = append(page.Entries, s)
	}
	if err := rows.Err(); err != nil {
		return nil, epicme.Internal(err)
	}
	return page, nil
}

// List cursors are "l<created_at Unix nanoseconds>.<id>", base64url-encoded
// (the sqlite package's format): opaque to clients, and checked on the way
// back in.
func encodeListCursor(createdAt time.Time, id int64) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "l%d.%d", createdAt.UnixNano(), id))
}

func decodeListCursor(c string) (time.Time, int64, error) {
	bad := epicme.Invalid("cursor", "cursor is not valid: pass the nextCursor of a previous page, or omit it for the first page")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 || b[0] != 'l' {
		return time.Time{}, 0, bad
	}
	a, i, ok := strings.Cut(string(b[1:]), ".")
	if !ok {
		return time.Time{}, 0, bad
	}
	createdAt, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(i, 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return time.Time{}, 0, bad
	}
	// Round up, as for filter bounds: entries strictly before the cursor's
	// instant stay before it.
	return ceilMicro(time.Unix(0, createdAt).UTC()), id, nil
}
