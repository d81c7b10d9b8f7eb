package sqlite

import "testing"

// CountRows counts every row that belongs to a user, full-text rows included.
func (db *DB) CountRows(t testing.TB, userID string) int {
	t.Helper()
	var n, fts int
	err := db.read.QueryRow(`SELECT
		(SELECT count(*) FROM entries WHERE user_id = ?1) +
		(SELECT count(*) FROM tags WHERE user_id = ?1) +
		(SELECT count(*) FROM entry_tags WHERE user_id = ?1)`, userID).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	// The deleted user's rid is gone, so count full-text rows without an
	// entry instead: there must be none.
	err = db.read.QueryRow(`SELECT count(*) FROM entries_fts f WHERE NOT EXISTS (
		SELECT 1 FROM entries e JOIN users u ON u.id = e.user_id WHERE ((u.rid << 32) | e.id) = f.rowid)`).Scan(&fts)
	if err != nil {
		t.Fatal(err)
	}
	var own int
	err = db.read.QueryRow(`SELECT count(*) FROM entries_fts WHERE rowid BETWEEN
		(SELECT rid FROM users WHERE id = ?1) << 32 AND ((SELECT rid FROM users WHERE id = ?1) << 32) + 4294967295`, userID).Scan(&own)
	if err != nil {
		t.Fatal(err)
	}
	return n + fts + own
}
