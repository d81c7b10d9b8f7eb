package main

import (
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/sqlite"
)

// newMetrics returns the /metrics of serve: the calls of the server's tools,
// and the pool of whichever database holds the journal.
func newMetrics(m *mcpserver.Server, store journalStore) *httpserver.Metrics {
	metrics := httpserver.NewMetrics()
	m.CountToolCalls(metrics.ToolCall)
	switch db := store.(type) {
	case *postgres.DB:
		metrics.PoolStats = func() httpserver.PoolStats {
			s := db.Pool().Stat()
			return httpserver.PoolStats{
				MaxOpen: int(s.MaxConns()), Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()),
				WaitCount: s.EmptyAcquireCount(), WaitDuration: s.EmptyAcquireWaitTime(),
			}
		}
	case *sqlite.DB:
		metrics.PoolStats = func() httpserver.PoolStats {
			s := db.PoolStats()
			return httpserver.PoolStats{
				MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse, Idle: s.Idle,
				WaitCount: s.WaitCount, WaitDuration: s.WaitDuration,
			}
		}
	}
	return metrics
}

// verifierSamples reports the embedded authorization server's verifier.
func verifierSamples(as *authserver.Server) func() []httpserver.Sample {
	return func() []httpserver.Sample {
		v := as.VerifierStats()
		stale := 0.0
		if v.RevocationsStale {
			stale = 1
		}
		return []httpserver.Sample{
			{Name: "epicme_verifier_cache_hits_total", Help: "Access tokens whose verified signature was found in the cache.", Type: "counter", Value: float64(v.CacheHits)},
			{Name: "epicme_verifier_cache_misses_total", Help: "Access tokens whose signature had to be checked.", Type: "counter", Value: float64(v.CacheMisses)},
			{Name: "epicme_revoked_tokens", Help: "Revoked, unexpired access tokens in the verifier's list.", Type: "gauge", Value: float64(v.RevokedTokens)},
			{Name: "epicme_revocation_feed_stale", Help: "1 while the revocation feed is down and tokens are checked against the database.", Type: "gauge", Value: stale},
		}
	}
}
