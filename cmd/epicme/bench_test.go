package main

import (
	"context"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/epicme/epicme/bench"
)

// BenchmarkToolCall measures stateless tools/call round trips through the
// whole stack (HTTP, MCP, SQLite) on a small fixture, with 8 connections on
// a 2-core machine (b.SetParallelism scales with GOMAXPROCS). The README's
// figures come from "epicme bench run" on the full fixture.
//
//	go test -run '^$' -bench ToolCall ./cmd/epicme
func BenchmarkToolCall(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "data")
	e := env{stdin: nil, stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	ctx := context.Background()
	if err := runBenchFixture(ctx, []string{"--data-dir", dir, "--users", "50", "--entries", "100", "--log-level", "error"}, e); err != nil {
		b.Fatal(err)
	}
	data := dataFlags{dataDir: dir, logLevel: "error"}
	stop, url, users, err := startBenchServer(ctx, &data, 0, e)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()

	for _, w := range bench.Workloads {
		b.Run(w, func(b *testing.B) {
			var offset, failed atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := bench.NewCaller(bench.RunOptions{URL: url, Workload: w, Users: users}, int(offset.Add(997)))
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				for pb.Next() {
					if err := c.Call(); err != nil {
						if failed.Add(1) == 1 {
							b.Error(err)
						}
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
