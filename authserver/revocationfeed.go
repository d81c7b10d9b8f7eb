package authserver

import (
	"context"
	"errors"
	"time"
)

// RevocationFeed brings the revocations made by other instances sharing
// the store into this server's revocation list as they commit, instead of
// at the next sync (syncEvery): the store announces each revocation (for
// PostgreSQL, a NOTIFY inside the revoking transaction) and whoever listens
// calls these methods in the order the notices arrive.
//
// A listener can miss notices while its connection is down. So from
// [Server.RevocationFeed] until the first Ready, and from every Lost until
// the next Ready, the list counts as stale: each token's revocation is then
// read from the store itself, and when the store cannot answer the token is
// refused as unavailable (HTTP 503). The server never answers from a list
// that may have missed a revocation.
type RevocationFeed struct {
	s *Server
}

// RevocationFeed returns the feed of this server's revocation list and
// marks the list stale until the feed's first Ready.
func (s *Server) RevocationFeed() *RevocationFeed {
	s.revoked.stale.Store(true)
	return &RevocationFeed{s: s}
}

// Revoked adds access tokens another instance revoked.
func (f *RevocationFeed) Revoked(tokens []RevokedToken) {
	for _, t := range tokens {
		f.s.revoked.add(t.JTI, t.ExpiresAt)
	}
}

// Reload reads the whole revocation list again, for a notice that did not
// say which tokens (too many for one). When the store cannot be read, the
// list is stale until a Reload or Ready succeeds.
func (f *RevocationFeed) Reload(ctx context.Context) error {
	if err := f.s.revoked.reload(ctx); err != nil {
		f.s.revoked.stale.Store(true)
		return err
	}
	f.s.revoked.stale.Store(false)
	return nil
}

// Lost says that notices may be missed from now on: the list is stale, and
// the cache of verified signatures is dropped too, so that nothing learnt
// before the gap is trusted after it.
func (f *RevocationFeed) Lost(error) {
	f.s.revoked.stale.Store(true)
	f.s.verified.clear()
}

// Ready says that notices are received again: the list is read whole from
// the store (what was revoked during the gap included) and is fresh once
// that succeeds. Call it after the listener is in place, never before, or a
// revocation committed in between would be missed.
func (f *RevocationFeed) Ready(ctx context.Context) error {
	return f.Reload(ctx)
}

// errRevocationsStale says that the revocation list may have missed
// revocations and the store could not be asked.
var errRevocationsStale = errors.New("authserver: the revocation list may be out of date and the store cannot be read")

// checkStale answers for one token while the list is stale: from the store
// itself, or not at all.
func (l *revocationList) checkStale(ctx context.Context, jti string) (bool, error) {
	rev, err := l.store.IsAccessTokenRevoked(ctx, jti)
	if err != nil {
		return false, errors.Join(errRevocationsStale, err)
	}
	return rev, nil
}

// reload replaces the list by every unexpired revocation in the store.
func (l *revocationList) reload(ctx context.Context) error {
	now := l.now()
	rows, err := l.store.RevokedAccessTokens(ctx, time.Time{}, now)
	if err != nil {
		return err
	}
	m := make(map[string]time.Time, len(rows))
	var since time.Time
	for _, r := range rows {
		m[r.JTI] = r.ExpiresAt
		if r.RevokedAt.After(since) {
			since = r.RevokedAt
		}
	}
	l.mu.Lock()
	// Keep what this process added while the store was being read.
	for j, exp := range l.jtis {
		if _, ok := m[j]; !ok && exp.After(now) {
			m[j] = exp
		}
	}
	l.jtis, l.since = m, since
	l.mu.Unlock()
	l.nextSync.Store(now.Add(syncEvery).UnixNano())
	return nil
}

// reloadFor reads the signing keys again when a token names a key this
// process does not know, which another instance sharing the store may have
// created; at most once a second, so that made-up kids cost nothing.
func (k *keyring) reloadFor(kid string) *signingKey {
	now := time.Now().UnixNano()
	next := k.nextReload.Load()
	if now < next || !k.nextReload.CompareAndSwap(next, now+int64(time.Second)) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	k.mu.Lock()
	err := k.load(ctx)
	k.mu.Unlock()
	if err != nil {
		return nil
	}
	return k.lookup(kid)
}
