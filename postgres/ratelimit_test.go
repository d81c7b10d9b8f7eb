package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/epicme/epicme/ratelimit"
)

// slowLimit refills one token a minute, so that the seconds a test takes
// add at most a token or two to what the buckets grant.
var slowLimit = ratelimit.Limit{PerMinute: 1, Burst: 20}

// Two instances, each with its own connection pool and group, share one
// allowance through the database: taking turns, with a sync after each
// request, they grant together the burst of one bucket, where two
// limiters of their own grant twice that.
func TestSharedRateLimitsHoldAcrossInstances(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	a, b := mustOpen(t, dbURL), mustOpen(t, dbURL)
	ctx := context.Background()
	ga, gb := ratelimit.NewGroup(a, nil), ratelimit.NewGroup(b, nil)
	la, lb := ga.New("mcp-client", slowLimit, nil), gb.New("mcp-client", slowLimit, nil)
	// A limiter of another name keeps its own buckets.
	other := ga.New("mcp-user", slowLimit, nil)

	granted := 0
	for i := 0; i < 40; i++ {
		for _, s := range []struct {
			l *ratelimit.Limiter
			g *ratelimit.Group
		}{{la, ga}, {lb, gb}} {
			if ok, _ := s.l.Allow("client-1"); ok {
				granted++
			}
			if err := s.g.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if granted < slowLimit.Burst || granted > slowLimit.Burst+2 {
		t.Fatalf("two instances granted %d requests together, want the burst of one bucket (%d), not %d", granted, slowLimit.Burst, 2*slowLimit.Burst)
	}
	for _, l := range []*ratelimit.Limiter{la, lb} {
		if ok, wait := l.Allow("client-1"); ok || wait < 30*time.Second {
			t.Fatalf("an instance grants past the shared bucket (ok=%v, wait %v)", ok, wait)
		}
	}
	if ok, _ := la.Allow("client-2"); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := other.Allow("client-1"); !ok {
		t.Fatal("a limiter of another name shares the bucket")
	}

	// Both instances take their whole view of the bucket before syncing:
	// the shared bucket goes into debt by the overshoot, which both then
	// wait out.
	lc, ld := ga.New("token-client", slowLimit, nil), gb.New("token-client", slowLimit, nil)
	burst := 0
	for _, l := range []*ratelimit.Limiter{lc, ld} {
		for ok, _ := l.Allow("c"); ok; ok, _ = l.Allow("c") {
			burst++
		}
	}
	if burst != 2*slowLimit.Burst {
		t.Fatalf("before any sync two instances granted %d, want each its burst", burst)
	}
	// a syncs first, then b, whose sync takes the bucket into debt; a
	// learns of it at its next sync.
	for _, g := range []*ratelimit.Group{ga, gb, ga} {
		if err := g.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []*ratelimit.Limiter{lc, ld} {
		// -20 tokens at one a minute: 21 minutes to the next.
		if ok, wait := l.Allow("c"); ok || wait < 20*time.Minute {
			t.Fatalf("after the overshoot: ok=%v wait %v, want the debt waited out (about 21 minutes)", ok, wait)
		}
	}

	// The keys are stored as their SHA-256, not in clear.
	var n int
	h := sha256.Sum256([]byte("client-1"))
	if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM rate_limit_buckets WHERE limiter = 'mcp-client' AND key_hash = $1`, h[:]).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows for the hashed key: %d, %v", n, err)
	}
	if err := a.Pool().QueryRow(ctx, `SELECT count(*) FROM rate_limit_buckets WHERE position('client-1'::bytea IN key_hash) > 0`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows holding the key in clear: %d, %v", n, err)
	}
}

// The sweep deletes the buckets that have refilled, and only those.
func TestSweepForgetsRefilledBuckets(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	bs := []ratelimit.SharedBucket{
		{Limiter: "x", Key: "old", Used: 5, Rate: 1, Burst: 10},
		{Limiter: "x", Key: "recent", Used: 5, Rate: 1, Burst: 10},
	}
	if err := db.SyncRateLimits(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if bs[0].Tokens != 5 || bs[1].Tokens != 5 {
		t.Fatalf("new buckets after using 5 of 10 hold %v and %v", bs[0].Tokens, bs[1].Tokens)
	}
	h := sha256.Sum256([]byte("old"))
	if _, err := db.Pool().Exec(ctx, `UPDATE rate_limit_buckets SET updated_at = now() - interval '6 seconds' WHERE key_hash = $1`, h[:]); err != nil {
		t.Fatal(err)
	}
	// Reading refills by the database's clock: 5 + 6 × 1, up to 10.
	watch := []ratelimit.SharedBucket{{Limiter: "x", Key: "old", Rate: 1, Burst: 10}, {Limiter: "x", Key: "never", Rate: 1, Burst: 10}}
	if err := db.SyncRateLimits(ctx, watch); err != nil {
		t.Fatal(err)
	}
	if watch[0].Tokens != 10 || watch[1].Tokens != 10 {
		t.Fatalf("a refilled bucket and a missing one read %v and %v, want full (10)", watch[0].Tokens, watch[1].Tokens)
	}
	n, err := db.SweepRateLimits(ctx)
	if err != nil || n != 1 {
		t.Fatalf("swept %d buckets (%v), want the refilled one", n, err)
	}
	var left int
	db.Pool().QueryRow(ctx, `SELECT count(*) FROM rate_limit_buckets`).Scan(&left)
	if left != 1 {
		t.Fatalf("%d buckets left, want the recent one", left)
	}
	if err := db.SyncRateLimits(ctx, nil); err != nil {
		t.Fatalf("an empty sync (a probe): %v", err)
	}
}

// When the database cannot be reached, the limiter goes on per instance;
// once it is back, the next sync shares again.
func TestSharedRateLimitsSurviveAnOutage(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(pgtest.EnvURL) == "" {
		testenv.Missing(t, testenv.Postgres, pgtest.SkipMessage)
	}
	link := pgtest.NewLink(t, u.Host)
	viaLink := *u
	viaLink.Host = link.Addr()
	q := viaLink.Query()
	q.Set("connect_timeout", "2")
	viaLink.RawQuery = q.Encode()
	a, b := mustOpen(t, viaLink.String()), mustOpen(t, dbURL)
	ctx := context.Background()
	ga, gb := ratelimit.NewGroup(a, nil), ratelimit.NewGroup(b, nil)
	la, lb := ga.New("x", slowLimit, nil), gb.New("x", slowLimit, nil)

	link.Cut()
	for i := 0; i < 5; i++ {
		if ok, _ := la.Allow("k"); !ok {
			t.Fatal("refused within the burst during the outage")
		}
	}
	if err := ga.Sync(ctx); err == nil {
		t.Fatal("a sync through a cut link succeeded")
	}
	// The local bucket still limits: the 15 tokens left, no more.
	n := 0
	for ok, _ := la.Allow("k"); ok; ok, _ = la.Allow("k") {
		n++
	}
	if n != slowLimit.Burst-5 {
		t.Fatalf("during the outage the instance granted %d more, want the %d left in its bucket", n, slowLimit.Burst-5)
	}
	if err := ga.Sync(ctx); err == nil {
		t.Fatal("a sync through a cut link succeeded")
	}

	link.Restore()
	// Instance b uses 10 of the shared bucket; a learns of it at its
	// first sync after the outage. What a granted during the outage was
	// never sent.
	for i := 0; i < 10; i++ {
		lb.Allow("k")
	}
	if err := gb.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	la.Allow("k") // a's local bucket is empty: refused, but the key is tracked
	if err := ga.Sync(ctx); err != nil {
		t.Fatalf("the first sync after the outage: %v", err)
	}
	var tokens float64
	h := sha256.Sum256([]byte("k"))
	if err := b.Pool().QueryRow(ctx, `SELECT tokens FROM rate_limit_buckets WHERE limiter = 'x' AND key_hash = $1`, h[:]).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens < 9 || tokens > 11 {
		t.Fatalf("the shared bucket holds %v tokens, want about 10 (b's use only)", tokens)
	}
	// a now grants from the shared bucket again: about 10 left.
	n = 0
	for ok, _ := la.Allow("k"); ok; ok, _ = la.Allow("k") {
		n++
	}
	if n < 9 || n > 11 {
		t.Fatalf("after the outage a granted %d, want the shared bucket's 10", n)
	}
}

var _ ratelimit.Shared = (*postgres.DB)(nil)

// Syncs of many instances on the same keys at once neither deadlock nor
// lose a count: after them each shared bucket holds its burst less every
// instance's use (the refill is one token a minute, a fraction over the
// test).
func TestConcurrentSyncsKeepEveryCount(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	const instances, rounds, keys = 4, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, instances*rounds)
	for i := range instances {
		db := mustOpen(t, dbURL)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				// Each instance lists the keys in another order.
				var bs []ratelimit.SharedBucket
				for k := range keys {
					key := (k + 7*i) % keys
					if i%2 == 1 {
						key = keys - 1 - key
					}
					bs = append(bs, ratelimit.SharedBucket{Limiter: "x", Key: fmt.Sprint("k", key), Used: 1, Rate: 1.0 / 60, Burst: 1000})
				}
				if err := db.SyncRateLimits(ctx, bs); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := mustOpen(t, dbURL)
	rows, err := check.Pool().Query(ctx, `SELECT tokens FROM rate_limit_buckets WHERE limiter = 'x'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var tokens float64
		if err := rows.Scan(&tokens); err != nil {
			t.Fatal(err)
		}
		n++
		if used := 1000 - tokens; used < instances*rounds-1 || used > instances*rounds {
			t.Fatalf("a bucket shows %v tokens used, want %d", used, instances*rounds)
		}
	}
	if n != keys {
		t.Fatalf("%d buckets, want %d", n, keys)
	}
}
