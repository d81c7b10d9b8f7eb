-- The DPoP key a public client's refresh token is bound to (RFC 9449 §5):
-- the JWK SHA-256 thumbprint of the proof that came with the token request
-- that issued it, or '' for a token not bound to a key. A refresh must then
-- carry a proof by that key.
ALTER TABLE oauth_refresh_tokens ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';

-- The DPoP key an authorization request bound its code to (dpop_jkt,
-- RFC 9449 §10), or '': the token request must carry a proof by that key.
ALTER TABLE oauth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
