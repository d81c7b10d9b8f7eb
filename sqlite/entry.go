package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/epicme/epicme"
)

// getEntrySQL reads an entry with its tags in one row: the tags column is
// the JSON array of the entry's tags ordered by name, which the triggers of
// migration 0005 keep up to date.
const getEntrySQL = `SELECT e.id, e.title, e.content, e.mood, e.location, e.weather,
	e.is_private, e.is_favorite, e.created_at, e.updated_at, e.tags
FROM entries e WHERE e.user_id = ? AND e.id = ?`

// scanEntry reads a row of getEntrySQL through database/sql (the writer's
// transactions) with the same conversions as rawEntry.
func scanEntry(row *sql.Row, userID string, id int64) (*epicme.Entry, error) {
	var v [11]any
	var ptrs [11]any
	for i := range v {
		ptrs[i] = &v[i]
	}
	err := row.Scan(ptrs[:]...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.EntryNotFound(id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	var dv [11]driver.Value
	for i := range v {
		dv[i] = v[i]
	}
	e, err := rawEntry(dv[:], userID)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return e, nil
}

// readTags reads a tags column: nil for an entry without tags.
func readTags(tags string) ([]epicme.TagRef, error) {
	if tags == "[]" || tags == "" {
		return nil, nil
	}
	if refs, ok := parseTagRefs(tags); ok {
		return refs, nil
	}
	var refs []epicme.TagRef
	if err := json.Unmarshal([]byte(tags), &refs); err != nil {
		return nil, err
	}
	return refs, nil
}

// parseTagRefs reads the tags column in the one shape SQLite's json_object
// writes it, [{"id":1,"name":"a"},…], with names free of escapes; it
// reports false for anything else, which encoding/json then reads.
func parseTagRefs(s string) ([]epicme.TagRef, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	tags := make([]epicme.TagRef, 0, strings.Count(s, `{"id":`))
	rest := s[1 : len(s)-1]
	for len(rest) > 0 {
		if len(tags) > 0 {
			if rest[0] != ',' {
				return nil, false
			}
			rest = rest[1:]
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, `{"id":`); !ok {
			return nil, false
		}
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			return nil, false
		}
		if !plainInt(rest[:i]) {
			return nil, false
		}
		id, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return nil, false
		}
		if rest, ok = strings.CutPrefix(rest[i:], `,"name":"`); !ok {
			return nil, false
		}
		j := strings.IndexByte(rest, '"')
		if j < 0 || len(rest) < j+2 || rest[j+1] != '}' {
			return nil, false
		}
		name := rest[:j]
		if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 }) {
			return nil, false
		}
		tags = append(tags, epicme.TagRef{ID: id, Name: name})
		rest = rest[j+2:]
	}
	return tags, true
}

// countTagRefs counts the tags in a tags column: the objects of its JSON
// array, each of which opens with {"id": (a name cannot hold that
// sequence: its quotation marks are escaped). Counting here costs far less
// than SQLite's json_array_length, which parses the array.
func countTagRefs(tags string) int {
	return strings.Count(tags, `{"id":`)
}

// plainInt reports whether s is a JSON integer (RFC 8259 §6): an optional
// minus, then digits without a leading zero.
func plainInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// GetEntry returns the user's entry with its tags ordered by name; ENOTFOUND
// if the user has no entry with this id.
func (db *DB) GetEntry(ctx context.Context, userID string, id int64) (*epicme.Entry, error) {
	var e *epicme.Entry
	err := db.rawQuery(shortRead(ctx), getEntrySQL,
		[]driver.NamedValue{{Ordinal: 1, Value: userID}, {Ordinal: 2, Value: id}}, 11,
		func(v []driver.Value) (err error) {
			e, err = rawEntry(v, userID)
			if err != nil {
				return err
			}
			return errStopRows
		})
	if err != nil {
		return nil, epicme.Internal(err)
	}
	if e == nil {
		return nil, epicme.EntryNotFound(id)
	}
	return e, nil
}

// rawEntry reads a row of getEntrySQL as rawQuery returns it.
func rawEntry(v []driver.Value, userID string) (*epicme.Entry, error) {
	e := epicme.Entry{UserID: userID}
	var err error
	var created, updated, private, favorite int64
	var tags string
	if e.ID, err = rawInt("id", v[0]); err != nil {
		return nil, err
	}
	if e.Title, err = rawString("title", v[1]); err != nil {
		return nil, err
	}
	if e.Content, err = rawString("content", v[2]); err != nil {
		return nil, err
	}
	if e.Mood, err = rawOptString("mood", v[3]); err != nil {
		return nil, err
	}
	if e.Location, err = rawOptString("location", v[4]); err != nil {
		return nil, err
	}
	if e.Weather, err = rawOptString("weather", v[5]); err != nil {
		return nil, err
	}
	if private, err = rawInt("is_private", v[6]); err != nil {
		return nil, err
	}
	if favorite, err = rawInt("is_favorite", v[7]); err != nil {
		return nil, err
	}
	if created, err = rawInt("created_at", v[8]); err != nil {
		return nil, err
	}
	if updated, err = rawInt("updated_at", v[9]); err != nil {
		return nil, err
	}
	if tags, err = rawString("tags", v[10]); err != nil {
		return nil, err
	}
	e.IsPrivate, e.IsFavorite = private != 0, favorite != 0
	e.CreatedAt, e.UpdatedAt = fromNanos(created), fromNanos(updated)
	if e.Tags, err = readTags(tags); err != nil {
		return nil, err
	}
	return &e, nil
}

func (tx *Tx) getEntry(userID string, id int64) (*epicme.Entry, error) {
	return scanEntry(tx.queryRow(getEntrySQL, userID, id), userID, id)
}

// CreateEntry validates and stores a new entry, numbered next for its user,
// linked to in.TagIDs in the same transaction. If a tag is not the user's,
// it returns ENOTFOUND naming the tag and writes nothing.
func (db *DB) CreateEntry(ctx context.Context, userID string, in epicme.NewEntry) (*epicme.Entry, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var e *epicme.Entry
	err := db.update(ctx, func(tx *Tx) error {
		var idx ftsRow
		var err error
		if e, idx, err = tx.createEntry(userID, &in, tx.now); err != nil {
			return err
		}
		return tx.index(idx)
	})
	return e, err
}

// ftsRow is an entry's row of the full-text index, to be written by index.
type ftsRow struct {
	rowid int64
	terms string
}

// index writes full-text rows. Callers write them after every other
// statement of the transaction: FTS5 flushes its pending terms to disk
// whenever a later statement opens a savepoint, so interleaving would
// write (and later merge) one tiny index segment per entry.
func (tx *Tx) index(rows ...ftsRow) error {
	for _, r := range rows {
		if _, err := tx.exec(`INSERT INTO entries_fts (rowid, terms) VALUES (?, ?)`, r.rowid, r.terms); err != nil {
			return err
		}
	}
	return nil
}

// createEntry inserts a validated entry created at the given time, and
// returns its full-text row for the caller to write with index.
func (tx *Tx) createEntry(userID string, in *epicme.NewEntry, created time.Time) (*epicme.Entry, ftsRow, error) {
	var id, rid, count, used int64
	err := tx.queryRow(`UPDATE users SET next_entry_id = next_entry_id + 1 WHERE id = ?
		RETURNING next_entry_id - 1, rid, entry_count, entry_bytes`, userID).Scan(&id, &rid, &count, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ftsRow{}, epicme.UserNotFound()
	}
	if err != nil {
		return nil, ftsRow{}, err
	}
	if err := tx.db.quota.OrDefault().CheckNewEntry(count, used, epicme.EntryBytes(in.Title, in.Content)); err != nil {
		return nil, ftsRow{}, err
	}
	tagIDs := epicme.UniqueIDs(in.TagIDs)
	for _, tid := range tagIDs {
		if err := tx.checkTag(userID, tid); err != nil {
			return nil, ftsRow{}, err
		}
	}
	e := &epicme.Entry{
		ID: id, UserID: userID, Title: in.Title, Content: in.Content,
		Mood: in.Mood, Location: in.Location, Weather: in.Weather,
		IsPrivate: in.IsPrivate, IsFavorite: in.IsFavorite,
		CreatedAt: created, UpdatedAt: created,
	}
	terms, n := indexTerms(e.Title, e.Content)
	if _, err := tx.exec(insertEntrySQL, userID, id, toNanos(e.CreatedAt), toNanos(e.UpdatedAt), e.IsPrivate, e.IsFavorite,
		n, e.Title, e.Mood, e.Location, e.Weather, e.Content); err != nil {
		return nil, ftsRow{}, err
	}
	idx := ftsRow{ftsRowid(rid, id), terms}
	if len(tagIDs) == 0 {
		return e, idx, nil
	}
	for _, tid := range tagIDs {
		if _, err := tx.link(userID, id, tid); err != nil {
			return nil, ftsRow{}, err
		}
	}
	e, err = tx.getEntry(userID, id)
	return e, idx, err
}

const insertEntrySQL = `INSERT INTO entries (user_id, id, created_at, updated_at, is_private, is_favorite,
	search_len, title, mood, location, weather, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// checkTag returns ENOTFOUND unless the user has the tag.
func (tx *Tx) checkTag(userID string, tagID int64) error {
	var one int
	err := tx.queryRow(`SELECT 1 FROM tags WHERE user_id = ? AND id = ?`, userID, tagID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return epicme.TagNotFound(tagID)
	}
	return err
}

// checkEntry returns ENOTFOUND unless the user has the entry.
func (tx *Tx) checkEntry(userID string, entryID int64) error {
	var one int
	err := tx.queryRow(`SELECT 1 FROM entries WHERE user_id = ? AND id = ?`, userID, entryID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return epicme.EntryNotFound(entryID)
	}
	return err
}

// ftsRowid is the full-text index row of a user's entry: the user's range
// (rid << 32) plus the entry id. Entry ids stay below 2^32 per user.
func ftsRowid(rid, id int64) int64 { return rid<<32 | id }

// UpdateEntry changes the fields set in u (see epicme.EntryUpdate) and bumps
// updated_at; an empty update returns the entry unchanged. The full-text
// index follows the new title and content in the same transaction.
func (db *DB) UpdateEntry(ctx context.Context, userID string, id int64, u epicme.EntryUpdate) (*epicme.Entry, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if u.Empty() {
		return db.GetEntry(ctx, userID, id)
	}
	var e *epicme.Entry
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		if e, err = tx.getEntry(userID, id); err != nil {
			return err
		}
		grow, reindex := u.Apply(e, tx.now)
		if grow > 0 {
			var used int64
			if err := tx.queryRow(`SELECT entry_bytes FROM users WHERE id = ?`, userID).Scan(&used); err != nil {
				return err
			}
			if err := tx.db.quota.OrDefault().CheckBytes(used, grow); err != nil {
				return err
			}
		}
		terms, n := indexTerms(e.Title, e.Content)
		if _, err := tx.exec(`UPDATE entries SET title = ?, content = ?, mood = ?, location = ?, weather = ?,
			is_private = ?, is_favorite = ?, search_len = ?, updated_at = ? WHERE user_id = ? AND id = ?`,
			e.Title, e.Content, e.Mood, e.Location, e.Weather, e.IsPrivate, e.IsFavorite, n,
			toNanos(e.UpdatedAt), userID, id); err != nil {
			return err
		}
		if reindex {
			var rid int64
			if err := tx.queryRow(`SELECT rid FROM users WHERE id = ?`, userID).Scan(&rid); err != nil {
				return err
			}
			if _, err := tx.exec(`DELETE FROM entries_fts WHERE rowid = ?`, ftsRowid(rid, id)); err != nil {
				return err
			}
			if _, err := tx.exec(`INSERT INTO entries_fts (rowid, terms) VALUES (?, ?)`, ftsRowid(rid, id), terms); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// DeleteEntry deletes the user's entry, its tag links (by cascade) and its
// full-text row (by trigger), and returns the entry as it was.
func (db *DB) DeleteEntry(ctx context.Context, userID string, id int64) (*epicme.Entry, error) {
	var e *epicme.Entry
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		if e, err = tx.getEntry(userID, id); err != nil {
			return err
		}
		_, err = tx.exec(`DELETE FROM entries WHERE user_id = ? AND id = ?`, userID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ListEntries returns one page of the user's entries, newest first (by
// creation time, then id), filtered by f. Paging is by keyset: the cursor
// holds the (created_at, id) of the page's last entry, so pages neither
// repeat nor skip entries when others are added meanwhile.
func (db *DB) ListEntries(ctx context.Context, userID string, f epicme.EntryFilter) (*epicme.EntryPage, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	query, args, err := listQuery(userID, f)
	if err != nil {
		return nil, err
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, epicme.Internal(err)
		}
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	page := &epicme.EntryPage{Entries: make([]epicme.EntrySummary, 0, min(f.Limit, 64))}
	var lastAt int64
	err = db.rawQuery(shortRead(ctx), query, named, 5, func(v []driver.Value) error {
		if len(page.Entries) == f.Limit {
			last := page.Entries[len(page.Entries)-1]
			page.NextCursor = encodeListCursor(lastAt, last.ID)
			return errStopRows
		}
		var s epicme.EntrySummary
		var err error
		var favorite int64
		var tags string
		if s.ID, err = rawInt("id", v[0]); err != nil {
			return err
		}
		if s.Title, err = rawString("title", v[1]); err != nil {
			return err
		}
		if favorite, err = rawInt("is_favorite", v[2]); err != nil {
			return err
		}
		if lastAt, err = rawInt("created_at", v[3]); err != nil {
			return err
		}
		if tags, err = rawString("tags", v[4]); err != nil {
			return err
		}
		s.IsFavorite = favorite != 0
		s.TagCount = countTagRefs(tags)
		s.CreatedAt = fromNanos(lastAt)
		page.Entries = append(page.Entries, s)
		return nil
	})
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return page, nil
}

// listQuery builds the query of one page of ListEntries: a walk down the
// entries_newest index from the cursor, filtered, one row more than the
// page to tell whether another page follows.
func listQuery(userID string, f epicme.EntryFilter) (string, []any, error) {
	var q strings.Builder
	args := []any{userID}
	q.WriteString(`SELECT e.id, e.title, e.is_favorite, e.created_at,
	e.tags
FROM entries e WHERE e.user_id = ?1`)
	if !f.From.IsZero() {
		q.WriteString(` AND e.created_at >= ?`)
		args = append(args, toNanos(f.From))
	}
	if !f.To.IsZero() {
		q.WriteString(` AND e.created_at < ?`)
		args = append(args, toNanos(f.To))
	}
	if f.FavoritesOnly {
		q.WriteString(` AND e.is_favorite = 1`)
	}
	if f.Cursor != "" {
		at, id, err := decodeListCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		q.WriteString(` AND e.created_at <= ? AND (e.created_at < ? OR e.id < ?)`)
		args = append(args, at, at, id)
	}
	if tags := epicme.UniqueIDs(f.TagIDs); len(tags) > 0 {
		b, _ := json.Marshal(tags)
		q.WriteString(` AND e.id IN (SELECT entry_id FROM entry_tags WHERE user_id = ?1
	AND tag_id IN (SELECT value FROM json_each(?)) GROUP BY entry_id HAVING count(*) = ?)`)
		args = append(args, string(b), len(tags))
	}
	q.WriteString(` ORDER BY e.created_at DESC, e.id DESC LIMIT ?`)
	args = append(args, f.Limit+1)

	return q.String(), args, nil
}

// List cursors are "l<created_at nanos>.<id>", base64url-encoded: opaque to
// clients, and checked on the way back in.
func encodeListCursor(createdAt, id int64) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "l%d.%d", createdAt, id))
}

func decodeListCursor(c string) (createdAt, id int64, err error) {
	bad := epicme.Invalid("cursor", "cursor is not valid: pass the nextCursor of a previous page, or omit it for the first page")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 4 || b[0] != 'l' {
		return 0, 0, bad
	}
	a, i, ok := strings.Cut(string(b[1:]), ".")
	if !ok {
		return 0, 0, bad
	}
	createdAt, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(i, 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return 0, 0, bad
	}
	return createdAt, id, nil
}
