package postgres_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
)

// events records what a Listener saw, in order.
type events struct {
	mu  sync.Mutex
	log []string
	ch  chan string
}

func newEvents() *events { return &events{ch: make(chan string, 100)} }

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
	e.ch <- s
}

// next waits for the next event.
func (e *events) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-e.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return ""
	}
}

func (e *events) listener() postgres.Listener {
	return postgres.Listener{
		Notify:      func(p string) { e.add("notify " + p) },
		Ready:       func() { e.add("ready") },
		Lost:        func(error) { e.add("lost") },
		HealthCheck: 100 * time.Millisecond,
	}
}

// TestListenDeliversInCommitOrderAcrossInstances notifies from one
// instance (pool) and listens on two others: both see every payload, in
// order, and a notification sent inside a transaction only once it
// commits.
func TestListenDeliversInCommitOrderAcrossInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.NewDatabase(t)
	sender := mustOpen(t, url)
	var listeners []*events
	var wg sync.WaitGroup
	for range 2 {
		db, ev := mustOpen(t, url), newEvents()
		listeners = append(listeners, ev)
		wg.Go(func() { db.Listen(ctx, "revocations", ev.listener()) })
		if got := ev.next(t); got != "ready" {
			t.Fatalf("first event %q, want ready", got)
		}
	}
	for i := range 5 {
		if err := sender.Notify(ctx, "revocations", fmt.Sprint("grant-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sender.Notify(ctx, "other-channel", "not for us"); err != nil {
		t.Fatal(err)
	}
	tx, err := sender.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify('revocations', 'rolled back')`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if err := sender.Notify(ctx, "revocations", "last"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range listeners {
		for i := range 5 {
			if got, want := ev.next(t), fmt.Sprint("notify grant-", i); got != want {
				t.Fatalf("event %q, want %q", got, want)
			}
		}
		if got := ev.next(t); got != "notify last" {
			t.Fatalf("event %q, want the last notification (and nothing from the rolled-back transaction)", got)
		}
	}
	cancel()
	wg.Wait()
}

// TestListenReportsALostConnectionAndRecovers ends the listening session
// from the server side: the listener hears Lost at once, then Ready once
// LISTEN is in place again, and every notification sent after Ready
// arrives.
func TestListenReportsALostConnectionAndRecovers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.NewDatabase(t)
	db := mustOpen(t, url)
	ev := newEvents()
	done := make(chan error, 1)
	go func() { done <- db.Listen(ctx, "revocations", ev.listener()) }()
	if got := ev.next(t); got != "ready" {
		t.Fatalf("first event %q, want ready", got)
	}
	for round := range 2 {
		var n int
		if err := db.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'epicme-listen'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("round %d: ended %d listening sessions (%v), want 1", round, n, err)
		}
		if got := ev.next(t); got != "lost" {
			t.Fatalf("round %d: event %q, want lost", round, got)
		}
		if got := ev.next(t); got != "ready" {
			t.Fatalf("round %d: event %q, want ready", round, got)
		}
		msg := fmt.Sprint("after reconnect ", round)
		if err := db.Notify(ctx, "revocations", msg); err != nil {
			t.Fatal(err)
		}
		if got := ev.next(t); got != "notify "+msg {
			t.Fatalf("round %d: event %q, want the notification sent after ready", round, got)
		}
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Listen returned %v, want context.Canceled", err)
	}
}

// stallingProxy forwards TCP connections on loopback to the database
// server and can stop forwarding without closing anything, as a dead
// network path does.
type stallingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	stall  bool
	resume chan struct{}
}

func newStallingProxy(t *testing.T, target string) *stallingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{ln: ln, resume: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	return p
}

func (p *stallingProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		stalled, resume := p.stall, p.resume
		p.mu.Unlock()
		if stalled {
			<-resume
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallingProxy) setStalled(stalled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall && !stalled {
		close(p.resume)
		p.resume = make(chan struct{})
	}
	p.stall = stalled
}

// TestListenNoticesASilentlyDeadConnection stalls the network path of the
// listening connection without closing it: the health check reports Lost
// within a few check intervals, and once the path works again the listener
// is Ready and receives notifications.
func TestListenNoticesASilentlyDeadConnection(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallingProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	listening := mustOpen(t, u.String())
	direct := mustOpen(t, dbURL)
	ev := newEvents()
	done := make(chan error, 1)
	go func() { done <- listening.Listen(ctx, "revocations", ev.listener()) }()
	if got := ev.next(t); got != "ready" {
		t.Fatalf("first event %q, want ready", got)
	}
	proxy.setStalled(true)
	start := time.Now()
	if got := ev.next(t); got != "lost" {
		t.Fatalf("event %q, want lost", got)
	}
	t.Logf("a stalled connection was reported lost after %v (health check every 100ms)", time.Since(start).Round(time.Millisecond))
	proxy.setStalled(false)
	if got := ev.next(t); got != "ready" {
		t.Fatalf("event %q, want ready", got)
	}
	if err := direct.Notify(ctx, "revocations", "after the stall"); err != nil {
		t.Fatal(err)
	}
	if got := ev.next(t); got != "notify after the stall" {
		t.Fatalf("event %q, want the notification", got)
	}
	cancel()
	<-done
}
