package postgres

import (
	"context"
	"errors"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

const getTagSQL = `SELECT id, name, description, created_at, updated_at FROM tags WHERE user_id = $1 AND id = $2`

func scanTag(row pgx.Row, userID string, id int64) (*epicme.Tag, error) {
	t := epicme.Tag{UserID: userID}
	err := row.Scan(&t.ID, &t.Name, &t.Description, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.TagNotFound(id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return &t, nil
}

// CreateTag creates a tag numbered next for its user; ECONFLICT if the user
// has a tag of that name (compared case-insensitively).
func (db *DB) CreateTag(ctx context.Context, userID string, in epicme.NewTag) (*epicme.Tag, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var t *epicme.Tag
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		if tx.rid == 0 {
			return epicme.UserNotFound()
		}
		var id, count int64
		err := tx.queryRow(`UPDATE users SET next_tag_id = next_tag_id + 1 WHERE id = $1
			RETURNING next_tag_id - 1, tag_count`, userID).Scan(&id, &count)
		if err != nil {
			return err
		}
		if err := tx.quota.CheckNewTag(count); err != nil {
			return err
		}
		t = &epicme.Tag{ID: id, UserID: userID, Name: in.Name, Description: in.Description, CreatedAt: tx.now, UpdatedAt: tx.now}
		_, err = tx.exec(`INSERT INTO tags (user_id, id, name, name_key, description, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, userID, id, t.Name, epicme.TagNameKey(t.Name), t.Description, t.CreatedAt)
		if isUnique(err, "tags_name") {
			return epicme.TagExists(t.Name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// GetTag returns the user's tag; ENOTFOUND if the user has none with this id.
func (db *DB) GetTag(ctx context.Context, userID string, id int64) (*epicme.Tag, error) {
	return idempotent(ctx, db, func() (*epicme.Tag, error) {
		return scanTag(db.pool.QueryRow(ctx, getTagSQL, userID, id), userID, id)
	})
}

// ListTags returns all the user's tags, ordered by name.
func (db *DB) ListTags(ctx context.Context, userID string) ([]epicme.TagRef, error) {
	return collect(ctx, db, func(row pgx.Row) (epicme.TagRef, error) {
		var t epicme.TagRef
		err := row.Scan(&t.ID, &t.Name)
		return t, err
	}, `SELECT id, name FROM tags WHERE user_id = $1 ORDER BY name_key, id`, userID)
}

// UpdateTag changes the fields set in u and bumps updated_at; ECONFLICT if
// the new name is another of the user's tags. An empty update returns the
// tag unchanged.
func (db *DB) UpdateTag(ctx context.Context, userID string, id int64, u epicme.TagUpdate) (*epicme.Tag, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if u.Empty() {
		return db.GetTag(ctx, userID, id)
	}
	var t *epicme.Tag
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		var err error
		if t, err = scanTag(tx.queryRow(getTagSQL, userID, id), userID, id); err != nil {
			return err
		}
		u.Apply(t, tx.now)
		_, err = tx.exec(`UPDATE tags SET name = $3, name_key = $4, description = $5, updated_at = $6
			WHERE user_id = $1 AND id = $2`, userID, id, t.Name, epicme.TagNameKey(t.Name), t.Description, t.UpdatedAt)
		if isUnique(err, "tags_name") {
			return epicme.TagExists(t.Name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteTag deletes the user's tag and, by cascade, its links to entries, and
// returns the tag as it was.
func (db *DB) DeleteTag(ctx context.Context, userID string, id int64) (*epicme.Tag, error) {
	var t *epicme.Tag
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		var err error
		if t, err = scanTag(tx.queryRow(getTagSQL, userID, id), userID, id); err != nil {
			return err
		}
		_, err = tx.exec(`DELETE FROM tags WHERE user_id = $1 AND id = $2`, userID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// checkEntryAndTag returns ENOTFOUND naming the entry, else the tag, that is
// not the user's. The caller holds the user's lock, so neither can go away
// before the transaction ends.
func (tx *Tx) checkEntryAndTag(userID string, entryID, tagID int64) error {
	var entry, tag bool
	err := tx.queryRow(`SELECT
		EXISTS (SELECT 1 FROM entries WHERE user_id = $1 AND id = $2),
		EXISTS (SELECT 1 FROM tags WHERE user_id = $1 AND id = $3)`, userID, entryID, tagID).Scan(&entry, &tag)
	switch {
	case err != nil:
		return err
	case !entry:
		return epicme.EntryNotFound(entryID)
	case !tag:
		return epicme.TagNotFound(tagID)
	}
	return nil
}

// AddTagToEntry links the user's tag to the user's entry. Linking twice
// returns the existing link, unchanged. ENOTFOUND names the entry or the tag
// that is not the user's.
func (db *DB) AddTagToEntry(ctx context.Context, userID string, entryID, tagID int64) (*epicme.EntryTag, error) {
	var et *epicme.EntryTag
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		if err := tx.checkEntryAndTag(userID, entryID, tagID); err != nil {
			return err
		}
		var err error
		et, err = tx.link(userID, entryID, tagID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return et, nil
}

// link returns the link of an entry and a tag the caller has checked exist,
// creating it if needed. The caller holds the user's lock, so two
// transactions linking the same pair queue there and the second finds the
// first's link. The link id is only allocated for a new link, so repeats
// leave no gaps in the numbering.
func (tx *Tx) link(userID string, entryID, tagID int64) (*epicme.EntryTag, error) {
	et := &epicme.EntryTag{UserID: userID, EntryID: entryID, TagID: tagID}
	err := tx.queryRow(`SELECT id, created_at, updated_at FROM entry_tags WHERE user_id = $1 AND entry_id = $2 AND tag_id = $3`,
		userID, entryID, tagID).Scan(&et.ID, &et.CreatedAt, &et.UpdatedAt)
	if err == nil {
		et.CreatedAt, et.UpdatedAt = utc(et.CreatedAt), utc(et.UpdatedAt)
		return et, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if err := tx.queryRow(`UPDATE users SET next_entry_tag_id = next_entry_tag_id + 1 WHERE id = $1
		RETURNING next_entry_tag_id - 1`, userID).Scan(&et.ID); err != nil {
		return nil, err
	}
	et.CreatedAt, et.UpdatedAt = tx.now, tx.now
	if _, err := tx.exec(`INSERT INTO entry_tags (user_id, id, entry_id, tag_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)`, userID, et.ID, entryID, tagID, tx.now); err != nil {
		return nil, err
	}
	return et, nil
}

// RemoveTagFromEntry unlinks the user's tag from the user's entry. It returns
// ENOTFOUND if either is not the user's, and removed=false if they were not
// linked.
func (db *DB) RemoveTagFromEntry(ctx context.Context, userID string, entryID, tagID int64) (bool, error) {
	removed := false
	err := db.updateJournal(ctx, userID, func(tx *Tx) error {
		if err := tx.checkEntryAndTag(userID, entryID, tagID); err != nil {
			return err
		}
		tag, err := tx.exec(`DELETE FROM entry_tags WHERE user_id = $1 AND entry_id = $2 AND tag_id = $3`, userID, entryID, tagID)
		removed = tag.RowsAffected() > 0
		return err
	})
	return removed, err
}
