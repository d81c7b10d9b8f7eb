package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/epicme/epicme/bench"
)

// BenchmarkToolCall measures stateless tools/call round trips through the
// whole stack (HTTP, MCP, SQLite) on a small fixture, with 8 connections on
// a 2-core machine (b.SetParallelism scales with GOMAXPROCS). The README's
// figures come from "epicme-bench run" on the full fixture.
//
//	go test -run '^$' -bench ToolCall ./cmd/epicme-bench  (in bench/)
func BenchmarkToolCall(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "data")
	e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
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

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }})
	return code, out.String(), errOut.String()
}

func TestBenchSmokeOnATinyFixture(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCLI(t, "fixture", "--data-dir", dir, "--users", "3", "--entries", "20", "--tags", "4")
	if code != 0 || !strings.Contains(out, "3 users, 60 entries, 12 tags") {
		t.Errorf("fixture: exit %d, printed %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "fixture", "--data-dir", dir, "--users", "3")
	if code != 1 || !strings.Contains(errOut, "already has 3 users") {
		t.Errorf("second fixture: exit %d %q", code, errOut)
	}
	code, out, errOut = runCLI(t, "run", "--data-dir", dir, "--entries", "20", "--connections", "2", "--duration", "300ms", "--warmup", "100ms", "--json")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Workload string
			Calls    int64
			Errors   int64
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("run line %q: %v", line, err)
		}
		if r.Calls == 0 || r.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors", r.Workload, r.Calls, r.Errors)
		}
		seen[r.Workload] = true
	}
	if len(seen) != 3 {
		t.Errorf("workloads run: %v", seen)
	}
	// The same on MCP 2025-11-25 sessions of the real server: every call
	// carries the session's id and is answered.
	code, out, errOut = runCLI(t, "run", "--data-dir", dir, "--entries", "20", "--connections", "2", "--duration", "300ms", "--warmup", "100ms", "--json", "--session", "--workload", "get_entry")
	var r struct{ Calls, Errors int64 }
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Calls == 0 || r.Errors != 0 {
		t.Fatalf("run --session: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errOut := runCLI(t, "fixture"); code != 2 || !strings.Contains(errOut, "--data-dir is required") {
		t.Errorf("fixture without --data-dir: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "nonsense"); code != 2 || !strings.Contains(errOut, "unknown subcommand") {
		t.Errorf("unknown subcommand: exit %d %q", code, errOut)
	}
}
