package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

const grantListColumns = `id, client_id, user_id, scope, resource, created_at, last_used_at, revoked_at`

// ListGrants returns the grants the filter selects, newest first.
func (db *DB) ListGrants(ctx context.Context, f authserver.GrantFilter) ([]*authserver.Grant, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.ClientID != "" {
		where, args = append(where, "client_id = ?"), append(args, f.ClientID)
	}
	if !f.IncludeRevoked {
		where = append(where, "revoked_at IS NULL")
	}
	q := `SELECT ` + grantListColumns + ` FROM oauth_grants`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return collect(ctx, db, func(row rowScanner) (*authserver.Grant, error) {
		var g authserver.Grant
		var created, used int64
		var revoked sql.NullInt64
		err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &created, &used, &revoked)
		g.CreatedAt, g.LastUsedAt, g.RevokedAt = fromNanos(created), fromNanos(used), fromNull(revoked)
		return &g, err
	}, q+` ORDER BY created_at DESC, id`, args...)
}

// RevokeUserGrants revokes every grant of a user and puts their unexpired
// access tokens on the revocation list; it keeps the consents.
func (db *DB) RevokeUserGrants(ctx context.Context, userID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		return tx.revokeGrantsWhere(now, `user_id = ?`, userID)
	})
}

// DeleteAccount revokes the user's grants (their access tokens go on the
// revocation list, which outlives the user) and deletes the user, whose
// journal, codes, grants and consents go with it by cascade, in one
// transaction. ENOTFOUND if no such user.
func (db *DB) DeleteAccount(ctx context.Context, userID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		if err := tx.revokeGrantsWhere(now, `user_id = ?`, userID); err != nil {
			return err
		}
		// The user's machine clients act for nobody else: they go too.
		if _, err := tx.exec(`DELETE FROM oauth_clients WHERE acts_as = ?`, userID); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM users WHERE id = ?`, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.UserNotFound()
		}
		return nil
	})
}

// MarkAccessTokensUsed moves the last use of each token's grant forward to
// the time given, in one transaction.
func (db *DB) MarkAccessTokensUsed(ctx context.Context, uses map[string]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	return db.update(ctx, func(tx *Tx) error {
		for jti, at := range uses {
			n := toNanos(at)
			if _, err := tx.exec(`UPDATE oauth_grants SET last_used_at = ?
				WHERE last_used_at < ? AND id = (SELECT grant_id FROM oauth_access_tokens WHERE jti = ?)`, n, n, jti); err != nil {
				return err
			}
		}
		return nil
	})
}

// SaveIdentityProvider creates or replaces a trusted identity provider.
func (db *DB) SaveIdentityProvider(ctx context.Context, p *authserver.IdentityProvider) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_identity_providers (issuer, jwks_uri, clients, scope, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (issuer) DO UPDATE SET jwks_uri = excluded.jwks_uri, clients = excluded.clients, scope = excluded.scope`,
			p.Issuer, p.JWKSURI, jsonList(p.Clients), p.Scope, toNanos(p.CreatedAt))
		return err
	})
}

const identityProviderColumns = `issuer, jwks_uri, clients, scope, created_at`

func scanIdentityProvider(row rowScanner) (*authserver.IdentityProvider, error) {
	var p authserver.IdentityProvider
	var clients string
	var created int64
	if err := row.Scan(&p.Issuer, &p.JWKSURI, &clients, &p.Scope, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(clients), &p.Clients); err != nil {
		return nil, err
	}
	p.CreatedAt = fromNanos(created)
	return &p, nil
}

// IdentityProvider returns a trusted identity provider.
func (db *DB) IdentityProvider(ctx context.Context, issuer string) (*authserver.IdentityProvider, error) {
	p, err := scanIdentityProvider(db.queryRow(ctx, `SELECT `+identityProviderColumns+` FROM oauth_identity_providers WHERE issuer = ?`, issuer))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "identity provider %q is not trusted", issuer)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return p, nil
}

// ListIdentityProviders returns every trusted identity provider, oldest
// first.
func (db *DB) ListIdentityProviders(ctx context.Context) ([]*authserver.IdentityProvider, error) {
	return collect(ctx, db, scanIdentityProvider, `SELECT `+identityProviderColumns+` FROM oauth_identity_providers ORDER BY created_at, issuer`)
}

// DeleteIdentityProvider stops trusting an identity provider and revokes
// its users' grants, in one transaction.
func (db *DB) DeleteIdentityProvider(ctx context.Context, issuer string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM oauth_identity_providers WHERE issuer = ?`, issuer)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "identity provider %q is not trusted", issuer)
		}
		return tx.revokeGrantsWhere(now, `user_id IN (SELECT id FROM users WHERE issuer = ?)`, issuer)
	})
}
