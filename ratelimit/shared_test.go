package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memShared keeps shared buckets in memory with the arithmetic the
// interface asks for, on a fake clock, so that the merge of local and shared
// counts can be tested step by step. (package postgres runs the same
// scenario on a real database.)
type memShared struct {
	c    *clock
	mu   sync.Mutex
	down bool
	b    map[string]*memBucket
}

type memBucket struct {
	tokens float64
	last   time.Time
}

var errDown = errors.New("database unreachable")

func (m *memShared) SyncRateLimits(_ context.Context, bs []SharedBucket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	for i := range bs {
		k := bs[i].Limiter + "\x00" + bs[i].Key
		b := m.b[k]
		if b == nil {
			b = &memBucket{tokens: bs[i].Burst, last: m.c.t}
			m.b[k] = b
		}
		b.tokens = math.Min(bs[i].Burst, b.tokens+m.c.t.Sub(b.last).Seconds()*bs[i].Rate) - float64(bs[i].Used)
		b.last = m.c.t
		bs[i].Tokens = b.tokens
	}
	return nil
}

func (m *memShared) SweepRateLimits(context.Context) (int64, error) { return 0, nil }

// drive runs two instances for d of fake time: every 100ms each tries
// tries requests for key "k", and every 500ms both sync. It returns how
// many requests the two granted together.
func drive(t *testing.T, c *clock, a, b *Limiter, ga, gb *Group, d time.Duration, tries int) int {
	t.Helper()
	granted := 0
	for step := 0; step < int(d/(100*time.Millisecond)); step++ {
		for _, l := range []*Limiter{a, b} {
			for i := 0; i < tries; i++ {
				if ok, _ := l.Allow("k"); ok {
					granted++
				}
			}
		}
		c.t = c.t.Add(100 * time.Millisecond)
		if step%5 == 4 {
			ga.Sync(context.Background())
			gb.Sync(context.Background())
		}
	}
	return granted
}

// Two instances sharing their buckets grant together about what one
// limiter grants, within the documented overshoot, where two limiters of
// their own would grant twice that.
func TestGroupsShareOneAllowance(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := &memShared{c: c, b: map[string]*memBucket{}}
	lim := Limit{PerMinute: 60, Burst: 10}
	ga, gb := NewGroup(m, nil), NewGroup(m, nil)
	a, b := ga.New("mcp-client", lim, c.now), gb.New("mcp-client", lim, c.now)
	granted := drive(t, c, a, b, ga, gb, time.Minute, 5)

	// One bucket grants Burst + rate × 60s = 70 in a minute. The bound:
	// (N-1) × (Burst + rate × lag), lag = two sync intervals = 1s: 11.
	one := 10 + 60
	if granted < one-2 || granted > one+11 {
		t.Fatalf("two sharing instances granted %d in a minute; one limiter grants %d, the bound allows %d", granted, one, one+11)
	}
	// Alone, each would have granted the full 70.
	c2 := &clock{c.t}
	alone := 0
	for _, l := range []*Limiter{New(lim, c2.now), New(lim, c2.now)} {
		for step := 0; step < 600; step++ {
			for i := 0; i < 5; i++ {
				if ok, _ := l.Allow("k"); ok {
					alone++
				}
			}
			c2.t = c2.t.Add(100 * time.Millisecond)
		}
		c2.t = c.t
	}
	if alone < 2*one-2 {
		t.Fatalf("unshared limiters granted %d, want about %d", alone, 2*one)
	}
	t.Logf("in one minute: shared %d, unshared %d, one limiter %d", granted, alone, one)

	// Over a longer run the overshoot does not add up: it is debt.
	granted = drive(t, c, a, b, ga, gb, 10*time.Minute, 5)
	if want := 600; granted < want-5 || granted > want+11 {
		t.Fatalf("ten more minutes granted %d, want about %d", granted, want)
	}
}

// A sync sets the local bucket to the shared one, less what was granted
// locally while it ran.
func TestSyncTakesInTheOthersUse(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := &memShared{c: c, b: map[string]*memBucket{}}
	lim := Limit{PerMinute: 60, Burst: 10}
	ga, gb := NewGroup(m, nil), NewGroup(m, nil)
	a, b := ga.New("x", lim, c.now), gb.New("x", lim, c.now)
	for i := 0; i < 10; i++ {
		if ok, _ := a.Allow("k"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	b.Allow("k") // b knows the key, with 9 tokens left in its view
	if err := ga.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := gb.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The shared bucket holds 10 - 10 - 1 = -1: b must wait two seconds.
	ok, wait := b.Allow("k")
	if ok || wait != 2*time.Second {
		t.Fatalf("after the sync b grants %v, wait %v; want refused for 2s", ok, wait)
	}
	// A key nobody used since the last sync and full again is dropped.
	c.t = c.t.Add(time.Minute)
	ga.Sync(context.Background())
	if a.Len() != 0 {
		t.Fatalf("a still tracks %d refilled keys", a.Len())
	}
}

// When the backend fails, the limiters go on per instance, the outage and
// the recovery are logged once, and sharing resumes.
func TestOutageFallsBackToLocalLimits(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := &memShared{c: c, b: map[string]*memBucket{}}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	lim := Limit{PerMinute: 60, Burst: 10}
	ga, gb := NewGroup(m, logger), NewGroup(m, logger)
	a, b := ga.New("x", lim, c.now), gb.New("x", lim, c.now)

	m.down = true
	granted := 0
	for i := 0; i < 3; i++ {
		for _, l := range []*Limiter{a, b} {
			for j := 0; j < 20; j++ {
				if ok, _ := l.Allow("k"); ok {
					granted++
				}
			}
		}
		if err := ga.Sync(context.Background()); !errors.Is(err, errDown) {
			t.Fatalf("sync during the outage: %v", err)
		}
		gb.Sync(context.Background())
	}
	// Each instance still limits on its own: its burst, no more.
	if granted != 20 {
		t.Fatalf("during the outage two instances granted %d, want 2 × burst = 20", granted)
	}
	if n := strings.Count(logs.String(), "cannot share"); n != 2 {
		t.Fatalf("the outage was logged %d times by two groups, want once each:\n%s", n, logs.String())
	}
	if st := ga.Stats(); st.Failures != 3 || !st.Down || st.Syncs != 0 {
		t.Fatalf("stats during the outage: %+v", st)
	}

	m.down = false
	c.t = c.t.Add(10 * time.Second) // each local bucket refills to the burst
	for _, g := range []*Group{ga, gb} {
		if err := g.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "shared with the other instances again"); n != 2 {
		t.Fatalf("the recovery was logged %d times, want once per group:\n%s", n, logs.String())
	}
	if st := ga.Stats(); st.Failures != 3 || st.Down || st.Syncs != 1 {
		t.Fatalf("stats after the outage: %+v", st)
	}
	// What was granted during the outage was not sent: the shared bucket
	// is not in debt, and the two share it again.
	granted = 0
	for _, l := range []*Limiter{a, b} {
		for j := 0; j < 20; j++ {
			if ok, _ := l.Allow("k"); ok {
				granted++
			}
		}
	}
	ga.Sync(context.Background())
	gb.Sync(context.Background())
	for _, l := range []*Limiter{a, b} {
		if ok, _ := l.Allow("k"); ok {
			t.Fatal("granted past the shared bucket after the sync")
		}
	}
	if granted != 20 {
		t.Fatalf("after the outage the instances granted %d before syncing, want 2 × burst", granted)
	}
}

func TestGroupRefusesTwoLimitersOfOneName(t *testing.T) {
	g := NewGroup(&memShared{c: &clock{}}, nil)
	g.New("a", Limit{PerMinute: 1}, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("a second limiter named a was accepted")
		}
	}()
	g.New("a", Limit{PerMinute: 1}, nil)
}

// Requests and syncs run at once (for the race detector), and every grant
// reaches the shared bucket exactly once.
func TestSyncWhileAllowing(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	m := &memShared{c: c, b: map[string]*memBucket{}}
	g := NewGroup(m, nil)
	l := g.New("x", Limit{PerMinute: 1, Burst: 100_000}, c.now)
	var wg sync.WaitGroup
	var granted atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if ok, _ := l.Allow("k"); ok {
					granted.Add(1)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				g.Sync(context.Background())
			}
		}
	}()
	wg.Wait()
	close(done)
	g.Sync(context.Background())
	m.mu.Lock()
	defer m.mu.Unlock()
	if used := 100_000 - m.b["x\x00k"].tokens; used != float64(granted.Load()) {
		t.Fatalf("the shared bucket counts %v used, the limiter granted %d", used, granted.Load())
	}
}
