package main

import (
	"slices"

	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/sqlite"
)

// newMetrics returns the /metrics of serve: tool durations for the
// server's own tools, and the pool of whichever database holds the journal.
func newMetrics(m *mcpserver.Server, store journalStore) *httpserver.Metrics {
	var tools []string
	for name := range m.MCPServer().ListTools() {
		tools = append(tools, name)
	}
	slices.Sort(tools)
	metrics := httpserver.NewMetrics(tools)
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
