package authserver

import (
	"context"
	"time"
)

// RotationTx is what a store offers [Rotate] within the one transaction of
// a Store.RotateRefreshToken: the SQL is the store's, the rules are
// Rotate's.
type RotationTx interface {
	// RefreshToken returns the refresh token with hash and its grant,
	// locked as the store needs for concurrent rotations of one family to
	// run one after another; nil for either when either is missing.
	RefreshToken(hash string) (*RefreshToken, *Grant, error)
	// RotatedSince counts the refresh tokens of grant grantID, other than
	// the one with hash except, rotated at or after t.
	RotatedSince(grantID, except string, t time.Time) (int, error)
	// RevokeGrant revokes the grant as Store.RevokeGrant does.
	RevokeGrant(grantID string, now time.Time) error
	// SupersedeCurrent sets the rotation time of the grant's tokens not
	// rotated yet to SupersededAt.
	SupersedeCurrent(grantID string) error
	// MarkRotated records that the token with hash was rotated at t.
	MarkRotated(hash string, t time.Time) error
	// InsertRefresh and InsertAccess store as GrantTx's do.
	InsertRefresh(rt *RefreshToken) error
	InsertAccess(at *AccessToken) error
	// SetGrantUsed sets the last use of the grant to t.
	SetGrantUsed(grantID string, t time.Time) error
}

// Rotate is Store.RotateRefreshToken in one transaction of update, by the
// rules of [Rotation]. A refusal, ErrInvalidGrant or ErrRefreshReused, is
// an outcome: the transaction commits what was done (a reuse revokes the
// grant) and Rotate returns it; a store error rolls back.
func Rotate[T RotationTx](ctx context.Context, update Update[T], r *Rotation) (*Grant, error) {
	var grant *Grant
	var outcome error
	err := update(ctx, func(tx T) (err error) {
		grant, outcome, err = r.apply(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return grant, outcome
}

// apply is Rotate's rule within tx: outcome is what Rotate returns once tx
// has committed, err a store error.
func (r *Rotation) apply(tx RotationTx) (grant *Grant, outcome, err error) {
	rt, g, err := tx.RefreshToken(r.OldHash)
	if err != nil {
		return nil, nil, err
	}
	if rt == nil || g == nil || g.Revoked() || g.ClientID != r.ClientID || !r.Now.Before(rt.ExpiresAt) {
		return nil, ErrInvalidGrant, nil
	}
	if !rt.RotatedAt.IsZero() {
		// Already rotated: a retry within the grace period, while the
		// chain has not moved on since, supersedes what the first
		// rotation issued; anything else is a reuse (RFC 9700 §4.14.2).
		within := r.Grace > 0 && r.Now.Sub(rt.RotatedAt) <= r.Grace
		moved := 0
		if within {
			if moved, err = tx.RotatedSince(g.ID, r.OldHash, rt.RotatedAt); err != nil {
				return nil, nil, err
			}
		}
		if !within || moved > 0 {
			if err := tx.RevokeGrant(g.ID, r.Now); err != nil {
				return nil, nil, err
			}
			return nil, ErrRefreshReused, nil
		}
		if err := tx.SupersedeCurrent(g.ID); err != nil {
			return nil, nil, err
		}
	} else if err := tx.MarkRotated(r.OldHash, r.Now); err != nil {
		return nil, nil, err
	}
	r.Next.GrantID, r.Access.GrantID = g.ID, g.ID
	if err := tx.InsertRefresh(r.Next); err != nil {
		return nil, nil, err
	}
	if err := tx.InsertAccess(r.Access); err != nil {
		return nil, nil, err
	}
	if err := tx.SetGrantUsed(g.ID, r.Now); err != nil {
		return nil, nil, err
	}
	g.LastUsedAt = r.Now
	return g, nil, nil
}
