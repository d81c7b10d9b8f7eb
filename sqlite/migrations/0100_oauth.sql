-- The embedded OAuth authorization server: clients, authorization codes,
-- grants (one per redeemed code: the family of refresh tokens it starts),
-- refresh tokens, issued and revoked access tokens, consents, signing keys
-- and rate-limit counters.
--
-- Codes and tokens are stored only as hex SHA-256 hashes, client secrets
-- only as keyed hashes, private keys only sealed with the key-encryption
-- key. Times are integer Unix nanoseconds (UTC); NULL means "not yet".
--
-- client_id columns have no foreign key: a client identified by a metadata
-- document (its client_id is an https URL) is never stored here.

CREATE TABLE oauth_clients (
	id               TEXT    PRIMARY KEY,
	kind             TEXT    NOT NULL CHECK (kind IN ('preregistered', 'dynamic')),
	name             TEXT    NOT NULL DEFAULT '',
	secret_hash      TEXT    NOT NULL DEFAULT '',
	redirect_uris    TEXT    NOT NULL DEFAULT '[]', -- JSON array
	auth_method      TEXT    NOT NULL,
	grant_types      TEXT    NOT NULL DEFAULT '[]', -- JSON array
	scope            TEXT    NOT NULL DEFAULT '',
	client_uri       TEXT    NOT NULL DEFAULT '',
	logo_uri         TEXT    NOT NULL DEFAULT '',
	contacts         TEXT    NOT NULL DEFAULT '[]', -- JSON array
	software_id      TEXT    NOT NULL DEFAULT '',
	software_version TEXT    NOT NULL DEFAULT '',
	resource_server  INTEGER NOT NULL DEFAULT 0 CHECK (resource_server IN (0, 1)),
	resource         TEXT    NOT NULL DEFAULT '',
	registered_from  TEXT    NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	used_at          INTEGER
);

-- Finds dynamically registered clients that never completed a flow.
CREATE INDEX oauth_clients_unused ON oauth_clients (kind, created_at) WHERE used_at IS NULL;

CREATE TABLE oauth_codes (
	hash           TEXT    PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	redirect_uri   TEXT    NOT NULL,
	redirect_given INTEGER NOT NULL CHECK (redirect_given IN (0, 1)),
	code_challenge TEXT    NOT NULL,
	resource       TEXT    NOT NULL,
	scope          TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	used_at        INTEGER,
	grant_id       TEXT
);

CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
CREATE INDEX oauth_codes_client ON oauth_codes (client_id);

CREATE TABLE oauth_grants (
	id           TEXT    PRIMARY KEY,
	client_id    TEXT    NOT NULL,
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	scope        TEXT    NOT NULL,
	resource     TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	revoked_at   INTEGER
);

CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, client_id);

CREATE TABLE oauth_refresh_tokens (
	hash       TEXT    PRIMARY KEY,
	grant_id   TEXT    NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	rotated_at INTEGER
);

CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);

-- Issued access tokens, so that revoking a grant can revoke them too.
CREATE TABLE oauth_access_tokens (
	jti        TEXT    PRIMARY KEY,
	grant_id   TEXT    NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL
);

CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens (expires_at);

-- The revocation list: access tokens revoked before they expired.
CREATE TABLE oauth_revoked_tokens (
	jti        TEXT    PRIMARY KEY,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
);

CREATE INDEX oauth_revoked_tokens_revoked ON oauth_revoked_tokens (revoked_at);
CREATE INDEX oauth_revoked_tokens_expiry ON oauth_revoked_tokens (expires_at);

CREATE TABLE oauth_consents (
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL,
	scope      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

CREATE INDEX oauth_consents_client ON oauth_consents (client_id);

CREATE TABLE oauth_signing_keys (
	kid            TEXT    PRIMARY KEY,
	alg            TEXT    NOT NULL,
	private_sealed BLOB    NOT NULL,
	public_jwk     TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	active_at      INTEGER NOT NULL,
	retired_at     INTEGER
);

-- Fixed-window counters for rate limits (registrations, sign-in attempts).
CREATE TABLE oauth_rate_counts (
	key          TEXT    PRIMARY KEY,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
