package postgres

import (
	"context"
	"time"

	"github.com/epicme/epicme/authserver"
)

// RevocationHandler receives the revocations announced on
// RevocationChannel; *authserver.RevocationFeed implements it.
type RevocationHandler interface {
	// Revoked adds revoked access tokens to the handler's list.
	Revoked(tokens []authserver.RevokedToken)
	// Reload reads the whole list from the store.
	Reload(ctx context.Context) error
	// Lost says notices may be missed until the next Ready.
	Lost(err error)
	// Ready says notices arrive again; the handler reloads its list.
	Ready(ctx context.Context) error
}

// ListenRevocations delivers the revocations every instance announces
// (revokeGrantsWhere, RevokeAccessToken) to h until ctx is done. Each
// announcement is sent inside the revoking transaction, so it arrives only
// once the revocation is committed and readable.
//
// After a lost connection, h hears Lost at once and Ready when LISTEN is in
// place again; a Ready (or Reload) that cannot read the store is tried
// again every 100ms, notices waiting meanwhile, until it succeeds or the
// connection is found lost again.
func (db *DB) ListenRevocations(ctx context.Context, h RevocationHandler) error {
	reload := func(f func(context.Context) error) {
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := f(rctx)
			cancel()
			if err == nil {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return db.Listen(ctx, RevocationChannel, Listener{
		Notify: func(payload string) {
			tokens, all := parseRevocationNotice(payload, db.now())
			if all {
				reload(h.Reload)
				return
			}
			h.Revoked(tokens)
		},
		Ready: func() { reload(h.Ready) },
		Lost:  h.Lost,
	})
}
