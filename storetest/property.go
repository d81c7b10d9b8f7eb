package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"pgregory.net/rapid"
)

// testIsolationProperty interleaves random operations of two users, with ids
// drawn from both users' ranges, and checks after every step that the caller
// saw only its own journal (every answer agrees with the caller's journal as
// read before the step) and that the other user's journal did not change.
func testIsolationProperty(t *testing.T, s epicme.Store) {
	ctx := context.Background()
	words := []string{"apple", "river", "stone", "cloud", "night", "bread"}
	tagNames := []string{"home", "Home", "work", "travel", "birds"}
	ops := []string{"createEntry", "getEntry", "updateEntry", "deleteEntry", "listEntries", "searchEntries",
		"createTag", "getTag", "updateTag", "deleteTag", "listTags", "addTag", "removeTag"}

	rapid.Check(t, func(rt *rapid.T) {
		users := [2]*epicme.User{newUser(rt, s), newUser(rt, s)}
		labels := [2]string{"A", "B"}
		steps := rapid.IntRange(1, 30).Draw(rt, "steps")
		for range steps {
			actor := rapid.IntRange(0, 1).Draw(rt, "actor")
			me, other, label := users[actor], users[1-actor], labels[actor]
			mine := snapshot(rt, s, me.ID)
			theirs := snapshot(rt, s, other.ID)
			op := rapid.SampledFrom(ops).Draw(rt, "op")
			id := rapid.Int64Range(1, 8).Draw(rt, "id")
			tagID := rapid.Int64Range(1, 6).Draw(rt, "tagID")
			word := rapid.SampledFrom(words).Draw(rt, "word")
			entry := findEntry(mine, id)
			tag := findTag(mine, tagID)

			// checkEntry checks that a returned entry is the caller's own.
			checkEntry := func(e *epicme.Entry) {
				rt.Helper()
				if e.UserID != me.ID || !strings.HasPrefix(e.Title, label) {
					rt.Fatalf("%s: %s got entry %s", op, label, dump(e))
				}
			}
			wantEntryResult := func(err error) bool {
				rt.Helper()
				if entry == nil {
					wantError(rt, err, epicme.ENOTFOUND, entryNotFound(id))
					return false
				}
				if err != nil {
					rt.Fatalf("%s %d of %s: %v", op, id, label, err)
				}
				return true
			}
			wantTagResult := func(err error) bool {
				rt.Helper()
				if tag == nil {
					wantError(rt, err, epicme.ENOTFOUND, tagNotFound(tagID))
					return false
				}
				if err != nil && epicme.ErrorCode(err) != epicme.ECONFLICT {
					rt.Fatalf("%s %d of %s: %v", op, tagID, label, err)
				}
				return err == nil
			}

			switch op {
			case "createEntry":
				tagIDs := rapid.SliceOfN(rapid.Int64Range(1, 6), 0, 3).Draw(rt, "tagIDs")
				e, err := s.CreateEntry(ctx, me.ID, epicme.NewEntry{
					Title:   fmt.Sprintf("%s %s", label, word),
					Content: strings.Join(rapid.SliceOfN(rapid.SampledFrom(words), 1, 8).Draw(rt, "content"), " "),
					TagIDs:  tagIDs,
				})
				var missing []string
				for _, tid := range tagIDs {
					if findTag(mine, tid) == nil {
						missing = append(missing, tagNotFound(tid))
					}
				}
				if len(missing) > 0 {
					wantCode(rt, err, epicme.ENOTFOUND)
					if !slices.Contains(missing, epicme.ErrorMessage(err)) {
						rt.Fatalf("createEntry with tags %v: %q names no missing tag", tagIDs, epicme.ErrorMessage(err))
					}
					break
				}
				if err != nil {
					rt.Fatal(err)
				}
				checkEntry(e)
				for _, r := range e.Tags {
					if findTag(mine, r.ID) == nil || findTag(mine, r.ID).Name != r.Name {
						rt.Fatalf("new entry carries tag %+v", r)
					}
				}
			case "getEntry":
				e, err := s.GetEntry(ctx, me.ID, id)
				if wantEntryResult(err) {
					equal(rt, "getEntry", e, entry)
				}
			case "updateEntry":
				e, err := s.UpdateEntry(ctx, me.ID, id, epicme.EntryUpdate{
					Title:      ptr(label + " " + word),
					IsFavorite: ptr(rapid.Bool().Draw(rt, "favorite")),
				})
				if wantEntryResult(err) {
					checkEntry(e)
					equal(rt, "updated entry's tags", e.Tags, entry.Tags)
				}
			case "deleteEntry":
				e, err := s.DeleteEntry(ctx, me.ID, id)
				if wantEntryResult(err) {
					equal(rt, "deleted entry", e, entry)
				}
			case "listEntries":
				f := epicme.EntryFilter{Limit: rapid.IntRange(1, 5).Draw(rt, "limit")}
				if rapid.Bool().Draw(rt, "byTag") {
					f.TagIDs = []int64{tagID}
				}
				for _, sum := range listAll(rt, s, me.ID, f) {
					e := findEntry(mine, sum.ID)
					if e == nil || e.Title != sum.Title || sum.TagCount != len(e.Tags) {
						rt.Fatalf("%s's list shows %+v, not in its journal", label, sum)
					}
				}
			case "searchEntries":
				for _, h := range search(rt, s, me.ID, word) {
					e := findEntry(mine, h.ID)
					if e == nil || e.Title != h.Title || !strings.Contains(strings.ToLower(e.Title+" "+e.Content), word) {
						rt.Fatalf("%s's search for %q shows %+v", label, word, h)
					}
				}
			case "createTag":
				name := rapid.SampledFrom(tagNames).Draw(rt, "name")
				nt, err := s.CreateTag(ctx, me.ID, epicme.NewTag{Name: name})
				exists := slices.ContainsFunc(mine.Tags, func(t *epicme.Tag) bool { return strings.EqualFold(t.Name, name) })
				if exists {
					wantCode(rt, err, epicme.ECONFLICT)
				} else if err != nil || nt.UserID != me.ID {
					rt.Fatalf("createTag %q: %+v, %v", name, nt, err)
				}
			case "getTag":
				got, err := s.GetTag(ctx, me.ID, tagID)
				if wantTagResult(err) {
					equal(rt, "getTag", got, tag)
				}
			case "updateTag":
				got, err := s.UpdateTag(ctx, me.ID, tagID, epicme.TagUpdate{Name: ptr(rapid.SampledFrom(tagNames).Draw(rt, "name"))})
				if wantTagResult(err) && got.UserID != me.ID {
					rt.Fatalf("updateTag returned %+v", got)
				}
			case "deleteTag":
				got, err := s.DeleteTag(ctx, me.ID, tagID)
				if wantTagResult(err) {
					equal(rt, "deleted tag", got, tag)
				}
			case "listTags":
				refs, err := s.ListTags(ctx, me.ID)
				if err != nil {
					rt.Fatal(err)
				}
				var want []int64
				for _, t := range mine.Tags {
					want = append(want, t.ID)
				}
				if !slices.Equal(ids(refs, tagRefID), want) {
					rt.Fatalf("%s's tags = %v, want %v", label, refs, want)
				}
			case "addTag", "removeTag":
				var err error
				if op == "addTag" {
					var link *epicme.EntryTag
					link, err = s.AddTagToEntry(ctx, me.ID, id, tagID)
					if err == nil && (link.UserID != me.ID || link.EntryID != id || link.TagID != tagID) {
						rt.Fatalf("addTag returned %+v", link)
					}
				} else {
					_, err = s.RemoveTagFromEntry(ctx, me.ID, id, tagID)
				}
				switch {
				case entry == nil:
					wantError(rt, err, epicme.ENOTFOUND, entryNotFound(id))
				case tag == nil:
					wantError(rt, err, epicme.ENOTFOUND, tagNotFound(tagID))
				case err != nil:
					rt.Fatalf("%s %d %d: %v", op, id, tagID, err)
				}
			}
			equal(rt, fmt.Sprintf("the other user's journal after %s's %s", label, op), snapshot(rt, s, other.ID), theirs)
		}
	})
}

func findEntry(j journal, id int64) *epicme.Entry {
	for _, e := range j.Entries {
		if e.ID == id {
			return e
		}
	}
	return nil
}

func findTag(j journal, id int64) *epicme.Tag {
	for _, t := range j.Tags {
		if t.ID == id {
			return t
		}
	}
	return nil
}
