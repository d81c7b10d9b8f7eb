-- Rate-limit buckets shared by every instance (package ratelimit, Group):
-- one token bucket per limiter and key, refilled by the database's clock.
-- The key is stored as its SHA-256 (addresses, client ids and user ids are
-- not kept in clear here, and a long key takes no more room). A bucket that
-- has refilled since its last sync is the same as no row, and is swept.
CREATE TABLE rate_limit_buckets (
	limiter    text             NOT NULL,
	key_hash   bytea            NOT NULL,
	tokens     double precision NOT NULL, -- below zero: debt
	rate       double precision NOT NULL CHECK (rate > 0), -- tokens a second
	burst      double precision NOT NULL CHECK (burst >= 1),
	updated_at timestamptz      NOT NULL,
	PRIMARY KEY (limiter, key_hash)
);
