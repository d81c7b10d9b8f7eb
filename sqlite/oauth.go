package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

// The authorization server's storage (authserver.Store). The tables are
// created by migrations/0100_oauth.sql.

var _ authserver.Store = (*DB)(nil)

func nullNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return toNanos(t)
}

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const clientColumns = `id, kind, name, secret_hash, redirect_uris, auth_method, grant_types, scope,
	client_uri, logo_uri, contacts, software_id, software_version, resource_server, resource,
	registered_from, created_at, used_at, acts_as, jwks, jwks_uri`

func scanClient(row rowScanner) (*authserver.Client, error) {
	var c authserver.Client
	var redirects, grants, contacts string
	var rs int
	var created int64
	var used sql.NullInt64
	err := row.Scan(&c.ID, &c.Kind, &c.Name, &c.SecretHash, &redirects, &c.AuthMethod, &grants, &c.Scope,
		&c.ClientURI, &c.LogoURI, &contacts, &c.SoftwareID, &c.SoftwareVersion, &rs, &c.Resource,
		&c.RegisteredFrom, &created, &used, &c.ActsAs, &c.JWKS, &c.JWKSURI)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal([]byte(redirects), &c.RedirectURIs),
		json.Unmarshal([]byte(grants), &c.GrantTypes),
		json.Unmarshal([]byte(contacts), &c.Contacts)); err != nil {
		return nil, err
	}
	c.ResourceServer = rs == 1
	c.CreatedAt = fromNanos(created)
	c.UsedAt = fromNull(used)
	return &c, nil
}

// CreateClient stores a new client.
func (db *DB) CreateClient(ctx context.Context, c *authserver.Client) error {
	return db.update(ctx, func(tx *Tx) error { return tx.InsertClient(c) })
}

// InsertClient stores a new client (authserver.MachineClientTx).
func (tx *Tx) InsertClient(c *authserver.Client) error {
	_, err := tx.exec(`INSERT INTO oauth_clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Kind, c.Name, c.SecretHash, jsonList(c.RedirectURIs), c.AuthMethod, jsonList(c.GrantTypes), c.Scope,
		c.ClientURI, c.LogoURI, jsonList(c.Contacts), c.SoftwareID, c.SoftwareVersion, boolInt(c.ResourceServer), c.Resource,
		c.RegisteredFrom, toNanos(c.CreatedAt), nullNanos(c.UsedAt), c.ActsAs, c.JWKS, c.JWKSURI)
	if isUnique(err, "oauth_clients.id") {
		return epicme.Errorf(epicme.ECONFLICT, "a client with id %q exists", c.ID)
	}
	return err
}

// CreateMachineClient stores a machine client and its user's consent, within
// the user's bound; SQLite's one writer makes the count and the insert one
// step.
func (db *DB) CreateMachineClient(ctx context.Context, c *authserver.Client, max int) error {
	return db.update(ctx, func(tx *Tx) error {
		var users int
		if err := tx.queryRow(`SELECT count(*) FROM users WHERE id = ?`, c.ActsAs).Scan(&users); err != nil {
			return err
		}
		if users == 0 {
			return epicme.UserNotFound()
		}
		return authserver.CreateMachineClientIn(tx, c, max)
	})
}

// MachineClients counts the machine clients acting for userID that the
// user still consents to (authserver.MachineClientTx).
func (tx *Tx) MachineClients(userID string) (int, error) {
	var n int
	err := tx.queryRow(`SELECT count(*) FROM oauth_clients c JOIN oauth_consents k ON k.client_id = c.id AND k.user_id = c.acts_as
		WHERE c.acts_as = ? AND c.acts_as <> ''`, userID).Scan(&n)
	return n, err
}

// ClientByID returns a stored client.
func (db *DB) ClientByID(ctx context.Context, id string) (*authserver.Client, error) {
	c, err := scanClient(db.queryRow(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "client %q not found", id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return c, nil
}

// ListClients returns every stored client, oldest first.
func (db *DB) ListClients(ctx context.Context) ([]*authserver.Client, error) {
	return collect(ctx, db, scanClient, `SELECT `+clientColumns+` FROM oauth_clients ORDER BY created_at, id`)
}

// revokeGrantsWhere revokes the grants selected by cond (a WHERE clause on
// oauth_grants) and lists their unexpired access tokens as revoked.
func (tx *Tx) revokeGrantsWhere(now time.Time, cond string, args ...any) error {
	n := toNanos(now)
	if _, err := tx.exec(`INSERT OR IGNORE INTO oauth_revoked_tokens (jti, expires_at, revoked_at)
		SELECT jti, expires_at, ? FROM oauth_access_tokens
		WHERE expires_at > ? AND grant_id IN (SELECT id FROM oauth_grants WHERE `+cond+`)`,
		append([]any{n, n}, args...)...); err != nil {
		return err
	}
	if _, err := tx.exec(`DELETE FROM oauth_refresh_tokens WHERE grant_id IN (SELECT id FROM oauth_grants WHERE `+cond+`)`, args...); err != nil {
		return err
	}
	_, err := tx.exec(`UPDATE oauth_grants SET revoked_at = ? WHERE revoked_at IS NULL AND (`+cond+`)`, append([]any{n}, args...)...)
	return err
}

// DeleteClient removes a client and everything issued to it.
func (db *DB) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM oauth_clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "client %q not found", id)
		}
		return tx.dropClientRows(id, now)
	})
}

// dropClientRows revokes the grants of a deleted client and deletes its
// grants, codes and consents.
func (tx *Tx) dropClientRows(id string, now time.Time) error {
	if err := tx.revokeGrantsWhere(now, `client_id = ?`, id); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM oauth_grants WHERE client_id = ?`,
		`DELETE FROM oauth_codes WHERE client_id = ?`,
		`DELETE FROM oauth_consents WHERE client_id = ?`,
	} {
		if _, err := tx.exec(q, id); err != nil {
			return err
		}
	}
	return nil
}

// MarkClientUsed records the first time a client completed a flow.
func (db *DB) MarkClientUsed(ctx context.Context, id string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE oauth_clients SET used_at = ? WHERE id = ? AND used_at IS NULL`, toNanos(now), id)
		return err
	})
}

// CountDynamicClients counts clients registered by RFC 7591.
func (db *DB) CountDynamicClients(ctx context.Context) (int, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT count(*) FROM oauth_clients WHERE kind = 'dynamic'`).Scan(&n); err != nil {
		return 0, epicme.Internal(err)
	}
	return n, nil
}

// DeleteUnusedDynamicClients removes dynamic clients created before the
// given time that never completed a flow.
func (db *DB) DeleteUnusedDynamicClients(ctx context.Context, createdBefore time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		cond := `kind = 'dynamic' AND used_at IS NULL AND created_at < ?`
		if _, err := tx.exec(`DELETE FROM oauth_codes WHERE client_id IN (SELECT id FROM oauth_clients WHERE `+cond+`)`, toNanos(createdBefore)); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM oauth_consents WHERE client_id IN (SELECT id FROM oauth_clients WHERE `+cond+`)`, toNanos(createdBefore)); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM oauth_clients WHERE `+cond, toNanos(createdBefore))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CreateCode stores an authorization code.
func (db *DB) CreateCode(ctx context.Context, c *authserver.AuthCode) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_codes (hash, client_id, user_id, redirect_uri, redirect_given,
			code_challenge, resource, scope, created_at, expires_at, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Hash, c.ClientID, c.UserID, c.RedirectURI, boolInt(c.RedirectGiven),
			c.CodeChallenge, c.Resource, c.Scope, toNanos(c.CreatedAt), toNanos(c.ExpiresAt), c.DPoPJKT)
		return err
	})
}

// CodeByHash returns a code, used or not.
func (db *DB) CodeByHash(ctx context.Context, hash string) (*authserver.AuthCode, error) {
	var c authserver.AuthCode
	var given int
	var created, expires int64
	var used sql.NullInt64
	var grant sql.NullString
	err := db.queryRow(ctx, `SELECT hash, client_id, user_id, redirect_uri, redirect_given, code_challenge,
		resource, scope, created_at, expires_at, used_at, grant_id, dpop_jkt FROM oauth_codes WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &given, &c.CodeChallenge,
			&c.Resource, &c.Scope, &created, &expires, &used, &grant, &c.DPoPJKT)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "code not found")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	c.RedirectGiven = given == 1
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNanos(created), fromNanos(expires), fromNull(used)
	c.GrantID = grant.String
	return &c, nil
}

// InsertGrant stores a grant (authserver.GrantTx).
func (tx *Tx) InsertGrant(g *authserver.Grant) error {
	_, err := tx.exec(`INSERT INTO oauth_grants (id, client_id, user_id, scope, resource, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, g.ID, g.ClientID, g.UserID, g.Scope, g.Resource, toNanos(g.CreatedAt), toNanos(g.LastUsedAt))
	return err
}

// InsertRefresh stores a refresh token (authserver.GrantTx).
func (tx *Tx) InsertRefresh(rt *authserver.RefreshToken) error {
	_, err := tx.exec(`INSERT INTO oauth_refresh_tokens (hash, grant_id, created_at, expires_at, dpop_jkt) VALUES (?, ?, ?, ?, ?)`,
		rt.Hash, rt.GrantID, toNanos(rt.CreatedAt), toNanos(rt.ExpiresAt), rt.JKT)
	return err
}

// InsertAccess records an access token's jti (authserver.GrantTx).
func (tx *Tx) InsertAccess(at *authserver.AccessToken) error {
	_, err := tx.exec(`INSERT INTO oauth_access_tokens (jti, grant_id, expires_at) VALUES (?, ?, ?)`,
		at.JTI, at.GrantID, toNanos(at.ExpiresAt))
	return err
}

// CreateGrant stores a grant with no code or refresh token behind it and
// the access token issued from it, in one transaction.
func (db *DB) CreateGrant(ctx context.Context, g *authserver.Grant, at *authserver.AccessToken) error {
	return db.update(ctx, func(tx *Tx) error { return authserver.StoreGrant(tx, g, nil, at) })
}

// UseOnce records key as used until expiresAt; false if it was recorded
// before.
func (db *DB) UseOnce(ctx context.Context, key string, expiresAt time.Time) (bool, error) {
	first := false
	err := db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`INSERT INTO oauth_used_jtis (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			key, toNanos(expiresAt))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		first = n == 1
		return nil
	})
	return first, err
}

// RedeemCode marks a code used and stores what it produced, atomically; the
// conditional UPDATE makes exactly one redemption win.
func (db *DB) RedeemCode(ctx context.Context, codeHash string, now time.Time, g *authserver.Grant, rt *authserver.RefreshToken, at *authserver.AccessToken) error {
	return authserver.Redeem(ctx, db.update, codeHash, now, g, rt, at)
}

// SpendCode marks an unused, unexpired code used (authserver.RedeemTx).
func (tx *Tx) SpendCode(hash string, now time.Time, grantID string) (bool, error) {
	res, err := tx.exec(`UPDATE oauth_codes SET used_at = ?, grant_id = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ?`, toNanos(now), grantID, hash, toNanos(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CodeState describes a code's row (authserver.RedeemTx).
func (tx *Tx) CodeState(hash string) (found, used bool, grantID string, err error) {
	var usedAt sql.NullInt64
	var grant sql.NullString
	err = tx.queryRow(`SELECT used_at, grant_id FROM oauth_codes WHERE hash = ?`, hash).Scan(&usedAt, &grant)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, "", nil
	}
	return err == nil, usedAt.Valid, grant.String, err
}

const grantColumns = `g.id, g.client_id, g.user_id, g.scope, g.resource, g.created_at, g.last_used_at, g.revoked_at`

func scanGrantAndRefresh(row rowScanner) (*authserver.RefreshToken, *authserver.Grant, error) {
	var rt authserver.RefreshToken
	var g authserver.Grant
	var rtCreated, rtExpires, gCreated, gUsed int64
	var rotated, revoked sql.NullInt64
	err := row.Scan(&rt.Hash, &rt.GrantID, &rtCreated, &rtExpires, &rotated, &rt.JKT,
		&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &gCreated, &gUsed, &revoked)
	if err != nil {
		return nil, nil, err
	}
	rt.CreatedAt, rt.ExpiresAt, rt.RotatedAt = fromNanos(rtCreated), fromNanos(rtExpires), fromNull(rotated)
	g.CreatedAt, g.LastUsedAt, g.RevokedAt = fromNanos(gCreated), fromNanos(gUsed), fromNull(revoked)
	return &rt, &g, nil
}

const refreshQuery = `SELECT rt.hash, rt.grant_id, rt.created_at, rt.expires_at, rt.rotated_at, rt.dpop_jkt, ` + grantColumns + `
	FROM oauth_refresh_tokens rt JOIN oauth_grants g ON g.id = rt.grant_id WHERE rt.hash = ?`

// RefreshTokenByHash returns a refresh token with its grant.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash string) (*authserver.RefreshToken, *authserver.Grant, error) {
	rt, g, err := scanGrantAndRefresh(db.queryRow(ctx, refreshQuery, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, epicme.Errorf(epicme.ENOTFOUND, "refresh token not found")
	}
	if err != nil {
		return nil, nil, epicme.Internal(err)
	}
	return rt, g, nil
}

// RotateRefreshToken implements authserver.Store; see authserver.Rotation
// for the rules. The whole check-and-swap runs in one write transaction,
// and writes are serialised, so concurrent rotations see each other.
func (db *DB) RotateRefreshToken(ctx context.Context, r *authserver.Rotation) (*authserver.Grant, error) {
	return authserver.Rotate(ctx, db.update, r)
}

// RefreshToken returns a refresh token with its grant, or nil
// (authserver.RotationTx).
func (tx *Tx) RefreshToken(hash string) (*authserver.RefreshToken, *authserver.Grant, error) {
	rt, g, err := scanGrantAndRefresh(tx.queryRow(refreshQuery, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	return rt, g, err
}

// RotatedSince counts a grant's tokens rotated since at
// (authserver.RotationTx).
func (tx *Tx) RotatedSince(grantID, except string, at time.Time) (int, error) {
	n := 0
	err := tx.queryRow(`SELECT COUNT(*) FROM oauth_refresh_tokens WHERE grant_id = ? AND hash != ? AND rotated_at >= ?`,
		grantID, except, toNanos(at)).Scan(&n)
	return n, err
}

// RevokeGrant revokes a grant and its tokens (authserver.RotationTx).
func (tx *Tx) RevokeGrant(grantID string, now time.Time) error {
	return tx.revokeGrantsWhere(now, `id = ?`, grantID)
}

// SupersedeCurrent supersedes a grant's current tokens
// (authserver.RotationTx).
func (tx *Tx) SupersedeCurrent(grantID string) error {
	_, err := tx.exec(`UPDATE oauth_refresh_tokens SET rotated_at = ? WHERE grant_id = ? AND rotated_at IS NULL`, authserver.SupersededAt, grantID)
	return err
}

// MarkRotated records a token's rotation (authserver.RotationTx).
func (tx *Tx) MarkRotated(hash string, at time.Time) error {
	_, err := tx.exec(`UPDATE oauth_refresh_tokens SET rotated_at = ? WHERE hash = ?`, toNanos(at), hash)
	return err
}

// SetGrantUsed sets a grant's last use (authserver.RotationTx).
func (tx *Tx) SetGrantUsed(grantID string, at time.Time) error {
	_, err := tx.exec(`UPDATE oauth_grants SET last_used_at = ? WHERE id = ?`, toNanos(at), grantID)
	return err
}

// RevokeGrant revokes a grant and its tokens.
func (db *DB) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		return tx.revokeGrantsWhere(now, `id = ?`, grantID)
	})
}

// RevokeAccessToken puts one access token on the revocation list.
func (db *DB) RevokeAccessToken(ctx context.Context, jti string, expiresAt, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT OR IGNORE INTO oauth_revoked_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?)`,
			jti, toNanos(expiresAt), toNanos(now))
		return err
	})
}

// RevokedAccessTokens lists unexpired revocations made at or after since.
func (db *DB) RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]authserver.RevokedToken, error) {
	return collect(ctx, db, func(row rowScanner) (authserver.RevokedToken, error) {
		var r authserver.RevokedToken
		var exp, rev int64
		err := row.Scan(&r.JTI, &exp, &rev)
		r.ExpiresAt, r.RevokedAt = fromNanos(exp), fromNanos(rev)
		return r, err
	}, `SELECT jti, expires_at, revoked_at FROM oauth_revoked_tokens
		WHERE revoked_at >= ? AND expires_at > ? ORDER BY revoked_at`, toNanos(since), toNanos(now))
}

// IsAccessTokenRevoked reports whether one access token is revoked.
func (db *DB) IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT count(*) FROM oauth_revoked_tokens WHERE jti = ?`, jti).Scan(&n); err != nil {
		return false, epicme.Internal(err)
	}
	return n > 0, nil
}

func scanConsent(row rowScanner) (*authserver.Consent, error) {
	var c authserver.Consent
	var created, updated int64
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Scope, &created, &updated); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &c, nil
}

// Consent returns what a user granted a client.
func (db *DB) Consent(ctx context.Context, userID, clientID string) (*authserver.Consent, error) {
	c, err := scanConsent(db.queryRow(ctx, `SELECT user_id, client_id, scope, created_at, updated_at
		FROM oauth_consents WHERE user_id = ? AND client_id = ?`, userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "no consent")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return c, nil
}

// SaveConsent creates or replaces a consent.
func (db *DB) SaveConsent(ctx context.Context, c *authserver.Consent) error {
	return db.update(ctx, func(tx *Tx) error { return tx.SaveConsent(c) })
}

// SaveConsent creates or replaces a consent (authserver.MachineClientTx).
func (tx *Tx) SaveConsent(c *authserver.Consent) error {
	_, err := tx.exec(`INSERT INTO oauth_consents (user_id, client_id, scope, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, c.Scope, toNanos(c.CreatedAt), toNanos(c.UpdatedAt))
	return err
}

// ListConsents returns the consents a user gave, newest first.
func (db *DB) ListConsents(ctx context.Context, userID string) ([]*authserver.Consent, error) {
	return collect(ctx, db, scanConsent, `SELECT user_id, client_id, scope, created_at, updated_at
		FROM oauth_consents WHERE user_id = ? ORDER BY updated_at DESC`, userID)
}

// DeleteConsent withdraws a consent and revokes the user's grants to the
// client.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		// A machine client acting for this user exists for this consent
		// only: it goes too.
		res, err := tx.exec(`DELETE FROM oauth_clients WHERE id = ? AND acts_as = ?`, clientID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return tx.dropClientRows(clientID, now)
		}
		if _, err := tx.exec(`DELETE FROM oauth_consents WHERE user_id = ? AND client_id = ?`, userID, clientID); err != nil {
			return err
		}
		return tx.revokeGrantsWhere(now, `user_id = ? AND client_id = ?`, userID, clientID)
	})
}

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]*authserver.SigningKey, error) {
	return collect(ctx, db, func(row rowScanner) (*authserver.SigningKey, error) {
		var k authserver.SigningKey
		var jwk string
		var created, active int64
		var retired sql.NullInt64
		err := row.Scan(&k.KID, &k.Alg, &k.PrivateSealed, &jwk, &created, &active, &retired)
		k.PublicJWK = []byte(jwk)
		k.CreatedAt, k.ActiveAt, k.RetiredAt = fromNanos(created), fromNanos(active), fromNull(retired)
		return &k, err
	}, `SELECT kid, alg, private_sealed, public_jwk, created_at, active_at, retired_at
		FROM oauth_signing_keys ORDER BY active_at, created_at`)
}

// CreateSigningKey stores a new signing key.
func (db *DB) CreateSigningKey(ctx context.Context, k *authserver.SigningKey) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_signing_keys (kid, alg, private_sealed, public_jwk, created_at, active_at, retired_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, k.KID, k.Alg, k.PrivateSealed, string(k.PublicJWK),
			toNanos(k.CreatedAt), toNanos(k.ActiveAt), nullNanos(k.RetiredAt))
		return err
	})
}

// RetireSigningKey records when a key stopped signing.
func (db *DB) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE oauth_signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL`, toNanos(at), kid)
		return err
	})
}

// DeleteSigningKey removes a key.
func (db *DB) DeleteSigningKey(ctx context.Context, kid string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_signing_keys WHERE kid = ?`, kid)
		return err
	})
}

// CountEvent counts one event under key in the fixed window holding now.
func (db *DB) CountEvent(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start := now.Truncate(window)
	var n int
	err := db.update(ctx, func(tx *Tx) error {
		return tx.queryRow(`INSERT INTO oauth_rate_counts (key, window_start, count, expires_at) VALUES (?, ?, 1, ?)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN window_start = excluded.window_start THEN count + 1 ELSE 1 END,
				window_start = excluded.window_start,
				expires_at = excluded.expires_at
			RETURNING count`, key, toNanos(start), toNanos(start.Add(window))).Scan(&n)
	})
	return n, err
}

// ResetEvents forgets the events counted under key.
func (db *DB) ResetEvents(ctx context.Context, key string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_rate_counts WHERE key = ?`, key)
		return err
	})
}

// PurgeExpired deletes what has expired. Revoked grants are kept while any
// of their codes could still be replayed, and then go too.
func (db *DB) PurgeExpired(ctx context.Context, now time.Time) error {
	n := toNanos(now)
	return db.update(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM oauth_codes WHERE expires_at <= ?`,
			`DELETE FROM oauth_refresh_tokens WHERE expires_at <= ?`,
			`DELETE FROM oauth_access_tokens WHERE expires_at <= ?`,
			`DELETE FROM oauth_revoked_tokens WHERE expires_at <= ?`,
			`DELETE FROM oauth_rate_counts WHERE expires_at <= ?`,
			`DELETE FROM oauth_signin_sessions WHERE expires_at <= ?`,
			`DELETE FROM oauth_used_jtis WHERE expires_at <= ?`,
			`DELETE FROM oauth_grants WHERE revoked_at IS NOT NULL AND revoked_at <= ?
				AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens a WHERE a.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id)`,
			`DELETE FROM oauth_grants WHERE revoked_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM oauth_refresh_tokens r WHERE r.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens a WHERE a.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id)
				AND last_used_at <= ?`,
		} {
			if _, err := tx.exec(q, n); err != nil {
				return err
			}
		}
		return nil
	})
}
