package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

// MCP sessions (epicme.SessionStore), in the tables of
// migrations/0004_sessions.sql: every instance sharing the database serves
// every session.

var _ epicme.SessionStore = (*DB)(nil)

// CreateSession stores a new session under the hash of its id.
func (db *DB) CreateSession(ctx context.Context, s *epicme.MCPSession) error {
	if err := epicme.ValidateSession(s); err != nil {
		return err
	}
	return db.update(ctx, func(tx *Tx) error {
		var exists bool
		if err := tx.queryRow(`SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, s.UserID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return epicme.Errorf(epicme.ENOTFOUND, "user not found")
		}
		tag, err := tx.exec(`INSERT INTO mcp_sessions (key, user_id, client_id, protocol_version, capabilities, created_at, last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key) DO NOTHING`,
			epicme.SessionKey(s.ID), s.UserID, s.ClientID, s.ProtocolVersion, s.StoredCapabilities(), nanos(s.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.Errorf(epicme.ECONFLICT, "a session with this id exists")
		}
		return nil
	})
}

// GetSession returns a session that was last seen at or after idleSince,
// with its subscriptions, in one query.
func (db *DB) GetSession(ctx context.Context, id string, idleSince time.Time) (*epicme.MCPSession, error) {
	s, err := idempotent(ctx, db, func() (*epicme.MCPSession, error) {
		s := &epicme.MCPSession{ID: id}
		var caps string
		var created, seen int64
		err := db.pool.QueryRow(ctx, `SELECT user_id, client_id, protocol_version, capabilities, created_at, last_seen,
				coalesce((SELECT array_agg(uri ORDER BY uri) FROM mcp_session_subscriptions WHERE session_key = s.key), '{}')
			FROM mcp_sessions s WHERE key = $1 AND last_seen >= $2`, epicme.SessionKey(id), nanos(idleSince)).
			Scan(&s.UserID, &s.ClientID, &s.ProtocolVersion, &caps, &created, &seen, &s.Subscriptions)
		if err != nil {
			return nil, err
		}
		s.Capabilities, s.CreatedAt, s.LastSeen = []byte(caps), fromNanos(created), fromNanos(seen)
		if len(s.Subscriptions) == 0 {
			s.Subscriptions = nil
		}
		return s, nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "session not found")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return s, nil
}

// TouchSession moves the session's last_seen forward to now.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`UPDATE mcp_sessions SET last_seen = greatest(last_seen, $1) WHERE key = $2`, nanos(now), epicme.SessionKey(id))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "session not found")
		}
		return nil
	})
}

// EndSession deletes a session; its subscriptions go with it.
func (db *DB) EndSession(ctx context.Context, id string) (bool, error) {
	var ended bool
	err := db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`DELETE FROM mcp_sessions WHERE key = $1`, epicme.SessionKey(id))
		ended = tag.RowsAffected() > 0
		return err
	})
	return ended, err
}

// Subscribe records a subscription of a session of userID. The session row
// is locked so that concurrent subscriptions count against one limit.
func (db *DB) Subscribe(ctx context.Context, userID, id, uri string) error {
	if err := epicme.ValidateSubscription(uri); err != nil {
		return err
	}
	key := epicme.SessionKey(id)
	return db.update(ctx, func(tx *Tx) error {
		var owner string
		err := tx.queryRow(`SELECT user_id FROM mcp_sessions WHERE key = $1 FOR UPDATE`, key).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != userID) {
			return epicme.Errorf(epicme.ENOTFOUND, "session not found")
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(`SELECT count(*) FROM mcp_session_subscriptions WHERE session_key = $1 AND uri <> $2`, key, uri).Scan(&n); err != nil {
			return err
		}
		if n >= epicme.MaxSessionSubscriptions {
			return epicme.Errorf(epicme.ECONFLICT, "a session may subscribe to at most %d resources", epicme.MaxSessionSubscriptions)
		}
		_, err = tx.exec(`INSERT INTO mcp_session_subscriptions (session_key, uri) VALUES ($1, $2) ON CONFLICT DO NOTHING`, key, uri)
		return err
	})
}

// Unsubscribe removes a subscription of a session of userID.
func (db *DB) Unsubscribe(ctx context.Context, userID, id, uri string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM mcp_session_subscriptions WHERE uri = $1 AND session_key =
			(SELECT key FROM mcp_sessions WHERE key = $2 AND user_id = $3)`, uri, epicme.SessionKey(id), userID)
		return err
	})
}

// DeleteIdleSessions deletes the sessions last seen before idleSince.
func (db *DB) DeleteIdleSessions(ctx context.Context, idleSince time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`DELETE FROM mcp_sessions WHERE last_seen < $1`, nanos(idleSince))
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// UseRequestState records a completed requestState; ECONFLICT if it was
// recorded before.
func (db *DB) UseRequestState(ctx context.Context, state string, expires time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`INSERT INTO mcp_used_request_states (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
			epicme.SessionKey(state), nanos(expires))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.Errorf(epicme.ECONFLICT, "this requestState was used already")
		}
		return nil
	})
}

// DeleteExpiredRequestStates forgets the used states expired at now.
func (db *DB) DeleteExpiredRequestStates(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`DELETE FROM mcp_used_request_states WHERE expires_at <= $1`, nanos(now))
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}
