package auth

import (
	"time"

	"github.com/epicme/epicme/internal/lru"
)

// sessionBindings remembers which identity (issuer, subject, client) each
// Mcp-Session-Id belongs to, so that a session id is never a credential: a
// request carrying another identity's token with that id is refused. Memory
// is bounded by an LRU of fixed size whose entries expire after a sliding
// idle time.
type sessionBindings struct {
	ttl time.Duration
	m   *lru.Cache[string, string]
}

func newSessionBindings(size int, ttl time.Duration) *sessionBindings {
	return &sessionBindings{ttl: ttl, m: lru.New[string, string](size)}
}

// check reports whether id may be used by identity: it is bound to
// identity, or not bound yet (then it is bound to identity from now on).
func (s *sessionBindings) check(id, identity string, now time.Time) bool {
	bound, ok := s.m.Get(id, now)
	if ok && bound != identity {
		return false
	}
	s.m.Put(id, identity, now.Add(s.ttl))
	return true
}

// bind records that the server gave id to identity.
func (s *sessionBindings) bind(id, identity string, now time.Time) {
	s.m.Put(id, identity, now.Add(s.ttl))
}

func (s *sessionBindings) forget(id string) { s.m.Remove(id) }

func identityOf(ti *TokenInfo) string {
	return ti.Issuer + "\x00" + ti.Subject + "\x00" + ti.ClientID
}
