-- Machine clients (the client credentials grant, RFC 6749 §4.4): acts_as is
-- the id of the one user whose journal the client's tokens reach, '' for
-- every other client. jwks (a JSON Web Key Set, RFC 7517 §5) or jwks_uri
-- holds the public keys of a client that authenticates with private_key_jwt
-- (RFC 7523 §2.2). Deleting the user deletes their machine clients (the
-- store does it in DeleteAccount).
ALTER TABLE oauth_clients ADD COLUMN acts_as text NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN jwks text NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN jwks_uri text NOT NULL DEFAULT '';

CREATE INDEX oauth_clients_acts_as ON oauth_clients (acts_as) WHERE acts_as <> '';

-- Keys used once (authserver.Store.UseOnce): the hex SHA-256 of a client
-- assertion's issuer and jti (RFC 7523 §3), kept until the assertion
-- expires (Unix nanoseconds), then purged.
CREATE TABLE oauth_used_jtis (
	key        text   PRIMARY KEY,
	expires_at bigint NOT NULL
);

CREATE INDEX oauth_used_jtis_expiry ON oauth_used_jtis (expires_at);
