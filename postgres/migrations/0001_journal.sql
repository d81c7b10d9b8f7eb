-- The journal: users, entries, tags, the links between them, and the
-- full-text index of entries. The same tables as the sqlite package's, in
-- PostgreSQL's types.
--
-- Entry, tag and link ids are numbered per user from the counters on users,
-- so no id tells one user anything about another. Every journal table
-- carries user_id in its key and every query filters on it.

CREATE TABLE users (
	-- rid is the internal number of a user; it never leaves the database. It
	-- prefixes the user's words in the full-text index (see entries.search).
	rid               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id                text        NOT NULL,
	issuer            text        NOT NULL,
	subject           text        NOT NULL,
	email             text        NOT NULL DEFAULT '',
	password_hash     text        NOT NULL DEFAULT '',
	disabled          boolean     NOT NULL DEFAULT false,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	next_entry_id     bigint      NOT NULL DEFAULT 1,
	next_tag_id       bigint      NOT NULL DEFAULT 1,
	next_entry_tag_id bigint      NOT NULL DEFAULT 1,
	CONSTRAINT users_id UNIQUE (id),
	CONSTRAINT users_identity UNIQUE (issuer, subject)
);

-- An email names at most one local account; accounts of other issuers may
-- share it, since email never links identities.
CREATE UNIQUE INDEX users_local_email ON users (email) WHERE issuer = 'local';

CREATE TABLE entries (
	user_id     text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	id          bigint      NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	is_private  boolean     NOT NULL DEFAULT true,
	is_favorite boolean     NOT NULL DEFAULT false,
	-- search_len is the number of words of title and content, for ranking.
	search_len  integer     NOT NULL DEFAULT 0,
	title       text        NOT NULL,
	mood        text,
	location    text,
	weather     text,
	content     text        NOT NULL,
	-- search holds the distinct words of title and content, split and
	-- lower-cased by the program (epicme.SearchIndexWords, the rules of
	-- epicme.SearchTerms) rather than by a text search configuration: no
	-- stemming, no stop words, and the same Unicode case folding whatever
	-- the database's locale. Each lexeme is "<rid in base 36>.<word>", so a
	-- word of one user and the same word of another are different keys of
	-- the GIN index below: a search reads only its own user's posting
	-- lists, however many users share the word.
	search      tsvector    NOT NULL,
	PRIMARY KEY (user_id, id)
);

-- Lists page newest first; INCLUDE lets the search statistics (count and
-- total length of a user's entries) come from the index alone.
CREATE INDEX entries_newest ON entries (user_id, created_at DESC, id DESC) INCLUDE (search_len);

-- fastupdate = off writes each entry's words straight into the index
-- instead of a pending list that every search would have to scan in full,
-- other users' recent entries included.
CREATE INDEX entries_search ON entries USING gin (search) WITH (fastupdate = off);

CREATE TABLE tags (
	user_id     text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	id          bigint      NOT NULL,
	name        text        NOT NULL,
	-- name_key is the name folded to lower case by the program (as on
	-- SQLite), so names are unique case-insensitively; the C collation
	-- orders it by bytes, as SQLite does, whatever the database's locale.
	name_key    text        COLLATE "C" NOT NULL,
	description text,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (user_id, id),
	CONSTRAINT tags_name UNIQUE (user_id, name_key)
);

-- The composite foreign keys make a link between one user's entry and another
-- user's tag impossible, whatever the program does.
CREATE TABLE entry_tags (
	user_id    text        NOT NULL,
	id         bigint      NOT NULL,
	entry_id   bigint      NOT NULL,
	tag_id     bigint      NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, id),
	CONSTRAINT entry_tags_link UNIQUE (user_id, entry_id, tag_id),
	FOREIGN KEY (user_id, entry_id) REFERENCES entries (user_id, id) ON DELETE CASCADE,
	FOREIGN KEY (user_id, tag_id) REFERENCES tags (user_id, id) ON DELETE CASCADE
);

CREATE INDEX entry_tags_tag ON entry_tags (user_id, tag_id, entry_id);
