package authserver

import "time"

// RotationTx is what a store offers [Rotation.Apply] within the one
// transaction of a RotateRefreshToken: the SQL is the store's, the rules
// are Apply's.
type RotationTx interface {
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
	// Issue stores the next refresh token and the access token issued
	// with it, and moves the grant's last use to now.
	Issue(next *RefreshToken, access *AccessToken, now time.Time) error
}

// Apply rotates rt, a refresh token of grant g that the store found (and
// locked) by r.OldHash, by the rules of [Rotation]. outcome is
// ErrInvalidGrant or ErrRefreshReused when the rotation is refused (the
// store commits what Apply did: a reuse revokes the grant); err is a store
// error (the store rolls back).
func (r *Rotation) Apply(tx RotationTx, rt *RefreshToken, g *Grant) (grant *Grant, outcome, err error) {
	if g.Revoked() || g.ClientID != r.ClientID || !r.Now.Before(rt.ExpiresAt) {
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
	if err := tx.Issue(r.Next, r.Access, r.Now); err != nil {
		return nil, nil, err
	}
	g.LastUsedAt = r.Now
	return g, nil, nil
}
