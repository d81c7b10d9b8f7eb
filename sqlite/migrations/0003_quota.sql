-- What each user keeps, for epicme.Quota: counted by triggers so that every
-- way of writing (single writes, bulk loads, cascades) keeps the counts
-- right, and read with one row when a write must be checked.
ALTER TABLE users ADD COLUMN entry_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN tag_count   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN entry_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE users SET
	entry_count = (SELECT count(*) FROM entries e WHERE e.user_id = users.id),
	tag_count   = (SELECT count(*) FROM tags t WHERE t.user_id = users.id),
	entry_bytes = (SELECT coalesce(sum(length(CAST(e.title AS BLOB)) + length(CAST(e.content AS BLOB))), 0)
	               FROM entries e WHERE e.user_id = users.id);

CREATE TRIGGER entries_quota_insert AFTER INSERT ON entries BEGIN
	UPDATE users SET entry_count = entry_count + 1,
		entry_bytes = entry_bytes + length(CAST(NEW.title AS BLOB)) + length(CAST(NEW.content AS BLOB))
	WHERE id = NEW.user_id;
END;

CREATE TRIGGER entries_quota_delete AFTER DELETE ON entries BEGIN
	UPDATE users SET entry_count = entry_count - 1,
		entry_bytes = entry_bytes - length(CAST(OLD.title AS BLOB)) - length(CAST(OLD.content AS BLOB))
	WHERE id = OLD.user_id;
END;

CREATE TRIGGER entries_quota_update AFTER UPDATE OF title, content ON entries BEGIN
	UPDATE users SET entry_bytes = entry_bytes
		- length(CAST(OLD.title AS BLOB)) - length(CAST(OLD.content AS BLOB))
		+ length(CAST(NEW.title AS BLOB)) + length(CAST(NEW.content AS BLOB))
	WHERE id = NEW.user_id;
END;

CREATE TRIGGER tags_quota_insert AFTER INSERT ON tags BEGIN
	UPDATE users SET tag_count = tag_count + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER tags_quota_delete AFTER DELETE ON tags BEGIN
	UPDATE users SET tag_count = tag_count - 1 WHERE id = OLD.user_id;
END;
