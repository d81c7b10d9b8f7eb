package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/epicme/epicme"
)

var _ epicme.BulkLoader = (*DB)(nil)

// BulkInsert implements epicme.BulkLoader. It is several times faster than
// one call per row: ids are allocated once, tags are checked in memory, and
// the full-text rows are written together at the end.
func (db *DB) BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error {
	if err := epicme.ValidateBulk(entries, tags); err != nil {
		return err
	}
	return db.update(ctx, func(tx *Tx) error {
		var rid, nextEntry, nextTag, nextLink int64
		err := tx.queryRow(`SELECT rid, next_entry_id, next_tag_id, next_entry_tag_id FROM users WHERE id = ?`, userID).
			Scan(&rid, &nextEntry, &nextTag, &nextLink)
		if errors.Is(err, sql.ErrNoRows) {
			return epicme.UserNotFound()
		}
		if err != nil {
			return err
		}
		known := map[int64]bool{}
		rows, err := tx.query(`SELECT id FROM tags WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			known[id] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}

		now := toNanos(tx.now)
		for _, t := range tags {
			_, err := tx.exec(`INSERT INTO tags (user_id, id, name, name_key, description, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, userID, nextTag, t.Name, epicme.TagNameKey(t.Name), t.Description, now, now)
			if isUnique(err, "tags.name_key") {
				return epicme.TagExists(t.Name)
			}
			if err != nil {
				return err
			}
			known[nextTag] = true
			nextTag++
		}

		idx := make([]ftsRow, 0, len(entries))
		for i := range entries {
			in := &entries[i]
			created := toNanos(tx.now.Add(-time.Duration(len(entries)-1-i) * time.Minute))
			tagIDs := epicme.UniqueIDs(in.TagIDs)
			for _, tid := range tagIDs {
				if !known[tid] {
					return epicme.TagNotFound(tid)
				}
			}
			terms, n := indexTerms(in.Title, in.Content)
			if _, err := tx.exec(insertEntrySQL, userID, nextEntry, created, created, in.IsPrivate, in.IsFavorite,
				n, in.Title, in.Mood, in.Location, in.Weather, in.Content); err != nil {
				return err
			}
			for _, tid := range tagIDs {
				if _, err := tx.exec(`INSERT INTO entry_tags (user_id, id, entry_id, tag_id, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?)`, userID, nextLink, nextEntry, tid, created, created); err != nil {
					return err
				}
				nextLink++
			}
			idx = append(idx, ftsRow{ftsRowid(rid, nextEntry), terms})
			nextEntry++
		}
		if _, err := tx.exec(`UPDATE users SET next_entry_id = ?, next_tag_id = ?, next_entry_tag_id = ? WHERE id = ?`,
			nextEntry, nextTag, nextLink, userID); err != nil {
			return err
		}
		return tx.index(idx...)
	})
}
