-- MCP sessions of protocol revisions 2025-03-26..2025-11-25 (Streamable
-- HTTP, "Session Management"), stored so that every instance sharing the
-- database serves them. A session id is kept only as its hex SHA-256
-- (epicme.SessionKey); it is bound to the user and OAuth client that opened
-- it. Times are integer Unix nanoseconds (UTC).
CREATE TABLE mcp_sessions (
	key              text   PRIMARY KEY,
	user_id          text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id        text   NOT NULL DEFAULT '',
	protocol_version text   NOT NULL DEFAULT '',
	capabilities     text   NOT NULL DEFAULT '{}', -- JSON object
	created_at       bigint NOT NULL,
	last_seen        bigint NOT NULL
);

-- Finds idle sessions to delete, and a user's sessions.
CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen);
CREATE INDEX mcp_sessions_user ON mcp_sessions (user_id);

-- The resources a session subscribed to (resources/subscribe).
CREATE TABLE mcp_session_subscriptions (
	session_key text NOT NULL REFERENCES mcp_sessions (key) ON DELETE CASCADE,
	uri         text NOT NULL,
	PRIMARY KEY (session_key, uri)
);
