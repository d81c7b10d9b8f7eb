package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Shared is where instances behind one load balancer pool their buckets:
// one bucket per limiter name and key, refilled by the backend's own clock,
// so that the instances' clocks need not agree.
type Shared interface {
	// SyncRateLimits takes each bucket's Used tokens from the shared bucket
	// of its Limiter and Key (a missing one starts full: Burst tokens), after
	// refilling it at Rate tokens a second up to Burst since its last
	// sync, and sets each Tokens to what the shared bucket then holds,
	// which may be below zero when instances together took more than it
	// had. It does all of them at once or none, and never waits for a lock
	// held by another instance's sync for long (keys are taken in one order).
	// With no buckets it only checks that the backend answers.
	SyncRateLimits(ctx context.Context, buckets []SharedBucket) error
	// SweepRateLimits forgets the shared buckets that have refilled since
	// their last sync (a missing bucket is a full one) and returns how many.
	SweepRateLimits(ctx context.Context) (int64, error)
}

// SharedBucket is one bucket in a sync with a Shared backend.
type SharedBucket struct {
	Limiter string  // the limiter's name in its Group
	Key     string  // the key within the limiter (an address, a client...)
	Used    int64   // tokens taken on this instance since the last sync
	Rate    float64 // tokens a second
	Burst   float64 // most tokens the bucket holds
	Tokens  float64 // set by SyncRateLimits: what the shared bucket holds
}

// DefaultSyncInterval is how often a Group syncs: often enough that an
// instance learns of the others' use within a second, rarely enough that a
// busy cluster's syncs stay a small load on the database.
const DefaultSyncInterval = 500 * time.Millisecond

// sweepEvery is how often Run asks the backend to forget refilled buckets.
const sweepEvery = time.Minute

// Group shares the buckets of its limiters with other instances through a
// Shared backend, without ever making a request wait for it.
//
// Each limiter answers Allow from its own buckets in memory, as a limiter
// made by New does, and counts what it grants. Every sync interval (Run),
// one statement sends every limiter's counts since the last sync to the
// backend, which takes them from the shared bucket of the same name and key
// and returns what each shared bucket holds; the local bucket is then set to
// that, less what was taken locally while the statement ran. Between syncs
// an instance grants from its own view of the shared bucket, so across N
// instances a key can overshoot its limit, over any span of time, by at
// most what the other N-1 instances grant within one lag (the time between
// a grant on one instance and its sync reaching another: up to two sync
// intervals plus a round trip): (N-1) × (Burst + rate × lag). The overshoot
// is also debt: a shared bucket goes below zero and the key waits until it
// refills, so over minutes the cluster grants the configured rate. Buckets
// that refill locally with nothing taken are dropped from memory, and a key
// an instance has not seen starts full there, within the same bound.
//
// When a sync fails (the database is down) the limiters keep working on
// their own buckets, per instance, and what they granted meanwhile is not
// sent later (it would put every busy key deep in debt when the database
// comes back); the failure and the recovery are logged once each.
type Group struct {
	shared Shared
	logger *slog.Logger

	mu       sync.Mutex // guards limiters
	limiters []*Limiter

	syncMu  sync.Mutex // one sync at a time; guards failing
	failing bool

	syncs, failures atomic.Uint64
	down            atomic.Bool
}

// GroupStats counts a group's syncs, for metrics.
type GroupStats struct {
	Syncs    uint64 // syncs that succeeded (with or without anything to share)
	Failures uint64 // syncs the backend failed
	Down     bool   // the last sync failed: limits are per instance
}

// Stats returns the group's counts.
func (g *Group) Stats() GroupStats {
	return GroupStats{Syncs: g.syncs.Load(), Failures: g.failures.Load(), Down: g.down.Load()}
}

// NewGroup returns a group sharing its limiters' buckets through s. logger
// (nil: slog.Default) hears about outages of s.
func NewGroup(s Shared, logger *slog.Logger) *Group {
	if logger == nil {
		logger = slog.Default()
	}
	return &Group{shared: s, logger: logger}
}

// New returns a limiter of l whose buckets are shared under name, which
// must be the same on every instance and unique in the group. now is the
// clock of the local buckets (nil: time.Now). A nil group returns a limiter
// of its own, as New does.
func (g *Group) New(name string, l Limit, now func() time.Time) *Limiter {
	lim := New(l, now)
	if g == nil {
		return lim
	}
	lim.name = name
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range g.limiters {
		if o.name == name {
			panic(fmt.Sprintf("ratelimit: two limiters named %q in one group", name))
		}
	}
	g.limiters = append(g.limiters, lim)
	return lim
}

// syncRef remembers which local bucket a SharedBucket came from.
type syncRef struct {
	l   *Limiter
	key string
}

// Sync sends what the limiters granted since the last sync and takes in
// what the shared buckets hold, in one call to the backend. Run calls it
// every interval; tests call it directly.
func (g *Group) Sync(ctx context.Context) error {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	g.mu.Lock()
	limiters := append([]*Limiter(nil), g.limiters...)
	g.mu.Unlock()

	var batch []SharedBucket
	var refs []syncRef
	for _, l := range limiters {
		if !l.limit.Enabled() {
			continue
		}
		now := l.now()
		l.mu.Lock()
		for k, b := range l.buckets {
			if d := now.Sub(b.last); d > 0 {
				b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
				b.last = now
			}
			if b.used == 0 && b.tokens >= l.burst {
				// Full and unused here: the same as no bucket.
				delete(l.buckets, k)
				continue
			}
			batch = append(batch, SharedBucket{Limiter: l.name, Key: k, Used: b.used, Rate: l.rate, Burst: l.burst})
			refs = append(refs, syncRef{l, k})
			b.used = 0
		}
		l.mu.Unlock()
	}
	if len(batch) == 0 && !g.failing {
		g.syncs.Add(1)
		return nil // nothing to share (during an outage, an empty sync probes the backend)
	}
	if err := g.shared.SyncRateLimits(ctx, batch); err != nil {
		// What was granted meanwhile stays counted in the local buckets
		// only: see the Group's doc.
		g.failures.Add(1)
		g.down.Store(true)
		if !g.failing {
			g.failing = true
			g.logger.Warn("rate limits: cannot share with the other instances, limiting per instance until the database answers", "err", err)
		}
		return err
	}
	if g.failing {
		g.failing = false
		g.down.Store(false)
		g.logger.Info("rate limits: shared with the other instances again")
	}
	for i, r := range refs {
		l := r.l
		now := l.now()
		l.mu.Lock()
		if b := l.buckets[r.key]; b != nil {
			// b.used is what was granted here while the backend answered.
			b.tokens = math.Min(l.burst, batch[i].Tokens) - float64(b.used)
			b.last = now
		}
		l.mu.Unlock()
	}
	g.syncs.Add(1)
	return nil
}

// Run syncs every interval (DefaultSyncInterval if not positive) and sweeps
// the backend's refilled buckets every minute, until ctx ends. A sync
// that fails is retried at the next interval.
func (g *Group) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, max(interval*4, 2*time.Second))
		err := g.Sync(sctx)
		if err == nil && time.Since(lastSweep) >= sweepEvery {
			lastSweep = time.Now()
			if n, err := g.shared.SweepRateLimits(sctx); err != nil {
				g.logger.Debug("rate limits: sweeping the shared buckets", "err", err)
			} else if n > 0 {
				g.logger.Debug("rate limits: swept refilled shared buckets", "count", n)
			}
		}
		cancel()
	}
}

// Start runs Run in a goroutine and returns a function that stops it and
// waits until it has.
func (g *Group) Start(ctx context.Context, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx, interval)
	}()
	return func() {
		cancel()
		<-done
	}
}
