-- The embedded OAuth authorization server: clients, authorization codes,
-- grants (one per redeemed code: the family of refresh tokens it starts),
-- refresh tokens, issued and revoked access tokens, consents, signing keys
-- and rate-limit counters. The same tables as the sqlite package's
-- 0100_oauth.sql.
--
-- Codes and tokens are stored only as hex SHA-256 hashes, client secrets
-- only as keyed hashes, private keys only sealed with the key-encryption
-- key. Times are bigint Unix nanoseconds (UTC), as on SQLite, so that the
-- authorization server's comparisons (a refresh grace period, an expiry)
-- come out the same on both stores; NULL means "not yet".
--
-- client_id columns have no foreign key: a client identified by a metadata
-- document (its client_id is an https URL) is never stored here.

CREATE TABLE oauth_clients (
	id               text    PRIMARY KEY,
	kind             text    NOT NULL CHECK (kind IN ('preregistered', 'dynamic')),
	name             text    NOT NULL DEFAULT '',
	secret_hash      text    NOT NULL DEFAULT '',
	redirect_uris    text[]  NOT NULL DEFAULT '{}',
	auth_method      text    NOT NULL,
	grant_types      text[]  NOT NULL DEFAULT '{}',
	scope            text    NOT NULL DEFAULT '',
	client_uri       text    NOT NULL DEFAULT '',
	logo_uri         text    NOT NULL DEFAULT '',
	contacts         text[]  NOT NULL DEFAULT '{}',
	software_id      text    NOT NULL DEFAULT '',
	software_version text    NOT NULL DEFAULT '',
	resource_server  boolean NOT NULL DEFAULT false,
	resource         text    NOT NULL DEFAULT '',
	registered_from  text    NOT NULL DEFAULT '',
	created_at       bigint  NOT NULL,
	used_at          bigint
);

-- Finds dynamically registered clients that never completed a flow.
CREATE INDEX oauth_clients_unused ON oauth_clients (kind, created_at) WHERE used_at IS NULL;

CREATE TABLE oauth_codes (
	hash           text    PRIMARY KEY,
	client_id      text    NOT NULL,
	user_id        text    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	redirect_uri   text    NOT NULL,
	redirect_given boolean NOT NULL,
	code_challenge text    NOT NULL,
	resource       text    NOT NULL,
	scope          text    NOT NULL,
	created_at     bigint  NOT NULL,
	expires_at     bigint  NOT NULL,
	used_at        bigint,
	grant_id       text
);

CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
CREATE INDEX oauth_codes_client ON oauth_codes (client_id);
CREATE INDEX oauth_codes_user ON oauth_codes (user_id);
CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id) WHERE grant_id IS NOT NULL;

CREATE TABLE oauth_grants (
	id           text   PRIMARY KEY,
	client_id    text   NOT NULL,
	user_id      text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	scope        text   NOT NULL,
	resource     text   NOT NULL,
	created_at   bigint NOT NULL,
	last_used_at bigint NOT NULL,
	revoked_at   bigint
);

CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, client_id);

CREATE TABLE oauth_refresh_tokens (
	hash       text   PRIMARY KEY,
	grant_id   text   NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	rotated_at bigint
);

CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);

-- Issued access tokens, so that revoking a grant can revoke them too.
CREATE TABLE oauth_access_tokens (
	jti        text   PRIMARY KEY,
	grant_id   text   NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
	expires_at bigint NOT NULL
);

CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens (expires_at);

-- The revocation list: access tokens revoked before they expired.
CREATE TABLE oauth_revoked_tokens (
	jti        text   PRIMARY KEY,
	expires_at bigint NOT NULL,
	revoked_at bigint NOT NULL
);

CREATE INDEX oauth_revoked_tokens_revoked ON oauth_revoked_tokens (revoked_at);
CREATE INDEX oauth_revoked_tokens_expiry ON oauth_revoked_tokens (expires_at);

CREATE TABLE oauth_consents (
	user_id    text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  text   NOT NULL,
	scope      text   NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

CREATE INDEX oauth_consents_client ON oauth_consents (client_id);

CREATE TABLE oauth_signing_keys (
	kid            text   PRIMARY KEY,
	alg            text   NOT NULL,
	private_sealed bytea  NOT NULL,
	public_jwk     text   NOT NULL,
	created_at     bigint NOT NULL,
	active_at      bigint NOT NULL,
	retired_at     bigint
);

-- Fixed-window counters for rate limits (registrations, sign-in attempts),
-- shared by every instance.
CREATE TABLE oauth_rate_counts (
	key          text   PRIMARY KEY,
	window_start bigint NOT NULL,
	count        integer NOT NULL,
	expires_at   bigint NOT NULL
);
