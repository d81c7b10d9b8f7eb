package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/internal/soak"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
	"go.uber.org/goleak"
)

// TestSoak runs EpicMe with its embedded authorization server in this
// process, on a fresh database, and drives it with real OAuth clients: each
// registers (RFC 7591), signs in and consents on the pages, calls a mixed
// workload with its access token, refreshes when the short-lived token
// expires, and every 25 calls (once its tokens have been refreshed) revokes
// its grant, checks the token is refused at once, and starts over as a new
// client. It fails on any unexpected error, if the heap (after garbage
// collection) grew past 1.5 times its size after the warm-up plus 16 MiB,
// or if anything it started is still running when it returns (goleak).
// Rate limits are off: they have their own tests, and would refuse the load.
//
// It runs 4 s; for a longer run, e.g. before a release:
//
//	EPICME_SOAK_DURATION=2m go test ./cmd/epicme -run '^TestSoak$' -v
func TestSoak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	duration, clients := 4*time.Second, 3
	if v := os.Getenv("EPICME_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("EPICME_SOAK_DURATION=%q: want a positive duration such as 2m", v)
		}
		duration, clients = d, 4
	}
	res, err := runSoak(context.Background(), duration, time.Second, clients, 25)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.report)
	t.Logf("heap after warm-up %.1f MiB, at the end %.1f MiB; goroutines before %d, after %d",
		float64(res.heapWarm)/(1<<20), float64(res.heapEnd)/(1<<20), res.goroutinesBefore, res.goroutinesAfter)
	if res.report.Unexpected > 0 {
		t.Errorf("%d unexpected errors", res.report.Unexpected)
	}
	if res.heapEnd > heapLimit(res.heapWarm) {
		t.Errorf("the heap grew from %d to %d bytes", res.heapWarm, res.heapEnd)
	}
	if res.goroutinesAfter > res.goroutinesBefore {
		t.Errorf("%d goroutines before the run, %d after", res.goroutinesBefore, res.goroutinesAfter)
	}
	if res.report.Calls == 0 || res.report.Registrations < 2 || res.report.Refreshes == 0 || res.report.Revocations == 0 {
		t.Errorf("report %s: want calls, several registrations, refreshes and revocations", res.report)
	}
}

type soakResult struct {
	report                            *soak.SoakReport
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
func runSoak(ctx context.Context, duration, ttl time.Duration, clients, every int) (*soakResult, error) {
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
	flags := authServerFlags{accessTokenTTL: ttl, trustForwardedFor: true, kek: kekSource()}
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
	opts := soak.SoakOptions{URL: publicURL, Email: email, Password: pw, Clients: clients, RevokeEvery: every, Scopes: epicme.AllScopes}
	// Warm up for a fifth of the time (caches, pools, the first keys),
	// then measure the heap, then run the rest.
	warm := duration / 5
	opts.Duration = warm
	first, err := soak.Soak(ctx, opts)
	if err != nil {
		stop()
		return nil, err
	}
	settle(func() bool { return runtime.NumGoroutine() <= res.goroutinesBefore })
	res.heapWarm = heapAfterGC()
	opts.Duration = duration - warm
	rest, err := soak.Soak(ctx, opts)
	if err != nil {
		stop()
		return nil, err
	}
	settle(func() bool {
		res.goroutinesAfter = runtime.NumGoroutine()
		return res.goroutinesAfter <= res.goroutinesBefore
	})
	// A sign-in the clients gave up on may still be hashing its password
	// (Argon2id holds 64 MiB) when the goroutine count is back.
	settle(func() bool {
		res.heapEnd = heapAfterGC()
		return res.heapEnd <= heapLimit(res.heapWarm)
	})
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

// settle checks done every 50 ms, for up to five seconds, until it
// reports true: requests a client gave up on at the end of a run (a
// password hash, say) finish on their own, and the connections the clients
// closed end on the server.
func settle(done func() bool) {
	for deadline := time.Now().Add(5 * time.Second); !done() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
}

// heapLimit is the most the heap may hold at the end of a soak whose heap
// held warm bytes after the warm-up: 1.5 times as much, plus 16 MiB.
func heapLimit(warm uint64) uint64 { return warm*3/2 + 16<<20 }

func addSoak(a, b *soak.SoakReport) *soak.SoakReport {
	out := &soak.SoakReport{
		Duration: a.Duration + b.Duration, Calls: a.Calls + b.Calls, Registrations: a.Registrations + b.Registrations,
		SignIns: a.SignIns + b.SignIns, Refreshes: a.Refreshes + b.Refreshes, Revocations: a.Revocations + b.Revocations,
		Refused: a.Refused + b.Refused, Unexpected: a.Unexpected + b.Unexpected,
	}
	out.FirstErrors = append(append(out.FirstErrors, a.FirstErrors...), b.FirstErrors...)
	return out
}
