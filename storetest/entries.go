package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
)

func testEntries(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		in := epicme.NewEntry{
			Title: "Première journée", Content: "Sunny walk by the river.\nSaw herons.",
			Mood: ptr("calm"), Location: ptr("Lyon"), Weather: ptr("sunny"),
			IsPrivate: true, IsFavorite: true,
		}
		e := mustEntry(t, s, u.ID, in)
		if e.ID != 1 || e.UserID != u.ID || e.Title != in.Title || e.Content != in.Content ||
			*e.Mood != "calm" || *e.Location != "Lyon" || *e.Weather != "sunny" || !e.IsPrivate || !e.IsFavorite {
			t.Fatalf("CreateEntry returned %s", dump(e))
		}
		if e.CreatedAt.IsZero() || !e.CreatedAt.Equal(e.UpdatedAt) || e.CreatedAt.Location() != time.UTC {
			t.Fatalf("timestamps = %v / %v, want equal UTC times", e.CreatedAt, e.UpdatedAt)
		}
		got, err := s.GetEntry(ctx, u.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "GetEntry", got, e)

		bare := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		got, err = s.GetEntry(ctx, u.ID, bare.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mood != nil || got.Location != nil || got.Weather != nil || got.IsPrivate || got.IsFavorite || got.Tags != nil {
			t.Fatalf("entry without options = %s", dump(got))
		}
	})

	t.Run("IDsAreNumberedPerUser", func(t *testing.T) {
		s := open(t)
		a, b := newUser(t, s), newUser(t, s)
		for want := int64(1); want <= 3; want++ {
			if e := mustEntry(t, s, a.ID, epicme.NewEntry{Title: "a", Content: "a"}); e.ID != want {
				t.Fatalf("user A entry id = %d, want %d", e.ID, want)
			}
		}
		if e := mustEntry(t, s, b.ID, epicme.NewEntry{Title: "b", Content: "b"}); e.ID != 1 {
			t.Fatalf("user B's first entry id = %d, want 1", e.ID)
		}
		if _, err := s.DeleteEntry(ctx, a.ID, 3); err != nil {
			t.Fatal(err)
		}
		if e := mustEntry(t, s, a.ID, epicme.NewEntry{Title: "a", Content: "a"}); e.ID != 4 {
			t.Fatalf("after deleting entry 3, next id = %d, want 4 (ids are never reused)", e.ID)
		}
		if tg := mustTag(t, s, b.ID, "x"); tg.ID != 1 {
			t.Fatalf("user B's first tag id = %d, want 1", tg.ID)
		}
	})

	t.Run("CreateLinksTagsInOrderOfName", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		zeta, alpha, beta := mustTag(t, s, u.ID, "zeta"), mustTag(t, s, u.ID, "Alpha"), mustTag(t, s, u.ID, "beta")
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{zeta.ID, alpha.ID, beta.ID, zeta.ID}})
		want := []epicme.TagRef{{ID: alpha.ID, Name: "Alpha"}, {ID: beta.ID, Name: "beta"}, {ID: zeta.ID, Name: "zeta"}}
		equal(t, "CreateEntry tags", e.Tags, want)
		got, err := s.GetEntry(ctx, u.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "GetEntry tags", got.Tags, want)
	})

	t.Run("CreateWithMissingTagWritesNothing", func(t *testing.T) {
		s := open(t)
		u, other := newUser(t, s), newUser(t, s)
		tag := mustTag(t, s, u.ID, "mine")
		othersTag := mustTag(t, s, other.ID, "theirs")
		mustTag(t, s, other.ID, "theirs too")
		_, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{tag.ID, 99}})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(99))
		_, err = s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{tag.ID, othersTag.ID + 1}})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(othersTag.ID+1))
		if got := listAll(t, s, u.ID, epicme.EntryFilter{}); len(got) != 0 {
			t.Fatalf("a failed CreateEntry left entries: %+v", got)
		}
		if e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"}); e.ID != 1 || e.Tags != nil {
			t.Fatalf("after failed creates, entry = id %d tags %v; want id 1 (nothing consumed), no tags", e.ID, e.Tags)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		cases := []struct {
			field string
			in    epicme.NewEntry
		}{
			{"title", epicme.NewEntry{Title: "", Content: "c"}},
			{"title", epicme.NewEntry{Title: strings.Repeat("é", epicme.MaxTitleLen+1), Content: "c"}},
			{"content", epicme.NewEntry{Title: "t", Content: ""}},
			{"content", epicme.NewEntry{Title: "t", Content: strings.Repeat("x", epicme.MaxContentBytes+1)}},
			{"content", epicme.NewEntry{Title: "t", Content: "bad \xff utf-8"}},
			{"mood", epicme.NewEntry{Title: "t", Content: "c", Mood: ptr(strings.Repeat("m", epicme.MaxMetaLen+1))}},
			{"location", epicme.NewEntry{Title: "t", Content: "c", Location: ptr(strings.Repeat("m", epicme.MaxMetaLen+1))}},
			{"weather", epicme.NewEntry{Title: "t", Content: "c", Weather: ptr(strings.Repeat("m", epicme.MaxMetaLen+1))}},
			{"tags", epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{0}}},
		}
		for _, c := range cases {
			_, err := s.CreateEntry(ctx, u.ID, c.in)
			wantInvalid(t, err, c.field)
		}
		if got := listAll(t, s, u.ID, epicme.EntryFilter{}); len(got) != 0 {
			t.Fatalf("invalid entries were stored: %+v", got)
		}
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		_, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{Title: ptr("new"), Content: ptr("")})
		wantInvalid(t, err, "content")
		got, _ := s.GetEntry(ctx, u.ID, e.ID)
		equal(t, "entry after a rejected update", got, e)
	})

	t.Run("UpdateIsPartial", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		tag := mustTag(t, s, u.ID, "walks")
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c", Mood: ptr("calm"), Location: ptr("Lyon"), Weather: ptr("rain"), TagIDs: []int64{tag.ID}})
		time.Sleep(2 * time.Millisecond) // so that a bumped updatedAt differs
		var noString *string
		got, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{Title: ptr("new title"), Mood: &noString, IsFavorite: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		want := *e
		want.Title, want.Mood, want.IsFavorite, want.UpdatedAt = "new title", nil, true, got.UpdatedAt
		equal(t, "UpdateEntry", got, &want)
		if !got.UpdatedAt.After(e.UpdatedAt) {
			t.Fatalf("updatedAt = %v, want after %v", got.UpdatedAt, e.UpdatedAt)
		}
		read, _ := s.GetEntry(ctx, u.ID, e.ID)
		equal(t, "GetEntry after update", read, got)

		same, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{})
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "empty update", same, got)

		_, err = s.UpdateEntry(ctx, u.ID, 42, epicme.EntryUpdate{Title: ptr("x")})
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(42))
	})

	t.Run("DeleteReturnsEntryAndRemovesLinks", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		tag := mustTag(t, s, u.ID, "walks")
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{tag.ID}})
		keep := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "keep", Content: "c", TagIDs: []int64{tag.ID}})
		got, err := s.DeleteEntry(ctx, u.ID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "DeleteEntry result", got, e)
		_, err = s.GetEntry(ctx, u.ID, e.ID)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(e.ID))
		_, err = s.DeleteEntry(ctx, u.ID, e.ID)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(e.ID))
		tagged := listAll(t, s, u.ID, epicme.EntryFilter{TagIDs: []int64{tag.ID}})
		equal(t, "entries with the tag", ids(tagged, summaryID), []int64{keep.ID})
		if _, err := s.GetTag(ctx, u.ID, tag.ID); err != nil {
			t.Fatalf("deleting an entry deleted its tag: %v", err)
		}
		read, _ := s.GetEntry(ctx, u.ID, keep.ID)
		equal(t, "other entry's tags", read.Tags, []epicme.TagRef{{ID: tag.ID, Name: "walks"}})
	})

	t.Run("MissingIDs", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		for _, id := range []int64{0, -1, 1, 1 << 40} {
			_, err := s.GetEntry(ctx, u.ID, id)
			wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		}
	})
}

func testTags(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("CreateGetListByName", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		tag, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "  Travel ", Description: ptr("trips")})
		if err != nil {
			t.Fatal(err)
		}
		if tag.ID != 1 || tag.Name != "Travel" || *tag.Description != "trips" || tag.UserID != u.ID {
			t.Fatalf("CreateTag = %s", dump(tag))
		}
		got, err := s.GetTag(ctx, u.ID, tag.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "GetTag", got, tag)
		b := mustTag(t, s, u.ID, "birds")
		z := mustTag(t, s, u.ID, "Zoo")
		list, err := s.ListTags(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "ListTags", list, []epicme.TagRef{{ID: b.ID, Name: "birds"}, {ID: tag.ID, Name: "Travel"}, {ID: z.ID, Name: "Zoo"}})
		empty, err := s.ListTags(ctx, newUser(t, s).ID)
		if err != nil || len(empty) != 0 {
			t.Fatalf("ListTags of a new user = %v, %v", empty, err)
		}
	})

	t.Run("NamesAreUniquePerUserCaseInsensitively", func(t *testing.T) {
		s := open(t)
		u, other := newUser(t, s), newUser(t, s)
		mustTag(t, s, u.ID, "Travel")
		_, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "tRAVEL"})
		wantCode(t, err, epicme.ECONFLICT)
		if !strings.Contains(epicme.ErrorMessage(err), "tRAVEL") {
			t.Fatalf("conflict message %q does not name the tag", epicme.ErrorMessage(err))
		}
		mustTag(t, s, u.ID, "Émotions")
		_, err = s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "émotions"})
		wantCode(t, err, epicme.ECONFLICT)
		mustTag(t, s, other.ID, "travel") // another user's names are theirs
		food := mustTag(t, s, u.ID, "food")
		_, err = s.UpdateTag(ctx, u.ID, food.ID, epicme.TagUpdate{Name: ptr("TRAVEL")})
		wantCode(t, err, epicme.ECONFLICT)
		got, _ := s.GetTag(ctx, u.ID, food.ID)
		equal(t, "tag after a conflicting rename", got, food)
		// Renaming a tag to another case of its own name is fine.
		if _, err := s.UpdateTag(ctx, u.ID, food.ID, epicme.TagUpdate{Name: ptr("Food")}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UpdatePartialAndValidation", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		tag, _ := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "a", Description: ptr("d")})
		time.Sleep(2 * time.Millisecond)
		var none *string
		got, err := s.UpdateTag(ctx, u.ID, tag.ID, epicme.TagUpdate{Description: &none})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "a" || got.Description != nil || !got.UpdatedAt.After(tag.UpdatedAt) || !got.CreatedAt.Equal(tag.CreatedAt) {
			t.Fatalf("UpdateTag = %s", dump(got))
		}
		read, _ := s.GetTag(ctx, u.ID, tag.ID)
		equal(t, "GetTag after update", read, got)
		_, err = s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "   "})
		wantInvalid(t, err, "name")
		_, err = s.CreateTag(ctx, u.ID, epicme.NewTag{Name: strings.Repeat("n", epicme.MaxTagNameLen+1)})
		wantInvalid(t, err, "name")
		_, err = s.UpdateTag(ctx, u.ID, tag.ID, epicme.TagUpdate{Name: ptr("")})
		wantInvalid(t, err, "name")
		_, err = s.UpdateTag(ctx, u.ID, 77, epicme.TagUpdate{Name: ptr("x")})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(77))
		list, _ := s.ListTags(ctx, u.ID)
		equal(t, "tags after invalid input", ids(list, tagRefID), []int64{tag.ID})
	})

	t.Run("AddTagToEntryIsIdempotent", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		tag := mustTag(t, s, u.ID, "x")
		l1, err := s.AddTagToEntry(ctx, u.ID, e.ID, tag.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l1.ID != 1 || l1.EntryID != e.ID || l1.TagID != tag.ID || l1.UserID != u.ID {
			t.Fatalf("link = %+v", l1)
		}
		time.Sleep(2 * time.Millisecond)
		l2, err := s.AddTagToEntry(ctx, u.ID, e.ID, tag.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "second AddTagToEntry", l2, l1)
		tag2 := mustTag(t, s, u.ID, "y")
		l3, err := s.AddTagToEntry(ctx, u.ID, e.ID, tag2.ID)
		if err != nil || l3.ID != 2 {
			t.Fatalf("next link = %+v, %v; want id 2 (a repeat uses no id)", l3, err)
		}
		got, _ := s.GetEntry(ctx, u.ID, e.ID)
		equal(t, "entry tags", got.Tags, []epicme.TagRef{{ID: tag.ID, Name: "x"}, {ID: tag2.ID, Name: "y"}})
		_, err = s.AddTagToEntry(ctx, u.ID, 9, tag.ID)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(9))
		_, err = s.AddTagToEntry(ctx, u.ID, e.ID, 9)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(9))
	})

	t.Run("RemoveTagFromEntry", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		tag := mustTag(t, s, u.ID, "x")
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{tag.ID}})
		removed, err := s.RemoveTagFromEntry(ctx, u.ID, e.ID, tag.ID)
		if err != nil || !removed {
			t.Fatalf("first remove = %v, %v", removed, err)
		}
		removed, err = s.RemoveTagFromEntry(ctx, u.ID, e.ID, tag.ID)
		if err != nil || removed {
			t.Fatalf("second remove = %v, %v; want false, nil", removed, err)
		}
		got, _ := s.GetEntry(ctx, u.ID, e.ID)
		if len(got.Tags) != 0 {
			t.Fatalf("tags after remove = %v", got.Tags)
		}
		_, err = s.RemoveTagFromEntry(ctx, u.ID, 5, tag.ID)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(5))
		_, err = s.RemoveTagFromEntry(ctx, u.ID, e.ID, 5)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(5))
	})

	t.Run("RenameTagShowsOnEntriesInNameOrder", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		a, b := mustTag(t, s, u.ID, "apple"), mustTag(t, s, u.ID, "banana")
		e1 := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "one", Content: "c", TagIDs: []int64{a.ID, b.ID}})
		e2 := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "two", Content: "c", TagIDs: []int64{a.ID}})
		e3 := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "three", Content: "c", TagIDs: []int64{b.ID}})
		if _, err := s.UpdateTag(ctx, u.ID, a.ID, epicme.TagUpdate{Name: ptr("Zucchini")}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   int64
			want []epicme.TagRef
		}{
			{e1.ID, []epicme.TagRef{{ID: b.ID, Name: "banana"}, {ID: a.ID, Name: "Zucchini"}}},
			{e2.ID, []epicme.TagRef{{ID: a.ID, Name: "Zucchini"}}},
			{e3.ID, []epicme.TagRef{{ID: b.ID, Name: "banana"}}},
		} {
			got, err := s.GetEntry(ctx, u.ID, c.id)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, fmt.Sprintf("tags of entry %d after a rename", c.id), got.Tags, c.want)
		}
		// A description change leaves the entries' tags as they were.
		if _, err := s.UpdateTag(ctx, u.ID, b.ID, epicme.TagUpdate{Description: ptr(ptr("fruit"))}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetEntry(ctx, u.ID, e1.ID)
		equal(t, "tags after a description change", got.Tags, []epicme.TagRef{{ID: b.ID, Name: "banana"}, {ID: a.ID, Name: "Zucchini"}})
		// Deleting an entry leaves the others' tags alone.
		if _, err := s.DeleteEntry(ctx, u.ID, e2.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetEntry(ctx, u.ID, e1.ID)
		equal(t, "tags after deleting another entry", got.Tags, []epicme.TagRef{{ID: b.ID, Name: "banana"}, {ID: a.ID, Name: "Zucchini"}})
	})

	t.Run("DeleteTagRemovesLinks", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		x, y := mustTag(t, s, u.ID, "x"), mustTag(t, s, u.ID, "y")
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{x.ID, y.ID}})
		got, err := s.DeleteTag(ctx, u.ID, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "DeleteTag result", got, x)
		read, _ := s.GetEntry(ctx, u.ID, e.ID)
		equal(t, "entry tags after DeleteTag", read.Tags, []epicme.TagRef{{ID: y.ID, Name: "y"}})
		page, _ := s.ListEntries(ctx, u.ID, epicme.EntryFilter{})
		if page.Entries[0].TagCount != 1 {
			t.Fatalf("tagCount after DeleteTag = %d, want 1", page.Entries[0].TagCount)
		}
		_, err = s.GetTag(ctx, u.ID, x.ID)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(x.ID))
		_, err = s.DeleteTag(ctx, u.ID, x.ID)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(x.ID))
		// A new tag of the same name is a new tag, linked to nothing.
		again := mustTag(t, s, u.ID, "x")
		if again.ID == x.ID {
			t.Fatalf("tag id %d was reused", again.ID)
		}
		if tagged := listAll(t, s, u.ID, epicme.EntryFilter{TagIDs: []int64{again.ID}}); len(tagged) != 0 {
			t.Fatalf("a new tag inherited links: %+v", tagged)
		}
	})
}
