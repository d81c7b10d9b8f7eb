-- The multi round-trip requests (MCP 2026-07-28 requestState) that
-- completed, so that no instance sharing the database completes one twice:
-- the state's HMAC proves it genuine, not unused. key is the hex SHA-256 of
-- the state's signed payload; a row is kept until the state expires
-- (expires_at, Unix nanoseconds), then swept.
CREATE TABLE mcp_used_request_states (
	key        text   PRIMARY KEY,
	expires_at bigint NOT NULL
);

CREATE INDEX mcp_used_request_states_expiry ON mcp_used_request_states (expires_at);
