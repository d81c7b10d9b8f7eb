package postgres

import (
	"context"
	"time"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

var _ epicme.BulkLoader = (*DB)(nil)

// BulkInsert implements epicme.BulkLoader. It is much faster than one call
// per row: ids are allocated once, tags are checked in memory, and every
// statement goes to the server in one pipelined batch.
func (db *DB) BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error {
	if err := epicme.ValidateBulk(entries, tags); err != nil {
		return err
	}
	return db.updateJournal(ctx, userID, func(tx *Tx) error {
		if tx.rid == 0 {
			return epicme.UserNotFound()
		}
		var nextEntry, nextTag, nextLink int64
		if err := tx.queryRow(`SELECT next_entry_id, next_tag_id, next_entry_tag_id FROM users WHERE id = $1`, userID).
			Scan(&nextEntry, &nextTag, &nextLink); err != nil {
			return err
		}
		// Existing tags, to check ids and name clashes in memory: the
		// batch below must not fail halfway.
		known := map[int64]bool{}
		names := map[string]bool{}
		rows, err := tx.Query(tx.ctx, `SELECT id, name_key FROM tags WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		var id int64
		var key string
		if _, err := pgx.ForEachRow(rows, []any{&id, &key}, func() error {
			known[id], names[key] = true, true
			return nil
		}); err != nil {
			return err
		}

		b := &pgx.Batch{}
		for _, t := range tags {
			if names[epicme.TagNameKey(t.Name)] {
				return epicme.TagExists(t.Name)
			}
			names[epicme.TagNameKey(t.Name)] = true
			b.Queue(`INSERT INTO tags (user_id, id, name, name_key, description, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $6)`, userID, nextTag, t.Name, epicme.TagNameKey(t.Name), t.Description, tx.now)
			known[nextTag] = true
			nextTag++
		}
		for i := range entries {
			in := &entries[i]
			created := tx.now.Add(-time.Duration(len(entries)-1-i) * time.Minute)
			tagIDs := epicme.UniqueIDs(in.TagIDs)
			for _, tid := range tagIDs {
				if !known[tid] {
					return epicme.TagNotFound(tid)
				}
			}
			lexemes, n := searchLexemes(tx.rid, in.Title, in.Content)
			b.Queue(insertEntrySQL, userID, nextEntry, created, in.IsPrivate, in.IsFavorite,
				n, in.Title, in.Mood, in.Location, in.Weather, in.Content, lexemes)
			for _, tid := range tagIDs {
				b.Queue(`INSERT INTO entry_tags (user_id, id, entry_id, tag_id, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $5)`, userID, nextLink, nextEntry, tid, created)
				nextLink++
			}
			nextEntry++
		}
		b.Queue(`UPDATE users SET next_entry_id = $2, next_tag_id = $3, next_entry_tag_id = $4 WHERE id = $1`,
			userID, nextEntry, nextTag, nextLink)
		return tx.SendBatch(tx.ctx, b).Close()
	})
}

// Analyze refreshes the query planner's statistics. Run it after loading
// many entries at once (BulkInsert); autovacuum does it by itself later.
func (db *DB) Analyze(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, `ANALYZE users, entries, tags, entry_tags`); err != nil {
		return epicme.Internal(err)
	}
	return nil
}
