package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/epicme/epicme"
)

const getTagSQL = `SELECT id, name, description, created_at, updated_at FROM tags WHERE user_id = ? AND id = ?`

func scanTag(row *sql.Row, userID string, id int64) (*epicme.Tag, error) {
	t := epicme.Tag{UserID: userID}
	var created, updated int64
	err := row.Scan(&t.ID, &t.Name, &t.Description, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.TagNotFound(id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	t.CreatedAt, t.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &t, nil
}

// CreateTag creates a tag numbered next for its user; ECONFLICT if the user
// has a tag of that name (compared case-insensitively).
func (db *DB) CreateTag(ctx context.Context, userID string, in epicme.NewTag) (*epicme.Tag, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var t *epicme.Tag
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		t, err = tx.createTag(userID, in)
		return err
	})
	return t, err
}

func (tx *Tx) createTag(userID string, in epicme.NewTag) (*epicme.Tag, error) {
	var id, count int64
	err := tx.queryRow(`UPDATE users SET next_tag_id = next_tag_id + 1 WHERE id = ?
		RETURNING next_tag_id - 1, tag_count`, userID).Scan(&id, &count)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.UserNotFound()
	}
	if err != nil {
		return nil, err
	}
	if err := tx.db.quota.OrDefault().CheckNewTag(count); err != nil {
		return nil, err
	}
	t := &epicme.Tag{ID: id, UserID: userID, Name: in.Name, Description: in.Description, CreatedAt: tx.now, UpdatedAt: tx.now}
	_, err = tx.exec(`INSERT INTO tags (user_id, id, name, name_key, description, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, userID, id, t.Name, epicme.TagNameKey(t.Name), t.Description, toNanos(t.CreatedAt), toNanos(t.UpdatedAt))
	if isUnique(err, "tags.name_key") {
		return nil, epicme.TagExists(t.Name)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// GetTag returns the user's tag; ENOTFOUND if the user has none with this id.
func (db *DB) GetTag(ctx context.Context, userID string, id int64) (*epicme.Tag, error) {
	return scanTag(db.queryRow(ctx, getTagSQL, userID, id), userID, id)
}

// ListTags returns all the user's tags, ordered by name.
func (db *DB) ListTags(ctx context.Context, userID string) ([]epicme.TagRef, error) {
	return collect(ctx, db, func(row rowScanner) (epicme.TagRef, error) {
		var t epicme.TagRef
		err := row.Scan(&t.ID, &t.Name)
		return t, err
	}, `SELECT id, name FROM tags WHERE user_id = ? ORDER BY name_key, id`, userID)
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
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		if t, err = scanTag(tx.queryRow(getTagSQL, userID, id), userID, id); err != nil {
			return err
		}
		u.Apply(t, tx.now)
		_, err = tx.exec(`UPDATE tags SET name = ?, name_key = ?, description = ?, updated_at = ?
			WHERE user_id = ? AND id = ?`, t.Name, epicme.TagNameKey(t.Name), t.Description, toNanos(t.UpdatedAt), userID, id)
		if isUnique(err, "tags.name_key") {
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
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		if t, err = scanTag(tx.queryRow(getTagSQL, userID, id), userID, id); err != nil {
			return err
		}
		_, err = tx.exec(`DELETE FROM tags WHERE user_id = ? AND id = ?`, userID, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// AddTagToEntry links the user's tag to the user's entry. Linking twice
// returns the existing link, unchanged. ENOTFOUND names the entry or the tag
// that is not the user's.
func (db *DB) AddTagToEntry(ctx context.Context, userID string, entryID, tagID int64) (*epicme.EntryTag, error) {
	var et *epicme.EntryTag
	err := db.update(ctx, func(tx *Tx) error {
		if err := tx.checkEntry(userID, entryID); err != nil {
			return err
		}
		if err := tx.checkTag(userID, tagID); err != nil {
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
// creating it if needed. The link id is only allocated for a new link, so
// repeats leave no gaps in the numbering.
func (tx *Tx) link(userID string, entryID, tagID int64) (*epicme.EntryTag, error) {
	et := &epicme.EntryTag{UserID: userID, EntryID: entryID, TagID: tagID}
	var created, updated int64
	err := tx.queryRow(`SELECT id, created_at, updated_at FROM entry_tags WHERE user_id = ? AND entry_id = ? AND tag_id = ?`,
		userID, entryID, tagID).Scan(&et.ID, &created, &updated)
	if err == nil {
		et.CreatedAt, et.UpdatedAt = fromNanos(created), fromNanos(updated)
		return et, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err := tx.queryRow(`UPDATE users SET next_entry_tag_id = next_entry_tag_id + 1 WHERE id = ?
		RETURNING next_entry_tag_id - 1`, userID).Scan(&et.ID); err != nil {
		return nil, err
	}
	et.CreatedAt, et.UpdatedAt = tx.now, tx.now
	if _, err := tx.exec(`INSERT INTO entry_tags (user_id, id, entry_id, tag_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, userID, et.ID, entryID, tagID, toNanos(tx.now), toNanos(tx.now)); err != nil {
		return nil, err
	}
	return et, nil
}

// RemoveTagFromEntry unlinks the user's tag from the user's entry. It returns
// ENOTFOUND if either is not the user's, and removed=false if they were not
// linked.
func (db *DB) RemoveTagFromEntry(ctx context.Context, userID string, entryID, tagID int64) (bool, error) {
	removed := false
	err := db.update(ctx, func(tx *Tx) error {
		if err := tx.checkEntry(userID, entryID); err != nil {
			return err
		}
		if err := tx.checkTag(userID, tagID); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM entry_tags WHERE user_id = ? AND entry_id = ? AND tag_id = ?`, userID, entryID, tagID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		removed = n > 0
		return err
	})
	return removed, err
}
