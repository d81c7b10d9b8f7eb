package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/epicme/epicme"
)

// MCP sessions (epicme.SessionStore), in the tables of
// migrations/0004_sessions.sql. With SQLite one instance serves the file,
// so stored sessions give it sessions that survive a restart.

var _ epicme.SessionStore = (*DB)(nil)

// CreateSession stores a new session under the hash of its id.
func (db *DB) CreateSession(ctx context.Context, s *epicme.MCPSession) error {
	if err := epicme.ValidateSession(s); err != nil {
		return err
	}
	return db.update(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(`SELECT count(*) FROM users WHERE id = ?`, s.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "user not found")
		}
		res, err := tx.exec(`INSERT INTO mcp_sessions (key, user_id, client_id, protocol_version, capabilities, created_at, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			epicme.SessionKey(s.ID), s.UserID, s.ClientID, s.ProtocolVersion, s.StoredCapabilities(), toNanos(s.CreatedAt), toNanos(s.CreatedAt))
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return epicme.Errorf(epicme.ECONFLICT, "a session with this id exists")
		}
		return nil
	})
}

// GetSession returns a session that was last seen at or after idleSince.
func (db *DB) GetSession(ctx context.Context, id string, idleSince time.Time) (*epicme.MCPSession, error) {
	key := epicme.SessionKey(id)
	s := &epicme.MCPSession{ID: id}
	var caps string
	var created, seen int64
	err := db.queryRow(ctx, `SELECT user_id, client_id, protocol_version, capabilities, created_at, last_seen
		FROM mcp_sessions WHERE key = ? AND last_seen >= ?`, key, toNanos(idleSince)).
		Scan(&s.UserID, &s.ClientID, &s.ProtocolVersion, &caps, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "session not found")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	s.Capabilities, s.CreatedAt, s.LastSeen = []byte(caps), fromNanos(created), fromNanos(seen)
	rows, err := db.query(ctx, `SELECT uri FROM mcp_session_subscriptions WHERE session_key = ? ORDER BY uri`, key)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var uri string
		if err := rows.Scan(&uri); err != nil {
			return nil, epicme.Internal(err)
		}
		s.Subscriptions = append(s.Subscriptions, uri)
	}
	if err := rows.Err(); err != nil {
		return nil, epicme.Internal(err)
	}
	return s, nil
}

// TouchSession moves the session's last_seen forward to now.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE mcp_sessions SET last_seen = max(last_seen, ?) WHERE key = ?`, toNanos(now), epicme.SessionKey(id))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "session not found")
		}
		return nil
	})
}

// EndSession deletes a session; its subscriptions go with it.
func (db *DB) EndSession(ctx context.Context, id string) (bool, error) {
	var ended bool
	err := db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM mcp_sessions WHERE key = ?`, epicme.SessionKey(id))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		ended = n > 0
		return nil
	})
	return ended, err
}

// Subscribe records a subscription of a session of userID.
func (db *DB) Subscribe(ctx context.Context, userID, id, uri string) error {
	if err := epicme.ValidateSubscription(uri); err != nil {
		return err
	}
	key := epicme.SessionKey(id)
	return db.update(ctx, func(tx *Tx) error {
		var owner string
		err := tx.queryRow(`SELECT user_id FROM mcp_sessions WHERE key = ?`, key).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != userID) {
			return epicme.Errorf(epicme.ENOTFOUND, "session not found")
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(`SELECT count(*) FROM mcp_session_subscriptions WHERE session_key = ? AND uri <> ?`, key, uri).Scan(&n); err != nil {
			return err
		}
		if n >= epicme.MaxSessionSubscriptions {
			return epicme.Errorf(epicme.ECONFLICT, "a session may subscribe to at most %d resources", epicme.MaxSessionSubscriptions)
		}
		_, err = tx.exec(`INSERT INTO mcp_session_subscriptions (session_key, uri) VALUES (?, ?) ON CONFLICT DO NOTHING`, key, uri)
		return err
	})
}

// Unsubscribe removes a subscription of a session of userID.
func (db *DB) Unsubscribe(ctx context.Context, userID, id, uri string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM mcp_session_subscriptions WHERE uri = ? AND session_key =
			(SELECT key FROM mcp_sessions WHERE key = ? AND user_id = ?)`, uri, epicme.SessionKey(id), userID)
		return err
	})
}

// DeleteIdleSessions deletes the sessions last seen before idleSince.
func (db *DB) DeleteIdleSessions(ctx context.Context, idleSince time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM mcp_sessions WHERE last_seen < ?`, toNanos(idleSince))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// UseRequestState records a completed requestState; ECONFLICT if it was
// recorded before.
func (db *DB) UseRequestState(ctx context.Context, state string, expires time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`INSERT INTO mcp_used_request_states (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			epicme.SessionKey(state), toNanos(expires))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.Errorf(epicme.ECONFLICT, "this requestState was used already")
		}
		return nil
	})
}

// DeleteExpiredRequestStates forgets the used states expired at now.
func (db *DB) DeleteExpiredRequestStates(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM mcp_used_request_states WHERE expires_at <= ?`, toNanos(now))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}
