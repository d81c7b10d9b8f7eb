-- entries.tags holds an entry's tags as the JSON array that reading the
-- entry returns, [{"id":…,"name":…}, …] ordered by name (case-folded) and
-- id, so that reading an entry is one row instead of a row plus a lookup of
-- each of its tags (about three times the work on a large journal; see the
-- README's benchmark notes). The triggers below keep it equal to what
-- entry_tags and tags say, whoever writes: linking and unlinking a tag,
-- renaming a tag, and deleting a tag or an entry (the foreign-key cascades
-- fire the entry_tags trigger).
--
-- The column comes last (ADD COLUMN cannot place it elsewhere); an entry is
-- read whole, content included, so its place costs nothing.

ALTER TABLE entries ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

UPDATE entries SET tags = (
	SELECT json_group_array(json_object('id', t.id, 'name', t.name) ORDER BY t.name_key, t.id)
	FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
	WHERE et.user_id = entries.user_id AND et.entry_id = entries.id)
WHERE EXISTS (SELECT 1 FROM entry_tags et WHERE et.user_id = entries.user_id AND et.entry_id = entries.id);

CREATE TRIGGER entry_tags_insert_tags AFTER INSERT ON entry_tags BEGIN
	UPDATE entries SET tags = (
		SELECT json_group_array(json_object('id', t.id, 'name', t.name) ORDER BY t.name_key, t.id)
		FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
		WHERE et.user_id = NEW.user_id AND et.entry_id = NEW.entry_id)
	WHERE user_id = NEW.user_id AND id = NEW.entry_id;
END;

CREATE TRIGGER entry_tags_delete_tags AFTER DELETE ON entry_tags BEGIN
	UPDATE entries SET tags = (
		SELECT json_group_array(json_object('id', t.id, 'name', t.name) ORDER BY t.name_key, t.id)
		FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
		WHERE et.user_id = OLD.user_id AND et.entry_id = OLD.entry_id)
	WHERE user_id = OLD.user_id AND id = OLD.entry_id;
END;

CREATE TRIGGER entry_tags_update_tags AFTER UPDATE OF user_id, entry_id, tag_id ON entry_tags BEGIN
	UPDATE entries SET tags = (
		SELECT json_group_array(json_object('id', t.id, 'name', t.name) ORDER BY t.name_key, t.id)
		FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
		WHERE et.user_id = entries.user_id AND et.entry_id = entries.id)
	WHERE (user_id = OLD.user_id AND id = OLD.entry_id) OR (user_id = NEW.user_id AND id = NEW.entry_id);
END;

CREATE TRIGGER tags_rename_tags AFTER UPDATE OF name, name_key ON tags BEGIN
	UPDATE entries SET tags = (
		SELECT json_group_array(json_object('id', t.id, 'name', t.name) ORDER BY t.name_key, t.id)
		FROM entry_tags et JOIN tags t ON t.user_id = et.user_id AND t.id = et.tag_id
		WHERE et.user_id = entries.user_id AND et.entry_id = entries.id)
	WHERE user_id = NEW.user_id
	  AND id IN (SELECT entry_id FROM entry_tags WHERE user_id = NEW.user_id AND tag_id = NEW.id);
END;
