// Package lru is EpicMe's one in-memory cache: a map bounded in size, whose
// least recently used entry goes first when it is full, and whose entries
// may also expire. Every cache in the product (verified tokens, clients,
// users, metadata documents, sessions, DPoP proofs seen) is one of these,
// so each is bounded the same way and none empties itself when full.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache is a size-bounded map whose entries may expire. It is safe for
// concurrent use; a nil *Cache holds nothing.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key     K
	value   V
	expires time.Time
}

// New returns a cache of at most size entries (at least 1).
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{max: max(size, 1), ll: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value for k unless it has expired at now, and marks it
// recently used.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !e.expires.IsZero() && !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.value, true
}

// Put stores v for k until expires (zero: no expiry), evicting the least
// recently used entry when full.
func (c *Cache[K, V]) Put(k K, v V, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(k, v, expires)
}

// Add stores v for k until expires, as Put, unless k holds a value that
// has not expired at now; it reports whether it stored v. Of concurrent
// Adds of one key, one stores: the check-and-set of a replay cache.
func (c *Cache[K, V]) Add(k K, v V, expires, now time.Time) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		if e := el.Value.(*entry[K, V]); e.expires.IsZero() || now.Before(e.expires) {
			return false
		}
	}
	c.put(k, v, expires)
	return true
}

func (c *Cache[K, V]) put(k K, v V, expires time.Time) {
	if el, ok := c.items[k]; ok {
		e := el.Value.(*entry[K, V])
		e.value, e.expires = v, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&entry[K, V]{key: k, value: v, expires: expires})
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.items, el.Value.(*entry[K, V]).key)
	}
}

// Remove deletes k.
func (c *Cache[K, V]) Remove(k K) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.Remove(el)
		delete(c.items, k)
	}
}

// Clear deletes every entry.
func (c *Cache[K, V]) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
}

// Len returns the number of entries, expired ones included until they are
// looked up or evicted.
func (c *Cache[K, V]) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
