-- MCP sessions of protocol revisions 2025-03-26..2025-11-25 (Streamable
-- HTTP, "Session Management"), stored so that any instance serves them and
-- they outlive a restart. A session id is kept only as its hex SHA-256
-- (epicme.SessionKey); it is bound to the user and OAuth client that opened
-- it. Times are integer Unix nanoseconds (UTC).
CREATE TABLE mcp_sessions (
	key              TEXT    PRIMARY KEY,
	user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id        TEXT    NOT NULL DEFAULT '',
	protocol_version TEXT    NOT NULL DEFAULT '',
	capabilities     TEXT    NOT NULL DEFAULT '{}', -- JSON object
	created_at       INTEGER NOT NULL,
	last_seen        INTEGER NOT NULL
) WITHOUT ROWID;

-- Finds idle sessions to delete, and a user's sessions.
CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen);
CREATE INDEX mcp_sessions_user ON mcp_sessions (user_id);

-- The resources a session subscribed to (resources/subscribe).
CREATE TABLE mcp_session_subscriptions (
	session_key TEXT NOT NULL REFERENCES mcp_sessions (key) ON DELETE CASCADE,
	uri         TEXT NOT NULL,
	PRIMARY KEY (session_key, uri)
) WITHOUT ROWID;
