package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/epicme/epicme/ratelimit"
)

var _ ratelimit.Shared = (*DB)(nil)

// syncRateLimitsSQL takes each instance's use from the shared buckets and
// returns what they hold, for every bucket of a sync in one statement.
//
// A bucket used here (used > 0) is refilled by rate × the seconds since its
// last sync, up to its burst, less what was used: an INSERT ... ON CONFLICT
// DO UPDATE, which locks the row for the rest of the transaction. Rows are
// written in the order of the primary key, so two instances syncing the
// same keys at once queue rather than deadlock. A bucket only watched here
// (used = 0) is read, refilled to now, without writing; a missing row is a
// full bucket. now() is the database's clock, the same for every instance.
const syncRateLimitsSQL = `
WITH u AS (
	SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::float8[], $5::float8[])
		WITH ORDINALITY AS u(limiter, key_hash, used, rate, burst, i)
), written AS (
	INSERT INTO rate_limit_buckets AS b (limiter, key_hash, tokens, rate, burst, updated_at)
	SELECT limiter, key_hash, burst - used, rate, burst, now() FROM u
	WHERE used > 0
	ORDER BY limiter, key_hash
	ON CONFLICT (limiter, key_hash) DO UPDATE SET
		tokens = least(excluded.burst, b.tokens + excluded.rate * greatest(0, extract(epoch FROM excluded.updated_at - b.updated_at)))
		         - (excluded.burst - excluded.tokens),
		rate = excluded.rate, burst = excluded.burst, updated_at = excluded.updated_at
	RETURNING limiter, key_hash, tokens
)
SELECT u.i, w.tokens FROM u JOIN written w USING (limiter, key_hash)
UNION ALL
SELECT u.i, coalesce(least(u.burst, b.tokens + b.rate * greatest(0, extract(epoch FROM now() - b.updated_at))), u.burst)
FROM u LEFT JOIN rate_limit_buckets b USING (limiter, key_hash)
WHERE u.used = 0`

// SyncRateLimits implements ratelimit.Shared: it takes the buckets' use
// from the rate_limit_buckets table and sets what each then holds, in one
// statement and one round trip. Keys are stored as their SHA-256.
func (db *DB) SyncRateLimits(ctx context.Context, buckets []ratelimit.SharedBucket) error {
	n := len(buckets)
	limiters, keys := make([]string, n), make([][]byte, n)
	used, rates, bursts := make([]int64, n), make([]float64, n), make([]float64, n)
	for i, b := range buckets {
		h := sha256.Sum256([]byte(b.Key))
		limiters[i], keys[i], used[i], rates[i], bursts[i] = b.Limiter, h[:], b.Used, b.Rate, b.Burst
	}
	// A failed sync is not retried: the statement may have committed before
	// the connection was lost, and a second one would take the same use
	// twice. The next sync, an interval later, starts from the table.
	rows, err := db.pool.Query(ctx, syncRateLimitsSQL, limiters, keys, used, rates, bursts)
	if err != nil {
		return db.rateLimitError(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var i int64
		var tokens float64
		if err := rows.Scan(&i, &tokens); err != nil {
			return fmt.Errorf("postgres: reading shared rate limits: %w", err)
		}
		if i < 1 || i > int64(n) {
			return fmt.Errorf("postgres: shared rate limits: row %d of %d", i, n)
		}
		buckets[i-1].Tokens = tokens
		seen++
	}
	if err := rows.Err(); err != nil {
		return db.rateLimitError(err)
	}
	if seen != n {
		return fmt.Errorf("postgres: shared rate limits: %d buckets answered of %d", seen, n)
	}
	return nil
}

// SweepRateLimits implements ratelimit.Shared: it deletes the buckets that
// have refilled to their burst since their last sync.
func (db *DB) SweepRateLimits(ctx context.Context) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM rate_limit_buckets
		WHERE tokens + rate * extract(epoch FROM now() - updated_at) >= burst`)
	if err != nil {
		return 0, db.rateLimitError(err)
	}
	return tag.RowsAffected(), nil
}

// rateLimitError names the database in a failed sync; when the connection
// was lost, the pool is emptied so that the next sync opens a new one.
func (db *DB) rateLimitError(err error) error {
	if connectionLost(err) {
		db.pool.Reset()
		return db.connectError(err)
	}
	return fmt.Errorf("postgres: shared rate limits on %s: %w", db.target, err)
}
