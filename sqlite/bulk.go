package sqlite

import (
	"context"
	"time"

	"github.com/epicme/epicme"
)

// BulkInsert loads a user's tags and entries in one transaction, for
// fixtures and imports: much faster than one call per row, and all or
// nothing. Tags are created first, numbered after the user's existing tags,
// so entries[i].TagIDs may name them (the first new tag of a user with no
// tags is 1). Entries are numbered in slice order and dated one minute apart,
// the last one now, so the last entry is the newest. Every entry and tag is
// validated as by CreateEntry and CreateTag.
func (db *DB) BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error {
	for i := range tags {
		if err := tags[i].Validate(); err != nil {
			return err
		}
	}
	for i := range entries {
		if err := entries[i].Validate(); err != nil {
			return err
		}
	}
	return db.update(ctx, func(tx *Tx) error {
		for _, t := range tags {
			if _, err := tx.createTag(userID, t); err != nil {
				return err
			}
		}
		for i := range entries {
			created := tx.now.Add(-time.Duration(len(entries)-1-i) * time.Minute)
			if _, err := tx.createEntry(userID, &entries[i], created); err != nil {
				return err
			}
		}
		return nil
	})
}
