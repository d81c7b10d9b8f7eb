// Package ratelimit holds token buckets keyed by strings (a network source,
// an OAuth client, a user) and the HTTP answers for a request over its
// allowance: 429 Too Many Requests with Retry-After (RFC 6585 §4,
// RFC 9110 §10.2.3) and a body the caller's protocol understands (JSON-RPC
// for MCP, an OAuth error object for the authorization server).
//
// Buckets live in memory, so that a request never waits for anything but a
// mutex. A Limiter made by New is per process: behind a load balancer each
// instance grants its own allowance. A Limiter made by a Group shares its
// buckets with the other instances through a Shared backend (package
// postgres keeps them in the database all instances use): see Group for how
// and how far the limit can be overshot.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limit is an allowance: PerMinute requests a minute on average, and up to
// Burst at once after a quiet spell. A zero PerMinute means no limit.
type Limit struct {
	PerMinute int
	Burst     int
}

// Enabled reports whether the limit limits anything.
func (l Limit) Enabled() bool { return l.PerMinute > 0 }

// DefaultMaxKeys bounds how many keys a Limiter tracks: enough for every
// active source of a busy server, small enough (about 100 bytes a key)
// that rotating addresses cannot exhaust memory.
const DefaultMaxKeys = 100_000

// Limiter is a set of token buckets, one per key, each holding up to
// Limit.Burst tokens and refilled at Limit.PerMinute a minute. It is safe
// for concurrent use. The zero Limiter is not usable; call New.
type Limiter struct {
	limit   Limit
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time
	name    string // in a Group: the name its buckets are shared under

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	// used counts the tokens taken since the last sync with the shared
	// backend (only a Group's limiters sync).
	used int64
}

// New returns a limiter of l. A burst below one is one. now is the clock
// (nil: time.Now).
func New(l Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if l.Burst < 1 {
		l.Burst = 1
	}
	return &Limiter{
		limit: l, rate: float64(l.PerMinute) / 60, burst: float64(l.Burst),
		maxKeys: DefaultMaxKeys, now: now, buckets: map[string]*bucket{},
	}
}

// Limit returns the limiter's allowance.
func (l *Limiter) Limit() Limit { return l.limit }

// Allow takes a token from key's bucket. When the bucket is empty it
// returns false and how long until a token is back. A nil limiter, or one
// without a limit, allows everything.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil || !l.limit.Enabled() {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.used++
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// evict forgets the buckets that have refilled (they are the same as new
// ones); if every bucket is still in use, it forgets half of them, which
// only ever errs towards allowing. Called with mu held.
func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	n := len(l.buckets) / 2
	for k := range l.buckets {
		if n == 0 {
			break
		}
		delete(l.buckets, k)
		n--
	}
}

// Len returns how many keys the limiter tracks.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Seconds rounds a wait up to whole seconds, at least one, for
// Retry-After.
func Seconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
