-- Enterprise identity providers the operator trusts (epicme idp add): an
-- IdP whose Identity Assertion JWT Authorization Grants (ID-JAG) the token
-- endpoint accepts by the jwt-bearer grant (RFC 7523). jwks_uri is where its
-- keys are, or '' to find them in its metadata (RFC 8414); clients is the
-- JSON array of EpicMe client ids it may vouch for; scope is the most it may
-- grant ('' for every scope). Its users are the users whose issuer is the
-- IdP's.
CREATE TABLE oauth_identity_providers (
	issuer     TEXT    PRIMARY KEY,
	jwks_uri   TEXT    NOT NULL DEFAULT '',
	clients    TEXT    NOT NULL DEFAULT '[]',
	scope      TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
