package sqlite

import "database/sql"

// PoolStats returns the statistics of the reader pool (the writer is one
// connection held for the life of the DB), for /metrics.
func (db *DB) PoolStats() sql.DBStats { return db.read.Stats() }
