-- What each user keeps, for epicme.Quota: counted by triggers so that every
-- way of writing (single writes, bulk loads, cascades) keeps the counts
-- right, and read with one row when a write must be checked. Statement
-- triggers with transition tables update each user's row once per
-- statement, so a bulk load does not update it once per row.
ALTER TABLE users
	ADD COLUMN entry_count bigint NOT NULL DEFAULT 0,
	ADD COLUMN tag_count   bigint NOT NULL DEFAULT 0,
	ADD COLUMN entry_bytes bigint NOT NULL DEFAULT 0;

UPDATE users u SET
	entry_count = (SELECT count(*) FROM entries e WHERE e.user_id = u.id),
	tag_count   = (SELECT count(*) FROM tags t WHERE t.user_id = u.id),
	entry_bytes = (SELECT coalesce(sum(octet_length(e.title) + octet_length(e.content)), 0)
	               FROM entries e WHERE e.user_id = u.id);

CREATE FUNCTION entries_quota_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users u SET entry_count = u.entry_count + d.n, entry_bytes = u.entry_bytes + d.b
	FROM (SELECT user_id, count(*) AS n, sum(octet_length(title) + octet_length(content)) AS b
	      FROM new_rows GROUP BY user_id) d
	WHERE u.id = d.user_id;
	RETURN NULL;
END $$;

CREATE FUNCTION entries_quota_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users u SET entry_count = u.entry_count - d.n, entry_bytes = u.entry_bytes - d.b
	FROM (SELECT user_id, count(*) AS n, sum(octet_length(title) + octet_length(content)) AS b
	      FROM old_rows GROUP BY user_id) d
	WHERE u.id = d.user_id;
	RETURN NULL;
END $$;

CREATE FUNCTION entries_quota_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users u SET entry_bytes = u.entry_bytes + d.b
	FROM (SELECT n.user_id, sum(octet_length(n.title) + octet_length(n.content)
	                            - octet_length(o.title) - octet_length(o.content)) AS b
	      FROM new_rows n JOIN old_rows o ON o.user_id = n.user_id AND o.id = n.id
	      GROUP BY n.user_id) d
	WHERE u.id = d.user_id AND d.b <> 0;
	RETURN NULL;
END $$;

CREATE FUNCTION tags_quota_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users u SET tag_count = u.tag_count + d.n
	FROM (SELECT user_id, count(*) AS n FROM new_rows GROUP BY user_id) d
	WHERE u.id = d.user_id;
	RETURN NULL;
END $$;

CREATE FUNCTION tags_quota_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE users u SET tag_count = u.tag_count - d.n
	FROM (SELECT user_id, count(*) AS n FROM old_rows GROUP BY user_id) d
	WHERE u.id = d.user_id;
	RETURN NULL;
END $$;

CREATE TRIGGER entries_quota_insert AFTER INSERT ON entries
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION entries_quota_insert();
CREATE TRIGGER entries_quota_delete AFTER DELETE ON entries
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION entries_quota_delete();
CREATE TRIGGER entries_quota_update AFTER UPDATE ON entries
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION entries_quota_update();
CREATE TRIGGER tags_quota_insert AFTER INSERT ON tags
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tags_quota_insert();
CREATE TRIGGER tags_quota_delete AFTER DELETE ON tags
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tags_quota_delete();
