// Command epicme-bench measures EpicMe under load: it builds fixtures,
// drives a server with MCP calls, and compares EpicMe with other MCP stacks
// (the peers). It is a module of its own so that the epicme binary carries
// none of it. From the bench directory of the repository:
//
//	go run ./cmd/epicme-bench <fixture|run|peers|serve-fixture> [flags]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/epicme/epicme/bench"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
)

const benchAbout = `Measure EpicMe under load.

Subcommands:
  epicme-bench fixture --data-dir DIR [--users N] [--entries N]
      fill an empty data directory with N users' journals
  epicme-bench run [--url URL | --data-dir DIR] [--workload W] [--connections N]
      send MCP tools/call requests and report calls/s and latency percentiles
  epicme-bench peers --data-dir DIR [--out DIR]
      measure EpicMe against other MCP stacks doing the same work, side by side
  epicme-bench serve-fixture --data-dir DIR
      serve a fixture on loopback without authentication, each call acting as
      the fixture user its X-Epicme-Bench-User header names (for peers)

The soak test of the embedded authorization server is a Go test:
  EPICME_SOAK_DURATION=2m go test ./cmd/epicme -run '^TestSoak$' -v

Run "epicme-bench <subcommand> --help" for its flags.`

func runBench(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing subcommand: fixture, run or peers")
	}
	switch args[0] {
	case "fixture":
		return runBenchFixture(ctx, args[1:], e)
	case "run":
		return runBenchRun(ctx, args[1:], e)
	case "peers":
		return runBenchPeers(ctx, args[1:], e)
	case "serve-fixture":
		return runBenchServeFixture(ctx, args[1:], e)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(e.stdout, "Usage: epicme-bench <fixture|run|peers|serve-fixture> [flags]\n\n%s\n", benchAbout)
		return nil
	}
	return usagef("unknown subcommand %q: want fixture, run or peers", args[0])
}

const benchFixtureAbout = `Fill an empty data directory with benchmark journals: --users users, each with
--entries entries of about 1 KB of generated text (deterministic for a seed)
and --tags tags, each entry carrying 1 to 4 of them. User 0 is
dev@epicme.local, the account "epicme serve --dev-insecure-no-auth" acts as.

The full fixture (10,000 x 100) takes a while and a few GB: build it once,
outside the repository, e.g. --data-dir /tmp/epicme-bench.`

func runBenchFixture(ctx context.Context, args []string, e env) error {
	var (
		data dataFlags
		o    bench.FixtureOptions
		seed uint64
	)
	fs := newFlagSet("fixture", benchFixtureAbout, e)
	data.register(fs)
	fs.IntVar(&o.Users, "users", 10000, "number of users")
	fs.IntVar(&o.EntriesPerUser, "entries", 100, "entries per user")
	fs.IntVar(&o.TagsPerUser, "tags", 10, "tags per user")
	fs.Uint64Var(&seed, "seed", 1, "seed of the generated text")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if o.Users < 1 || o.EntriesPerUser < 1 || o.TagsPerUser < 1 {
		return usagef("--users, --entries and --tags must be at least 1")
	}
	o.Seed = seed
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return err
	}
	o.Logger = logger
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	logger.Info("building fixture", "data_dir", dir, "users", o.Users, "entries_per_user", o.EntriesPerUser, "tags_per_user", o.TagsPerUser)
	st, err := bench.BuildFixture(ctx, store, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "fixture: %d users, %d entries, %d tags in %s (%s)\n",
		st.Users, st.Entries, st.Tags, st.Elapsed.Round(time.Second), store.Path())
	return nil
}

const benchRunAbout = `Send MCP tools/call requests (protocol 2026-07-28: stateless JSON POSTs on
keep-alive HTTP/1.1 connections; with --session, on 2025-11-25 sessions
instead) and report calls/s and latency percentiles. Exits with status 1 if
any call failed.

Two ways to choose the server:
  --url http://127.0.0.1:8080/mcp
      a running server, e.g. "epicme serve --dev-insecure-no-auth" on a
      fixture's data directory; every call acts as that server's user.
  --data-dir DIR  (without --url)
      start a server in this process on a loopback port, against the fixture
      in DIR; calls are spread over the fixture's users.

Workloads: get_entry (a random entry id), list_entries (first page of 50),
search_entries (alternately one- and two-word queries), or all (each in turn).`

func runBenchRun(ctx context.Context, args []string, e env) error {
	var (
		data     dataFlags
		o        bench.RunOptions
		workload string
		asJSON   bool
		profile  string
		session  bool
	)
	fs := newFlagSet("run", benchRunAbout, e)
	data.register(fs)
	fs.StringVar(&o.URL, "url", "", "MCP endpoint `URL` of a running server; without it, serve --data-dir in-process")
	fs.StringVar(&workload, "workload", "all", "`name`: get_entry, list_entries, search_entries or all")
	fs.IntVar(&o.Connections, "connections", 8, "keep-alive connections, one call in flight on each")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to measure each workload")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "how long to run before measuring")
	fs.IntVar(&o.Users, "users", 0, "spread calls over this many fixture users (in-process only; default: all)")
	fs.IntVar(&o.EntriesPerUser, "entries", 100, "entries per user in the fixture: get_entry asks for ids 1..N")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the ids and queries")
	fs.BoolVar(&asJSON, "json", false, "print results as JSON lines")
	fs.BoolVar(&session, "session", false, "send every call on an MCP "+bench.SessionVersion+" session (opened first; the calls act as\nfixture user 0) instead of stateless "+bench.ProtocolVersion+" requests")
	fs.StringVar(&profile, "cpuprofile", "", "write a CPU profile of this process (load generator and, without --url,\nthe server) to `file`, for go tool pprof")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	workloads := bench.Workloads
	if workload != "all" {
		if !contains(bench.Workloads, workload) {
			return usagef("--workload %q: want %s or all", workload, strings.Join(bench.Workloads, ", "))
		}
		workloads = []string{workload}
	}
	if o.Connections < 1 || o.Duration <= 0 || o.EntriesPerUser < 1 {
		return usagef("--connections, --duration and --entries must be positive")
	}
	if o.Warmup == 0 {
		o.Warmup = -1 // RunOptions: negative means none
	}
	if session {
		if o.Users > 1 {
			return usagef("--users spreads calls over users; a --session run acts as fixture user 0 (a session is its user's)")
		}
		o.Session, o.Users = bench.SessionVersion, 1
	}

	if o.URL == "" {
		stop, url, users, err := startBenchServer(ctx, &data, o.Users, e)
		if err != nil {
			return err
		}
		defer stop()
		o.URL, o.Users = url, users
	} else if o.Users > 1 {
		return usagef("--users spreads calls only on the in-process server; a server at --url acts as its own user")
	}

	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	failed := false
	for _, w := range workloads {
		o.Workload = w
		r, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(e.stdout, string(b))
		} else {
			fmt.Fprintln(e.stdout, r)
		}
		failed = failed || r.Errors > 0 || r.Calls == 0
	}
	if failed {
		return fmt.Errorf("some calls failed (or none were made)")
	}
	return nil
}

// startBenchServer serves the fixture in the data directory on a loopback
// port, with bench.FixtureAuth in place of authentication (see its comment),
// and returns the MCP URL and the number of users calls are spread over.
func startBenchServer(ctx context.Context, data *dataFlags, users int, e env) (stop func(), url string, n int, err error) {
	if data.logLevel == "info" {
		// One access line per call would cost the server more than the
		// calls; warnings and errors still show.
		data.logLevel = "warn"
	}
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return nil, "", 0, err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return nil, "", 0, err
	}
	secret, err := loadSecret(dir)
	if err != nil {
		return nil, "", 0, err
	}
	store, err := openStore(ctx, dir)
	if err != nil {
		return nil, "", 0, err
	}
	fail := func(err error) (func(), string, int, error) {
		store.Close()
		return nil, "", 0, err
	}
	have, err := bench.CountFixtureUsers(ctx, store)
	if err != nil {
		return fail(err)
	}
	if have == 0 {
		return fail(fmt.Errorf("no fixture in %s; build one first: go run ./cmd/epicme-bench fixture --data-dir %s --users 100", dir, dir))
	}
	if users <= 0 || users > have {
		users = have
	}
	mw, callers, err := bench.FixtureAuth(ctx, store, users)
	if err != nil {
		return fail(err)
	}
	mcp, err := mcpserver.New(store, callers, mcpserver.Options{Logger: logger, Secret: secret, Version: version})
	if err != nil {
		return fail(err)
	}
	srv, err := httpserver.New(httpserver.Config{MCP: mcp.HTTPHandler(), Auth: mw, Ready: store.Ping, Logger: logger})
	if err != nil {
		mcp.Close()
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		mcp.Close()
		return fail(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	logger.Log(ctx, slog.LevelWarn, "benchmark server without authentication on loopback", "addr", ln.Addr().String(), "users", users)
	stop = func() {
		cancel()
		<-done
		mcp.Close()
		store.Close()
	}
	return stop, "http://" + ln.Addr().String() + httpserver.MCPPath, users, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
