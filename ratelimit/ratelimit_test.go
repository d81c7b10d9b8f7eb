package ratelimit

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBucketRefillsAtTheRate(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	l := New(Limit{PerMinute: 60, Burst: 2}, c.now)
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Second {
		t.Fatalf("past the burst: ok=%v wait=%v, want refused for 1s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	c.t = c.t.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no token after a second at one a second")
	}
	// A long pause refills to the burst, never beyond.
	c.t = c.t.Add(time.Hour)
	n := 0
	for ok, _ := l.Allow("a"); ok; ok, _ = l.Allow("a") {
		n++
	}
	if n != 2 {
		t.Fatalf("%d requests after a pause, want the burst (2)", n)
	}
}

func TestNoLimitAllowsEverything(t *testing.T) {
	var nilLimiter *Limiter
	if ok, _ := nilLimiter.Allow("a"); !ok {
		t.Fatal("nil limiter refused")
	}
	l := New(Limit{}, nil)
	for i := 0; i < 1000; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("a zero limit refused")
		}
	}
	if l.Len() != 0 {
		t.Fatal("a zero limit tracks keys")
	}
}

// Rotating keys (addresses) cannot grow the limiter without bound.
func TestKeysAreBounded(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	l := New(Limit{PerMinute: 1, Burst: 1}, c.now)
	l.maxKeys = 100
	for i := 0; i < 10_000; i++ {
		l.Allow(strconv.Itoa(i))
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d keys tracked, cap 100", n)
	}
}

func TestWriteJSONRPCAndOAuth(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSONRPC(w, "this user", Limit{PerMinute: 5}, 1500*time.Millisecond)
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("JSON-RPC: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	want := `{"error":{"code":-32029,"data":{"retryAfter":2},"message":"rate limit exceeded: this user may make 5 requests a minute; retry after 2 seconds"},"id":null,"jsonrpc":"2.0"}`
	if w.Body.String() != want {
		t.Fatalf("body %s\nwant %s", w.Body, want)
	}
	w = httptest.NewRecorder()
	WriteOAuth(w, "this address", Limit{PerMinute: 5}, 0)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("OAuth: %d %v", w.Code, w.Header())
	}
}
