package authserver

import (
	"context"
	"sync"
	"time"
)

// usageEvery is how precisely the last use of a grant is kept: a token
// used again within this time of its last recorded use is not recorded
// again, and recorded uses reach the store at least this often.
const usageEvery = time.Minute

// usageRecorder remembers when access tokens were last accepted by the
// in-process verifier, so that Connected apps can show when each grant was
// last used, without a database write per request: uses are written in
// batches (at the latest every usageEvery, and before the page is shown).
type usageRecorder struct {
	mu      sync.RWMutex
	pending map[string]time.Time // jti → last use not yet stored
	seen    map[string]time.Time // jti → last use recorded
}

func newUsageRecorder() *usageRecorder {
	return &usageRecorder{pending: map[string]time.Time{}, seen: map[string]time.Time{}}
}

// use records that the token jti was accepted at now.
func (u *usageRecorder) use(jti string, now time.Time) {
	u.mu.RLock()
	last, ok := u.seen[jti]
	u.mu.RUnlock()
	if ok && now.Sub(last) < usageEvery {
		return
	}
	u.mu.Lock()
	u.seen[jti] = now
	u.pending[jti] = now
	u.mu.Unlock()
}

// flush writes the pending uses to the store and forgets tokens not used
// for a while.
func (u *usageRecorder) flush(ctx context.Context, store Store, now time.Time) error {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[string]time.Time{}
	for jti, t := range u.seen {
		if now.Sub(t) > time.Hour {
			delete(u.seen, jti)
		}
	}
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := store.MarkAccessTokensUsed(ctx, batch); err != nil {
		// Keep them for the next try.
		u.mu.Lock()
		for jti, t := range batch {
			if cur, ok := u.pending[jti]; !ok || t.After(cur) {
				u.pending[jti] = t
			}
		}
		u.mu.Unlock()
		return err
	}
	return nil
}
