-- The journal: users, entries, tags, the links between them, and the
-- full-text index of entries.
--
-- Times are integer Unix nanoseconds (UTC). Entry, tag and link ids are
-- numbered per user from the counters on users, so no id tells one user
-- anything about another. Every journal table carries user_id in its key and
-- every query filters on it.

CREATE TABLE users (
	-- rid is the internal number of a user; it never leaves the database. It
	-- keys the user's range of the full-text index (see entries_fts).
	rid               INTEGER PRIMARY KEY AUTOINCREMENT,
	id                TEXT    NOT NULL UNIQUE,
	issuer            TEXT    NOT NULL,
	subject           TEXT    NOT NULL,
	email             TEXT    NOT NULL DEFAULT '',
	password_hash     TEXT    NOT NULL DEFAULT '',
	disabled          INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	next_entry_id     INTEGER NOT NULL DEFAULT 1,
	next_tag_id       INTEGER NOT NULL DEFAULT 1,
	next_entry_tag_id INTEGER NOT NULL DEFAULT 1,
	UNIQUE (issuer, subject)
);

-- An email names at most one local account; accounts of other issuers may
-- share it, since email never links identities.
CREATE UNIQUE INDEX users_local_email ON users (email) WHERE issuer = 'local';

-- Small columns come first and content last, so that listing titles never
-- reads a long entry's overflow pages.
CREATE TABLE entries (
	user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	id          INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	is_private  INTEGER NOT NULL DEFAULT 1 CHECK (is_private IN (0, 1)),
	is_favorite INTEGER NOT NULL DEFAULT 0 CHECK (is_favorite IN (0, 1)),
	-- search_len is the number of words of title and content, for ranking.
	search_len  INTEGER NOT NULL DEFAULT 0,
	title       TEXT    NOT NULL,
	mood        TEXT,
	location    TEXT,
	weather     TEXT,
	content     TEXT    NOT NULL,
	PRIMARY KEY (user_id, id)
);

CREATE INDEX entries_newest ON entries (user_id, created_at DESC, id DESC);

CREATE TABLE tags (
	user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	id          INTEGER NOT NULL,
	name        TEXT    NOT NULL,
	-- name_key is the name folded to lower case by the program (Unicode
	-- aware, unlike SQLite's NOCASE), so names are unique case-insensitively.
	name_key    TEXT    NOT NULL,
	description TEXT,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (user_id, id),
	UNIQUE (user_id, name_key)
);

-- The composite foreign keys make a link between one user's entry and another
-- user's tag impossible, whatever the program does.
CREATE TABLE entry_tags (
	user_id    TEXT    NOT NULL,
	id         INTEGER NOT NULL,
	entry_id   INTEGER NOT NULL,
	tag_id     INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id),
	UNIQUE (user_id, entry_id, tag_id),
	FOREIGN KEY (user_id, entry_id) REFERENCES entries (user_id, id) ON DELETE CASCADE,
	FOREIGN KEY (user_id, tag_id) REFERENCES tags (user_id, id) ON DELETE CASCADE
);

CREATE INDEX entry_tags_tag ON entry_tags (user_id, tag_id, entry_id);

-- entries_fts holds, for each entry, the distinct words of its title and
-- content as the program splits them (epicme.SearchTerms rules), so the
-- 'ascii' tokenizer sees exactly those words. It stores no text
-- (content='') and no positions (detail=none): ranking and snippets are
-- computed by the program from this user's entries only.
--
-- Its rowid is (users.rid << 32) | entries.id: each user's entries occupy
-- one contiguous rowid range, and a search seeks straight to that range of a
-- word's document list instead of scanning every user's matches.
CREATE VIRTUAL TABLE entries_fts USING fts5 (
	terms,
	content = '',
	contentless_delete = 1,
	detail = none,
	tokenize = 'ascii'
);

CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
	DELETE FROM entries_fts
	WHERE rowid = ((SELECT rid FROM users WHERE id = old.user_id) << 32) | old.id;
END;

-- A user's entries go by cascade after the user row is gone, when the trigger
-- above can no longer find the user's rid; clear the user's range first.
CREATE TRIGGER users_fts_delete BEFORE DELETE ON users BEGIN
	DELETE FROM entries_fts
	WHERE rowid BETWEEN (old.rid << 32) AND (old.rid << 32) + 4294967295;
END;
