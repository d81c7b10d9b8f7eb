package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/jackc/pgx/v5"
)

// The authorization server's storage (authserver.Store), with the sqlite
// package's rules, checked by the same contract (authservertest). The tables
// are created by migrations/0100_oauth.sql.
//
// Concurrency rests on row locks taken in one order, grant before refresh
// token: a redemption wins by a conditional UPDATE of the code (a second one
// waits, re-reads the row under READ COMMITTED, and finds it used); a
// rotation locks the grant and then the token, so concurrent rotations of one
// family, and a revocation of it, run one after another.

var _ authserver.Store = (*DB)(nil)

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func fromNull(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return fromNanos(*n)
}

func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

const clientColumns = `id, kind, name, secret_hash, redirect_uris, auth_method, grant_types, scope,
	client_uri, logo_uri, contacts, software_id, software_version, resource_server, resource,
	registered_from, created_at, used_at, acts_as, jwks, jwks_uri`

func scanClient(row pgx.Row) (*authserver.Client, error) {
	var c authserver.Client
	var created int64
	var used *int64
	err := row.Scan(&c.ID, &c.Kind, &c.Name, &c.SecretHash, &c.RedirectURIs, &c.AuthMethod, &c.GrantTypes, &c.Scope,
		&c.ClientURI, &c.LogoURI, &c.Contacts, &c.SoftwareID, &c.SoftwareVersion, &c.ResourceServer, &c.Resource,
		&c.RegisteredFrom, &created, &used, &c.ActsAs, &c.JWKS, &c.JWKSURI)
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.UsedAt = fromNanos(created), fromNull(used)
	return &c, nil
}

// CreateClient stores a new client.
func (db *DB) CreateClient(ctx context.Context, c *authserver.Client) error {
	return db.update(ctx, func(tx *Tx) error { return tx.InsertClient(c) })
}

// InsertClient stores a new client (authserver.MachineClientTx).
func (tx *Tx) InsertClient(c *authserver.Client) error {
	_, err := tx.exec(`INSERT INTO oauth_clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		c.ID, c.Kind, c.Name, c.SecretHash, list(c.RedirectURIs), c.AuthMethod, list(c.GrantTypes), c.Scope,
		c.ClientURI, c.LogoURI, list(c.Contacts), c.SoftwareID, c.SoftwareVersion, c.ResourceServer, c.Resource,
		c.RegisteredFrom, nanos(c.CreatedAt), nullNanos(c.UsedAt), c.ActsAs, c.JWKS, c.JWKSURI)
	if isUnique(err, "oauth_clients_pkey") {
		return epicme.Errorf(epicme.ECONFLICT, "a client with id %q exists", c.ID)
	}
	return err
}

// CreateMachineClient stores a machine client and its user's consent, within
// the user's bound. The user's row is locked first (updateJournal), so
// concurrent creations for one user count one after another.
func (db *DB) CreateMachineClient(ctx context.Context, c *authserver.Client, max int) error {
	return db.updateJournal(ctx, c.ActsAs, func(tx *Tx) error {
		if tx.rid == 0 {
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
		WHERE c.acts_as = $1 AND c.acts_as <> ''`, userID).Scan(&n)
	return n, err
}

// ClientByID returns a stored client.
func (db *DB) ClientByID(ctx context.Context, id string) (*authserver.Client, error) {
	if hasNUL(id) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "client %q not found", id)
	}
	c, err := idempotent(ctx, db, func() (*authserver.Client, error) {
		return scanClient(db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = $1`, id))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "client %q not found", id)
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return c, nil
}

// collect runs a query and scans every row with scan, once more on a fresh
// connection if the first was lost.
func collect[T any](ctx context.Context, db *DB, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	out, err := idempotent(ctx, db, func() ([]T, error) {
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	})
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return out, nil
}

// ListClients returns every stored client, oldest first.
func (db *DB) ListClients(ctx context.Context) ([]*authserver.Client, error) {
	return collect(ctx, db, scanClient, `SELECT `+clientColumns+` FROM oauth_clients ORDER BY created_at, id`)
}

// RevocationChannel is the PostgreSQL notification channel on which every
// revocation of access tokens is announced, from inside the revoking
// transaction, so that instances hear of it only once it is committed (see
// ListenRevocations).
const RevocationChannel = "epicme_revocations"

// maxNoticeBytes keeps a revocation notice under PostgreSQL's payload limit
// of 8000 bytes; a longer list is announced as a reload.
const maxNoticeBytes = 7900

// reloadNotice asks every listener to reload the whole revocation list.
const reloadNotice = "*"

// notifyRevoked announces, within tx, the access tokens it revoked: one
// "jti expiry-in-unix-nanoseconds" line each, or reloadNotice when they do
// not fit one notification.
func (tx *Tx) notifyRevoked(revoked []authserver.RevokedToken) error {
	if len(revoked) == 0 {
		return nil
	}
	var b strings.Builder
	for _, r := range revoked {
		b.WriteString(r.JTI)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(nanos(r.ExpiresAt), 10))
		b.WriteByte('\n')
		if b.Len() > maxNoticeBytes {
			b.Reset()
			b.WriteString(reloadNotice)
			break
		}
	}
	_, err := tx.exec(`SELECT pg_notify($1, $2)`, RevocationChannel, b.String())
	return err
}

// parseRevocationNotice reads a notice of notifyRevoked; reload is true for
// a reload notice or one that cannot be read.
func parseRevocationNotice(payload string, now time.Time) (revoked []authserver.RevokedToken, reload bool) {
	if payload == reloadNotice {
		return nil, true
	}
	for line := range strings.Lines(payload) {
		jti, exp, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		n, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || jti == "" {
			return nil, true
		}
		revoked = append(revoked, authserver.RevokedToken{JTI: jti, ExpiresAt: fromNanos(n), RevokedAt: now})
	}
	return revoked, false
}

func scanRevoked(rows pgx.Rows, now time.Time) ([]authserver.RevokedToken, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (authserver.RevokedToken, error) {
		var jti string
		var exp int64
		err := r.Scan(&jti, &exp)
		return authserver.RevokedToken{JTI: jti, ExpiresAt: fromNanos(exp), RevokedAt: now}, err
	})
}

// revokeGrantsWhere revokes the grants selected by cond (a WHERE clause on
// oauth_grants whose parameters start at $2), deletes their refresh tokens,
// lists their unexpired access tokens as revoked and announces those. The
// grants are locked first, as a rotation locks them.
func (tx *Tx) revokeGrantsWhere(now time.Time, cond string, args ...any) error {
	rows, err := tx.Query(tx.ctx, `WITH g AS (
			SELECT id FROM oauth_grants WHERE `+cond+` FOR NO KEY UPDATE
		), revoke AS (
			UPDATE oauth_grants SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN (SELECT id FROM g)
		), forget AS (
			DELETE FROM oauth_refresh_tokens WHERE grant_id IN (SELECT id FROM g)
		)
		INSERT INTO oauth_revoked_tokens (jti, expires_at, revoked_at)
		SELECT jti, expires_at, $1 FROM oauth_access_tokens
		WHERE expires_at > $1 AND grant_id IN (SELECT id FROM g)
		ON CONFLICT (jti) DO NOTHING
		RETURNING jti, expires_at`, append([]any{nanos(now)}, args...)...)
	if err != nil {
		return err
	}
	revoked, err := scanRevoked(rows, now)
	if err != nil {
		return err
	}
	return tx.notifyRevoked(revoked)
}

// DeleteClient removes a client and everything issued to it.
func (db *DB) DeleteClient(ctx context.Context, id string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`DELETE FROM oauth_clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "client %q not found", id)
		}
		return tx.dropClientRows(id, now)
	})
}

// dropClientRows revokes the grants of a deleted client and deletes its
// grants, codes and consents.
func (tx *Tx) dropClientRows(id string, now time.Time) error {
	if err := tx.revokeGrantsWhere(now, `client_id = $2`, id); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM oauth_grants WHERE client_id = $1`,
		`DELETE FROM oauth_codes WHERE client_id = $1`,
		`DELETE FROM oauth_consents WHERE client_id = $1`,
	} {
		if _, err := tx.exec(q, id); err != nil {
			return err
		}
	}
	return nil
}

// MarkClientUsed records the first time a client completed a flow.
func (db *DB) MarkClientUsed(ctx context.Context, id string, now time.Time) error {
	_, err := idempotent(ctx, db, func() (struct{}, error) {
		_, err := db.pool.Exec(ctx, `UPDATE oauth_clients SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, nanos(now), id)
		return struct{}{}, err
	})
	if err != nil {
		return epicme.Internal(err)
	}
	return nil
}

// CountDynamicClients counts clients registered by RFC 7591.
func (db *DB) CountDynamicClients(ctx context.Context) (int, error) {
	n, err := idempotent(ctx, db, func() (int, error) {
		var n int
		err := db.pool.QueryRow(ctx, `SELECT count(*) FROM oauth_clients WHERE kind = 'dynamic'`).Scan(&n)
		return n, err
	})
	if err != nil {
		return 0, epicme.Internal(err)
	}
	return n, nil
}

// DeleteUnusedDynamicClients removes dynamic clients created before the
// given time that never completed a flow.
func (db *DB) DeleteUnusedDynamicClients(ctx context.Context, createdBefore time.Time) (int, error) {
	var n int64
	err := db.update(ctx, func(tx *Tx) error {
		const cond = `kind = 'dynamic' AND used_at IS NULL AND created_at < $1`
		if _, err := tx.exec(`DELETE FROM oauth_codes WHERE client_id IN (SELECT id FROM oauth_clients WHERE `+cond+`)`, nanos(createdBefore)); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM oauth_consents WHERE client_id IN (SELECT id FROM oauth_clients WHERE `+cond+`)`, nanos(createdBefore)); err != nil {
			return err
		}
		tag, err := tx.exec(`DELETE FROM oauth_clients WHERE `+cond, nanos(createdBefore))
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// CreateCode stores an authorization code.
func (db *DB) CreateCode(ctx context.Context, c *authserver.AuthCode) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_codes (hash, client_id, user_id, redirect_uri, redirect_given,
			code_challenge, resource, scope, created_at, expires_at, dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.RedirectGiven,
			c.CodeChallenge, c.Resource, c.Scope, nanos(c.CreatedAt), nanos(c.ExpiresAt), c.DPoPJKT)
		return err
	})
}

// CodeByHash returns a code, used or not.
func (db *DB) CodeByHash(ctx context.Context, hash string) (*authserver.AuthCode, error) {
	if hasNUL(hash) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "code not found")
	}
	c, err := idempotent(ctx, db, func() (*authserver.AuthCode, error) {
		var c authserver.AuthCode
		var created, expires int64
		var used *int64
		var grant *string
		err := db.pool.QueryRow(ctx, `SELECT hash, client_id, user_id, redirect_uri, redirect_given, code_challenge,
			resource, scope, created_at, expires_at, used_at, grant_id, dpop_jkt FROM oauth_codes WHERE hash = $1`, hash).
			Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.RedirectGiven, &c.CodeChallenge,
				&c.Resource, &c.Scope, &created, &expires, &used, &grant, &c.DPoPJKT)
		if err != nil {
			return nil, err
		}
		c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNanos(created), fromNanos(expires), fromNull(used)
		if grant != nil {
			c.GrantID = *grant
		}
		return &c, nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "code not found")
	}
	if err != nil {
		return nil, epicme.Internal(err)
	}
	return c, nil
}

// InsertGrant stores a grant (authserver.GrantTx).
func (tx *Tx) InsertGrant(g *authserver.Grant) error {
	_, err := tx.exec(`INSERT INTO oauth_grants (id, client_id, user_id, scope, resource, created_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, g.ID, g.ClientID, g.UserID, g.Scope, g.Resource, nanos(g.CreatedAt), nanos(g.LastUsedAt))
	return err
}

// InsertRefresh stores a refresh token (authserver.GrantTx).
func (tx *Tx) InsertRefresh(rt *authserver.RefreshToken) error {
	_, err := tx.exec(`INSERT INTO oauth_refresh_tokens (hash, grant_id, created_at, expires_at, dpop_jkt) VALUES ($1, $2, $3, $4, $5)`,
		rt.Hash, rt.GrantID, nanos(rt.CreatedAt), nanos(rt.ExpiresAt), rt.JKT)
	return err
}

// InsertAccess records an access token's jti (authserver.GrantTx).
func (tx *Tx) InsertAccess(at *authserver.AccessToken) error {
	_, err := tx.exec(`INSERT INTO oauth_access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)`,
		at.JTI, at.GrantID, nanos(at.ExpiresAt))
	return err
}

// CreateGrant stores a grant with no code or refresh token behind it and
// the access token issued from it, in one transaction.
func (db *DB) CreateGrant(ctx context.Context, g *authserver.Grant, at *authserver.AccessToken) error {
	return db.update(ctx, func(tx *Tx) error { return authserver.StoreGrant(tx, g, nil, at) })
}

// UseOnce records key as used until expiresAt; false if it was recorded
// before. The primary key makes exactly one of concurrent inserts win.
func (db *DB) UseOnce(ctx context.Context, key string, expiresAt time.Time) (bool, error) {
	first := false
	err := db.update(ctx, func(tx *Tx) error {
		tag, err := tx.exec(`INSERT INTO oauth_used_jtis (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
			key, nanos(expiresAt))
		first = err == nil && tag.RowsAffected() == 1
		return err
	})
	return first, err
}

// RedeemCode marks a code used and stores what it produced, atomically. The
// conditional UPDATE makes exactly one redemption win: a concurrent one
// waits for the winner's row lock, re-reads the row and no longer matches.
func (db *DB) RedeemCode(ctx context.Context, codeHash string, now time.Time, g *authserver.Grant, rt *authserver.RefreshToken, at *authserver.AccessToken) error {
	return authserver.Redeem(ctx, db.update, codeHash, now, g, rt, at)
}

// SpendCode marks an unused, unexpired code used (authserver.RedeemTx).
func (tx *Tx) SpendCode(hash string, now time.Time, grantID string) (bool, error) {
	tag, err := tx.exec(`UPDATE oauth_codes SET used_at = $1, grant_id = $2
		WHERE hash = $3 AND used_at IS NULL AND expires_at > $1`, nanos(now), grantID, hash)
	return tag.RowsAffected() == 1, err
}

// CodeState describes a code's row (authserver.RedeemTx).
func (tx *Tx) CodeState(hash string) (found, used bool, grantID string, err error) {
	var usedAt *int64
	var grant *string
	err = tx.queryRow(`SELECT used_at, grant_id FROM oauth_codes WHERE hash = $1`, hash).Scan(&usedAt, &grant)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, "", nil
	}
	if grant != nil {
		grantID = *grant
	}
	return err == nil, usedAt != nil, grantID, err
}

const grantColumns = `g.id, g.client_id, g.user_id, g.scope, g.resource, g.created_at, g.last_used_at, g.revoked_at`

func scanGrant(row pgx.Row) (*authserver.Grant, error) {
	var g authserver.Grant
	var created, used int64
	var revoked *int64
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scope, &g.Resource, &created, &used, &revoked); err != nil {
		return nil, err
	}
	g.CreatedAt, g.LastUsedAt, g.RevokedAt = fromNanos(created), fromNanos(used), fromNull(revoked)
	return &g, nil
}

func scanRefresh(row pgx.Row) (*authserver.RefreshToken, error) {
	var rt authserver.RefreshToken
	var created, expires int64
	var rotated *int64
	if err := row.Scan(&rt.Hash, &rt.GrantID, &created, &expires, &rotated, &rt.JKT); err != nil {
		return nil, err
	}
	rt.CreatedAt, rt.ExpiresAt, rt.RotatedAt = fromNanos(created), fromNanos(expires), fromNull(rotated)
	return &rt, nil
}

const refreshColumns = `hash, grant_id, created_at, expires_at, rotated_at, dpop_jkt`

// RefreshTokenByHash returns a refresh token with its grant.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash string) (*authserver.RefreshToken, *authserver.Grant, error) {
	if hasNUL(hash) {
		return nil, nil, epicme.Errorf(epicme.ENOTFOUND, "refresh token not found")
	}
	type pair struct {
		rt *authserver.RefreshToken
		g  *authserver.Grant
	}
	p, err := idempotent(ctx, db, func() (pair, error) {
		rt, err := scanRefresh(db.pool.QueryRow(ctx, `SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE hash = $1`, hash))
		if err != nil {
			return pair{}, err
		}
		g, err := scanGrant(db.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM oauth_grants g WHERE g.id = $1`, rt.GrantID))
		return pair{rt, g}, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, epicme.Errorf(epicme.ENOTFOUND, "refresh token not found")
	}
	if err != nil {
		return nil, nil, epicme.Internal(err)
	}
	return p.rt, p.g, nil
}

// RotateRefreshToken implements authserver.Store; see authserver.Rotation
// for the rules, and RefreshToken for the locks.
func (db *DB) RotateRefreshToken(ctx context.Context, r *authserver.Rotation) (*authserver.Grant, error) {
	return authserver.Rotate(ctx, db.update, r)
}

// RefreshToken returns a refresh token with its grant, or nil
// (authserver.RotationTx). It locks the token's grant and then the token,
// so of concurrent rotations each sees what the previous one wrote.
func (tx *Tx) RefreshToken(hash string) (*authserver.RefreshToken, *authserver.Grant, error) {
	var grantID string
	err := tx.queryRow(`SELECT grant_id FROM oauth_refresh_tokens WHERE hash = $1`, hash).Scan(&grantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	g, err := scanGrant(tx.queryRow(`SELECT `+grantColumns+` FROM oauth_grants g WHERE g.id = $1 FOR NO KEY UPDATE`, grantID))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, err
	}
	// Locked the grant; now the token, which a revocation may have
	// deleted meanwhile.
	rt, err := scanRefresh(tx.queryRow(`SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE hash = $1 FOR UPDATE`, hash))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, err
	}
	if rt == nil || g == nil {
		return nil, nil, nil
	}
	return rt, g, nil
}

// RotatedSince counts a grant's tokens rotated since at
// (authserver.RotationTx).
func (tx *Tx) RotatedSince(grantID, except string, at time.Time) (int, error) {
	n := 0
	err := tx.queryRow(`SELECT COUNT(*) FROM oauth_refresh_tokens WHERE grant_id = $1 AND hash != $2 AND rotated_at >= $3`,
		grantID, except, nanos(at)).Scan(&n)
	return n, err
}

// RevokeGrant revokes a grant and its tokens (authserver.RotationTx).
func (tx *Tx) RevokeGrant(grantID string, now time.Time) error {
	return tx.revokeGrantsWhere(now, `id = $2`, grantID)
}

// SupersedeCurrent supersedes a grant's current tokens
// (authserver.RotationTx).
func (tx *Tx) SupersedeCurrent(grantID string) error {
	_, err := tx.exec(`UPDATE oauth_refresh_tokens SET rotated_at = $1 WHERE grant_id = $2 AND rotated_at IS NULL`, authserver.SupersededAt, grantID)
	return err
}

// MarkRotated records a token's rotation (authserver.RotationTx).
func (tx *Tx) MarkRotated(hash string, at time.Time) error {
	_, err := tx.exec(`UPDATE oauth_refresh_tokens SET rotated_at = $1 WHERE hash = $2`, nanos(at), hash)
	return err
}

// SetGrantUsed sets a grant's last use (authserver.RotationTx).
func (tx *Tx) SetGrantUsed(grantID string, at time.Time) error {
	_, err := tx.exec(`UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2`, nanos(at), grantID)
	return err
}

// RevokeGrant revokes a grant and its tokens.
func (db *DB) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		return tx.revokeGrantsWhere(now, `id = $2`, grantID)
	})
}

// RevokeAccessToken puts one access token on the revocation list and
// announces it.
func (db *DB) RevokeAccessToken(ctx context.Context, jti string, expiresAt, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		rows, err := tx.Query(tx.ctx, `INSERT INTO oauth_revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3)
			ON CONFLICT (jti) DO NOTHING RETURNING jti, expires_at`, jti, nanos(expiresAt), nanos(now))
		if err != nil {
			return err
		}
		revoked, err := scanRevoked(rows, now)
		if err != nil {
			return err
		}
		return tx.notifyRevoked(revoked)
	})
}

// RevokedAccessTokens lists unexpired revocations made at or after since.
func (db *DB) RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]authserver.RevokedToken, error) {
	return collect(ctx, db, func(r pgx.Row) (authserver.RevokedToken, error) {
		var t authserver.RevokedToken
		var exp, rev int64
		err := r.Scan(&t.JTI, &exp, &rev)
		t.ExpiresAt, t.RevokedAt = fromNanos(exp), fromNanos(rev)
		return t, err
	}, `SELECT jti, expires_at, revoked_at FROM oauth_revoked_tokens
		WHERE revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at`, nanos(since), nanos(now))
}

// IsAccessTokenRevoked reports whether one access token is revoked.
func (db *DB) IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	ok, err := idempotent(ctx, db, func() (bool, error) {
		var ok bool
		err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_revoked_tokens WHERE jti = $1)`, jti).Scan(&ok)
		return ok, err
	})
	if err != nil {
		return false, epicme.Internal(err)
	}
	return ok, nil
}

func scanConsent(row pgx.Row) (*authserver.Consent, error) {
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
	if hasNUL(userID) || hasNUL(clientID) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "no consent")
	}
	c, err := idempotent(ctx, db, func() (*authserver.Consent, error) {
		return scanConsent(db.pool.QueryRow(ctx, `SELECT user_id, client_id, scope, created_at, updated_at
			FROM oauth_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID))
	})
	if errors.Is(err, pgx.ErrNoRows) {
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
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, c.Scope, nanos(c.CreatedAt), nanos(c.UpdatedAt))
	return err
}

// ListConsents returns the consents a user gave, newest first.
func (db *DB) ListConsents(ctx context.Context, userID string) ([]*authserver.Consent, error) {
	return collect(ctx, db, scanConsent, `SELECT user_id, client_id, scope, created_at, updated_at
		FROM oauth_consents WHERE user_id = $1 ORDER BY updated_at DESC`, userID)
}

// DeleteConsent withdraws a consent and revokes the user's grants to the
// client.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string, now time.Time) error {
	// The user's row first, as every transaction on one user's rows locks
	// it (and DeleteAccount, which deletes the same rows, does).
	return db.updateJournal(ctx, userID, func(tx *Tx) error {
		// A machine client acting for this user exists for this consent
		// only: it goes too.
		tag, err := tx.exec(`DELETE FROM oauth_clients WHERE id = $1 AND acts_as = $2`, clientID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return tx.dropClientRows(clientID, now)
		}
		if _, err := tx.exec(`DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID); err != nil {
			return err
		}
		return tx.revokeGrantsWhere(now, `user_id = $2 AND client_id = $3`, userID, clientID)
	})
}

// SigningKeys returns every stored signing key, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]*authserver.SigningKey, error) {
	return collect(ctx, db, func(r pgx.Row) (*authserver.SigningKey, error) {
		var k authserver.SigningKey
		var jwk string
		var created, active int64
		var retired *int64
		if err := r.Scan(&k.KID, &k.Alg, &k.PrivateSealed, &jwk, &created, &active, &retired); err != nil {
			return nil, err
		}
		k.PublicJWK = []byte(jwk)
		k.CreatedAt, k.ActiveAt, k.RetiredAt = fromNanos(created), fromNanos(active), fromNull(retired)
		return &k, nil
	}, `SELECT kid, alg, private_sealed, public_jwk, created_at, active_at, retired_at
		FROM oauth_signing_keys ORDER BY active_at, created_at`)
}

// CreateSigningKey stores a new signing key.
func (db *DB) CreateSigningKey(ctx context.Context, k *authserver.SigningKey) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_signing_keys (kid, alg, private_sealed, public_jwk, created_at, active_at, retired_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, k.KID, k.Alg, k.PrivateSealed, string(k.PublicJWK),
			nanos(k.CreatedAt), nanos(k.ActiveAt), nullNanos(k.RetiredAt))
		if isUnique(err, "oauth_signing_keys_pkey") {
			return epicme.Errorf(epicme.ECONFLICT, "a signing key with kid %q exists", k.KID)
		}
		return err
	})
}

// RetireSigningKey records when a key stopped signing.
func (db *DB) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE oauth_signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL`, nanos(at), kid)
		return err
	})
}

// DeleteSigningKey removes a key.
func (db *DB) DeleteSigningKey(ctx context.Context, kid string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_signing_keys WHERE kid = $1`, kid)
		return err
	})
}

// CountEvent counts one event under key in the fixed window holding now; the
// upsert makes concurrent counts from any instance add up.
func (db *DB) CountEvent(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start := now.Truncate(window)
	var n int
	err := db.update(ctx, func(tx *Tx) error {
		return tx.queryRow(`INSERT INTO oauth_rate_counts AS r (key, window_start, count, expires_at) VALUES ($1, $2, 1, $3)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN r.window_start = excluded.window_start THEN r.count + 1 ELSE 1 END,
				window_start = excluded.window_start,
				expires_at = excluded.expires_at
			RETURNING count`, key, nanos(start), nanos(start.Add(window))).Scan(&n)
	})
	return n, err
}

// ResetEvents forgets the events counted under key.
func (db *DB) ResetEvents(ctx context.Context, key string) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`DELETE FROM oauth_rate_counts WHERE key = $1`, key)
		return err
	})
}

// PurgeExpired deletes what has expired. Revoked grants are kept while any
// of their codes could still be replayed, and then go too.
func (db *DB) PurgeExpired(ctx context.Context, now time.Time) error {
	n := nanos(now)
	return db.update(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`DELETE FROM oauth_codes WHERE expires_at <= $1`,
			`DELETE FROM oauth_refresh_tokens WHERE expires_at <= $1`,
			`DELETE FROM oauth_access_tokens WHERE expires_at <= $1`,
			`DELETE FROM oauth_revoked_tokens WHERE expires_at <= $1`,
			`DELETE FROM oauth_rate_counts WHERE expires_at <= $1`,
			`DELETE FROM oauth_signin_sessions WHERE expires_at <= $1`,
			`DELETE FROM oauth_used_jtis WHERE expires_at <= $1`,
			`DELETE FROM oauth_grants WHERE revoked_at IS NOT NULL AND revoked_at <= $1
				AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens a WHERE a.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id)`,
			`DELETE FROM oauth_grants WHERE revoked_at IS NULL
				AND NOT EXISTS (SELECT 1 FROM oauth_refresh_tokens r WHERE r.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_access_tokens a WHERE a.grant_id = oauth_grants.id)
				AND NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.grant_id = oauth_grants.id)
				AND last_used_at <= $1`,
		} {
			if _, err := tx.exec(q, n); err != nil {
				return err
			}
		}
		return nil
	})
}

const grantListColumns = `id, client_id, user_id, scope, resource, created_at, last_used_at, revoked_at`

// ListGrants returns the grants the filter selects, newest first.
func (db *DB) ListGrants(ctx context.Context, f authserver.GrantFilter) ([]*authserver.Grant, error) {
	var where []string
	var args []any
	if f.UserID != "" {
		args = append(args, f.UserID)
		where = append(where, "user_id = $"+strconv.Itoa(len(args)))
	}
	if f.ClientID != "" {
		args = append(args, f.ClientID)
		where = append(where, "client_id = $"+strconv.Itoa(len(args)))
	}
	if !f.IncludeRevoked {
		where = append(where, "revoked_at IS NULL")
	}
	q := `SELECT ` + grantListColumns + ` FROM oauth_grants`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return collect(ctx, db, scanGrant, q+` ORDER BY created_at DESC, id`, args...)
}

// RevokeUserGrants revokes every grant of a user and puts their unexpired
// access tokens on the revocation list; it keeps the consents.
func (db *DB) RevokeUserGrants(ctx context.Context, userID string, now time.Time) error {
	return db.update(ctx, func(tx *Tx) error {
		return tx.revokeGrantsWhere(now, `user_id = $2`, userID)
	})
}

// DeleteAccount revokes the user's grants (their access tokens go on the
// revocation list, which outlives the user) and deletes the user, whose
// journal, codes, grants and consents go with it by cascade, in one
// transaction. ENOTFOUND if no such user. The user's row is locked first,
// so a machine client being created for the user (CreateMachineClient)
// lands before, and goes too, or finds no user.
func (db *DB) DeleteAccount(ctx context.Context, userID string, now time.Time) error {
	return db.updateJournal(ctx, userID, func(tx *Tx) error {
		if err := tx.revokeGrantsWhere(now, `user_id = $2`, userID); err != nil {
			return err
		}
		// The user's machine clients act for nobody else: they go too.
		if _, err := tx.exec(`DELETE FROM oauth_clients WHERE acts_as = $1`, userID); err != nil {
			return err
		}
		tag, err := tx.exec(`DELETE FROM users WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.UserNotFound()
		}
		return nil
	})
}

// MarkAccessTokensUsed moves the last use of each token's grant forward to
// the time given, in one statement.
func (db *DB) MarkAccessTokensUsed(ctx context.Context, uses map[string]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	jtis := make([]string, 0, len(uses))
	ats := make([]int64, 0, len(uses))
	for jti, at := range uses {
		jtis, ats = append(jtis, jti), append(ats, nanos(at))
	}
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE oauth_grants g SET last_used_at = u.at
			FROM (SELECT a.grant_id, max(x.at) AS at
				FROM unnest($1::text[], $2::bigint[]) AS x(jti, at)
				JOIN oauth_access_tokens a ON a.jti = x.jti
				GROUP BY a.grant_id) u
			WHERE g.id = u.grant_id AND g.last_used_at < u.at`, jtis, ats)
		return err
	})
}

// SaveIdentityProvider creates or replaces a trusted identity provider.
func (db *DB) SaveIdentityProvider(ctx context.Context, p *authserver.IdentityProvider) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO oauth_identity_providers (issuer, jwks_uri, clients, scope, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (issuer) DO UPDATE SET jwks_uri = excluded.jwks_uri, clients = excluded.clients, scope = excluded.scope`,
			p.Issuer, p.JWKSURI, list(p.Clients), p.Scope, nanos(p.CreatedAt))
		return err
	})
}

const identityProviderColumns = `issuer, jwks_uri, clients, scope, created_at`

func scanIdentityProvider(row pgx.Row) (*authserver.IdentityProvider, error) {
	var p authserver.IdentityProvider
	var created int64
	if err := row.Scan(&p.Issuer, &p.JWKSURI, &p.Clients, &p.Scope, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromNanos(created)
	return &p, nil
}

// IdentityProvider returns a trusted identity provider.
func (db *DB) IdentityProvider(ctx context.Context, issuer string) (*authserver.IdentityProvider, error) {
	if hasNUL(issuer) {
		return nil, epicme.Errorf(epicme.ENOTFOUND, "identity provider %q is not trusted", issuer)
	}
	p, err := idempotent(ctx, db, func() (*authserver.IdentityProvider, error) {
		return scanIdentityProvider(db.pool.QueryRow(ctx, `SELECT `+identityProviderColumns+` FROM oauth_identity_providers WHERE issuer = $1`, issuer))
	})
	if errors.Is(err, pgx.ErrNoRows) {
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
		tag, err := tx.exec(`DELETE FROM oauth_identity_providers WHERE issuer = $1`, issuer)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return epicme.Errorf(epicme.ENOTFOUND, "identity provider %q is not trusted", issuer)
		}
		return tx.revokeGrantsWhere(now, `user_id IN (SELECT id FROM users WHERE issuer = $2)`, issuer)
	})
}
