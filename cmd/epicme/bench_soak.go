package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/bench"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
)

const benchSoakAbout = `Run EpicMe with its embedded authorization server in this process, on a fresh
database in a temporary directory, and drive it with real OAuth clients for
--duration: each registers (RFC 7591), signs in and consents on the pages,
calls a mixed workload (writes, reads, lists, searches) with its access token,
refreshes when the short-lived token expires, and every --revoke-every calls
(once its tokens have been refreshed) revokes its grant, checks the token is
refused at once, and starts over as a new client.

At the end it fails unless there were no unexpected errors, the heap (after
garbage collection) did not grow past 1.5 times its size after the warm-up
plus 16 MiB, and the goroutines went back to their number before the run.
Rate limits are off: they have their own tests, and would refuse the load.`

func runBenchSoak(ctx context.Context, args []string, e env) error {
	var (
		duration, ttl  time.Duration
		clients, every int
	)
	fs := newFlagSet("bench soak", benchSoakAbout, e)
	fs.DurationVar(&duration, "duration", time.Minute, "how long to run")
	fs.IntVar(&clients, "clients", 4, "clients running at once")
	fs.DurationVar(&ttl, "access-token-ttl", 5*time.Second, "lifetime of access tokens (short, so that they expire and are refreshed)")
	fs.IntVar(&every, "revoke-every", 200, "calls a client makes before revoking its grant and registering anew (a grant is revoked only after one refresh)")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if duration <= 0 || clients <= 0 || every <= 0 || ttl <= 0 {
		return usagef("--duration, --clients, --revoke-every and --access-token-ttl must be positive")
	}
	res, err := soak(ctx, duration, ttl, clients, every)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, res.report)
	fmt.Fprintf(e.stdout, "heap after warm-up %.1f MiB, at the end %.1f MiB; goroutines before %d, after %d\n",
		float64(res.heapWarm)/(1<<20), float64(res.heapEnd)/(1<<20), res.goroutinesBefore, res.goroutinesAfter)
	var problems []error
	if res.report.Unexpected > 0 {
		problems = append(problems, fmt.Errorf("%d unexpected errors", res.report.Unexpected))
	}
	if res.heapEnd > res.heapWarm*3/2+16<<20 {
		problems = append(problems, fmt.Errorf("the heap grew from %d to %d bytes", res.heapWarm, res.heapEnd))
	}
	if res.goroutinesAfter > res.goroutinesBefore {
		problems = append(problems, fmt.Errorf("%d goroutines before the run, %d after", res.goroutinesBefore, res.goroutinesAfter))
	}
	if res.report.Refreshes == 0 || res.report.Revocations == 0 {
		problems = append(problems, errors.New("no token was refreshed or no grant revoked: run longer, or shorten --access-token-ttl or --revoke-every"))
	}
	return errors.Join(problems...)
}

type soakResult struct {
	report                            *bench.SoakReport
	heapWarm, heapEnd                 uint64
	goroutinesBefore, goroutinesAfter int
}

func heapAfterGC() uint64 {
	// Twice: the first moves sync.Pool contents (Argon2id buffers among
	// them) to the victim cache, the second frees them.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// soak serves a fresh journal on a loopback port and runs bench.Soak
// against it; everything it starts has stopped when it returns.
func soak(ctx context.Context, duration, ttl time.Duration, clients, every int) (*soakResult, error) {
	dir, err := os.MkdirTemp("", "epicme-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)

	store, err := sqlite.Open(ctx, filepath.Join(dir, "epicme.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	pw := rand.Text()
	hash, err := password.Hash(pw)
	if err != nil {
		return nil, err
	}
	const email = "soak@example.com"
	if _, err := store.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: email, PasswordHash: hash}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	publicURL := "http://" + ln.Addr().String()
	flags := authServerFlags{accessTokenTTL: ttl, trustForwardedFor: true}
	setup, err := embeddedAuth(ctx, &flags, publicURL, dir, store, logger)
	if err != nil {
		ln.Close()
		return nil, err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	mcp, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret, Version: version})
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer mcp.Close()
	var lim limitFlags // zero: no rate limits
	source := sourceAddress(true)
	srv, err := httpserver.New(httpserver.Config{
		MCP: mcp.HTTPHandler(), Auth: lim.mcp(setup.Middleware, source), Guard: lim.endpoints(source),
		Ready: store.Ping, Logger: logger,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	setup.Mount(srv)
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	stop := func() error {
		stopServe()
		return <-served
	}

	// One request first, so that the server's accept loop is running when
	// the goroutines are counted.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	if resp, err := hc.Get(publicURL + "/healthz"); err != nil {
		stop()
		return nil, err
	} else {
		resp.Body.Close()
	}
	res := &soakResult{goroutinesBefore: runtime.NumGoroutine()}
	opts := bench.SoakOptions{URL: publicURL, Email: email, Password: pw, Clients: clients, RevokeEvery: every, Scopes: epicme.AllScopes}
	// Warm up for a fifth of the time (caches, pools, the first keys),
	// then measure the heap, then run the rest.
	warm := duration / 5
	opts.Duration = warm
	first, err := bench.Soak(ctx, opts)
	if err != nil {
		stop()
		return nil, err
	}
	settle(res.goroutinesBefore)
	res.heapWarm = heapAfterGC()
	opts.Duration = duration - warm
	rest, err := bench.Soak(ctx, opts)
	if err != nil {
		stop()
		return nil, err
	}
	res.goroutinesAfter = settle(res.goroutinesBefore)
	res.heapEnd = heapAfterGC()
	res.report = addSoak(first, rest)
	if os.Getenv("EPICME_SOAK_STACKS") != "" && res.goroutinesAfter > res.goroutinesBefore {
		buf := make([]byte, 1<<20)
		os.Stderr.Write(buf[:runtime.Stack(buf, true)])
	}
	if err := stop(); err != nil {
		return nil, err
	}
	return res, nil
}

// settle waits, up to five seconds, for the goroutines to fall back to
// want: requests a client gave up on at the end of a run (a password hash,
// say) finish on their own, and the connections the clients closed end on
// the server. It returns the count it saw last.
func settle(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func addSoak(a, b *bench.SoakReport) *bench.SoakReport {
	out := &bench.SoakReport{
		Duration: a.Duration + b.Duration, Calls: a.Calls + b.Calls, Registrations: a.Registrations + b.Registrations,
		SignIns: a.SignIns + b.SignIns, Refreshes: a.Refreshes + b.Refreshes, Revocations: a.Revocations + b.Revocations,
		Refused: a.Refused + b.Refused, Unexpected: a.Unexpected + b.Unexpected,
	}
	out.FirstErrors = append(append(out.FirstErrors, a.FirstErrors...), b.FirstErrors...)
	return out
}
