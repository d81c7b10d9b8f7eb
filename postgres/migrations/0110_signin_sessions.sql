-- Sessions of the authorization server's sign-in pages, so that signing
-- out, a password change and disabling an account end them on the server:
-- a copied cookie stops working. The cookie holds a random id; only its hex
-- SHA-256 is kept here. Times are integer Unix nanoseconds (UTC); expired
-- rows are swept with the other expiring rows.
CREATE TABLE oauth_signin_sessions (
	hash       text   PRIMARY KEY,
	user_id    text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);

CREATE INDEX oauth_signin_sessions_user ON oauth_signin_sessions (user_id);
CREATE INDEX oauth_signin_sessions_expiry ON oauth_signin_sessions (expires_at);
