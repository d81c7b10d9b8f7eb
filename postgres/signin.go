package postgres

import (
	"context"
	"errors"
	"github.com/jackc/pgx/v5"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

// CreateSignInSession stores a session of the sign-in pages.
func (db *DB) CreateSignInSession(ctx context.Context, s *authserver.SignInSession) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_signin_sessions (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			s.Hash, s.UserID, nanos(s.CreatedAt), nanos(s.ExpiresAt))
		return err
	})
}

// SignInSession returns the session of the sign-in pages with this hash.
func (db *DB) SignInSession(ctx context.Context, hash string) (*authserver.SignInSession, error) {
	s := authserver.SignInSession{Hash: hash}
	var created, expires int64
	_, err := idempotent(ctx, db, func() (struct{}, error) {
		return struct{}{}, db.pool.QueryRow(ctx, `SELECT user_id, created_at, expires_at FROM oauth_signin_sessions WHERE hash = $1`, hash).
			Scan(&s.UserID, &created, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "no such session")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	s.CreatedAt, s.ExpiresAt = fromNanos(created), fromNanos(expires)
	return &s, nil
}

// DeleteSignInSession ends one session of the sign-in pages.
func (db *DB) DeleteSignInSession(ctx context.Context, hash string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_signin_sessions WHERE hash = $1`, hash)
		return err
	})
}

// DeleteUserSignInSessions ends every session of the sign-in pages of a
// user but the one with hash keep.
func (db *DB) DeleteUserSignInSessions(ctx context.Context, userID, keep string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_signin_sessions WHERE user_id = $1 AND hash <> $2`, userID, keep)
		return err
	})
}
