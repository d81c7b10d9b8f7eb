package postgres

import "github.com/epicme/epicme"

// SetQuota sets how much each user may keep (zero limits take the
// defaults of epicme.DefaultQuota). Call it before the store serves
// requests. The counts are kept by triggers (migration 0003), and each
// write that could cross a limit reads them in its own transaction, after
// the row lock its counter update takes, so concurrent writes of one user
// cannot pass the limit together.
func (db *DB) SetQuota(q epicme.Quota) { db.quota = q }

var _ epicme.QuotaSetter = (*DB)(nil)
