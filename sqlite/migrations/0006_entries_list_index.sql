-- entries_newest carries what a page of list_entries shows (title,
-- favorite flag, the tags column it counts), so a page is read from the
-- index alone: about 50 consecutive index entries instead of 50 seeks into
-- the entries table, whose rows are large. It costs about 100 bytes an
-- entry and some work on each write of a title or of tags.
--
-- https://www.sqlite.org/queryplanner.html#covidx

DROP INDEX entries_newest;

CREATE INDEX entries_newest ON entries (user_id, created_at DESC, id DESC, is_favorite, title, tags);
