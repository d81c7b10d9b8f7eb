package lru_test

import (
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/lru"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := lru.New[string, int](2)
	c.Put("a", 1, time.Time{})
	c.Put("b", 2, time.Time{})
	if _, ok := c.Get("a", t0); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.Put("c", 3, time.Time{})
	if _, ok := c.Get("b", t0); ok {
		t.Fatal("b, the least recently used, should have gone")
	}
	if v, ok := c.Get("a", t0); !ok || v != 1 {
		t.Fatalf("a = %v, %v", v, ok)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want the bound 2", c.Len())
	}
}

func TestEntriesExpire(t *testing.T) {
	c := lru.New[string, int](10)
	c.Put("a", 1, t0.Add(time.Minute))
	if _, ok := c.Get("a", t0.Add(59*time.Second)); !ok {
		t.Fatal("a expired early")
	}
	if _, ok := c.Get("a", t0.Add(time.Minute)); ok {
		t.Fatal("a outlived its expiry")
	}
	if c.Len() != 0 {
		t.Fatal("an expired entry found by Get should be dropped")
	}
	c.Put("b", 2, t0.Add(time.Minute))
	c.Remove("b")
	if _, ok := c.Get("b", t0); ok {
		t.Fatal("b survived Remove")
	}
}

func TestAddIsCheckAndSet(t *testing.T) {
	c := lru.New[string, bool](100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.Add("jti", true, t0.Add(time.Minute), t0) {
				mu.Lock()
				stored++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stored != 1 {
		t.Fatalf("%d concurrent Adds stored, want 1", stored)
	}
	if !c.Add("jti", true, t0.Add(2*time.Minute), t0.Add(time.Minute)) {
		t.Fatal("an expired key may be added again")
	}
}

func TestNilCacheHoldsNothing(t *testing.T) {
	var c *lru.Cache[string, int]
	c.Put("a", 1, time.Time{})
	if _, ok := c.Get("a", t0); ok || c.Len() != 0 {
		t.Fatal("a nil cache held something")
	}
}
