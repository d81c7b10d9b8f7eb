package sqlite

import "github.com/epicme/epicme"

// SetQuota sets how much each user may keep (zero limits take the
// defaults of epicme.DefaultQuota). Call it before the store serves
// requests. The counts are kept by triggers (migration 0003) and read
// inside the write transaction, which SQLite runs one at a time.
func (db *DB) SetQuota(q epicme.Quota) { db.quota = q }

var _ epicme.QuotaSetter = (*DB)(nil)
