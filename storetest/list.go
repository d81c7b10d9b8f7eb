package storetest

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/epicme/epicme"
)

func testList(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("PagesNewestFirstWithoutGapsOrRepeats", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		var want []int64
		for range 7 {
			e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
			want = append([]int64{e.ID}, want...)
		}
		var got []int64
		f := epicme.EntryFilter{Limit: 3}
		var sizes []int
		for {
			page, err := s.ListEntries(ctx, u.ID, f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Entries))
			got = append(got, ids(page.Entries, summaryID)...)
			if page.NextCursor == "" {
				break
			}
			if len(sizes) == 2 {
				// An entry written while paging is newer than every page
				// still to come, so it must not show up in them.
				mustEntry(t, s, u.ID, epicme.NewEntry{Title: "late", Content: "c"})
			}
			f.Cursor = page.NextCursor
		}
		equal(t, "ids over all pages", got, want)
		equal(t, "page sizes", sizes, []int{3, 3, 1})

		page, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 8 || page.NextCursor != "" || page.Entries[0].Title != "late" {
			t.Fatalf("default page = %d entries, cursor %q, first %q", len(page.Entries), page.NextCursor, page.Entries[0].Title)
		}
		for i := 1; i < len(page.Entries); i++ {
			a, b := page.Entries[i-1], page.Entries[i]
			if a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID) {
				t.Fatalf("entries %d and %d are not newest first", a.ID, b.ID)
			}
		}
	})

	t.Run("ExactPageEndsWithoutCursor", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		for range 4 {
			mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		}
		page, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: 4})
		if err != nil || len(page.Entries) != 4 || page.NextCursor != "" {
			t.Fatalf("page = %+v, %v; want 4 entries and no cursor", page, err)
		}
		empty, err := s.ListEntries(ctx, newUser(t, s).ID, epicme.EntryFilter{})
		if err != nil || empty.Entries == nil || len(empty.Entries) != 0 {
			t.Fatalf("empty list = %#v, %v; want an empty, non-nil slice", empty, err)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		x, y := mustTag(t, s, u.ID, "x"), mustTag(t, s, u.ID, "y")
		var all []*epicme.Entry
		for i := range 9 {
			in := epicme.NewEntry{Title: "t", Content: "c", IsFavorite: i%3 == 0}
			if i%2 == 0 {
				in.TagIDs = append(in.TagIDs, x.ID)
			}
			if i%4 == 0 {
				in.TagIDs = append(in.TagIDs, y.ID)
			}
			all = append(all, mustEntry(t, s, u.ID, in))
		}
		expect := func(keep func(e *epicme.Entry) bool) []int64 {
			var out []int64
			for _, e := range slices.Backward(all) {
				if keep(e) {
					out = append(out, e.ID)
				}
			}
			return out
		}
		has := func(e *epicme.Entry, tag int64) bool {
			return slices.ContainsFunc(e.Tags, func(r epicme.TagRef) bool { return r.ID == tag })
		}
		from, to := all[2].CreatedAt, all[6].CreatedAt
		cases := []struct {
			name string
			f    epicme.EntryFilter
			keep func(e *epicme.Entry) bool
		}{
			{"favorites", epicme.EntryFilter{FavoritesOnly: true}, func(e *epicme.Entry) bool { return e.IsFavorite }},
			{"tag x", epicme.EntryFilter{TagIDs: []int64{x.ID}}, func(e *epicme.Entry) bool { return has(e, x.ID) }},
			{"tags x and y", epicme.EntryFilter{TagIDs: []int64{x.ID, y.ID, x.ID}}, func(e *epicme.Entry) bool { return has(e, x.ID) && has(e, y.ID) }},
			{"missing tag", epicme.EntryFilter{TagIDs: []int64{99}}, func(e *epicme.Entry) bool { return false }},
			{"from", epicme.EntryFilter{From: from}, func(e *epicme.Entry) bool { return !e.CreatedAt.Before(from) }},
			{"to", epicme.EntryFilter{To: to}, func(e *epicme.Entry) bool { return e.CreatedAt.Before(to) }},
			{"from to", epicme.EntryFilter{From: from, To: to}, func(e *epicme.Entry) bool { return !e.CreatedAt.Before(from) && e.CreatedAt.Before(to) }},
			{"favorites tag x from", epicme.EntryFilter{FavoritesOnly: true, TagIDs: []int64{x.ID}, From: from},
				func(e *epicme.Entry) bool { return e.IsFavorite && has(e, x.ID) && !e.CreatedAt.Before(from) }},
		}
		for _, c := range cases {
			for _, limit := range []int{0, 2} {
				c.f.Limit = limit
				got := listAll(t, s, u.ID, c.f)
				if want := expect(c.keep); !slices.Equal(ids(got, summaryID), want) {
					t.Fatalf("%s (limit %d): ids %v, want %v", c.name, limit, ids(got, summaryID), want)
				}
				for _, sum := range got {
					e := all[sum.ID-1]
					if sum.TagCount != len(e.Tags) || sum.IsFavorite != e.IsFavorite || sum.Title != e.Title || !sum.CreatedAt.Equal(e.CreatedAt) {
						t.Fatalf("%s: summary %+v does not match entry %s", c.name, sum, dump(e))
					}
				}
			}
		}
	})

	t.Run("InvalidInput", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		for _, c := range []string{"garbage!", "bm90IGEgY3Vyc29y", base64.RawURLEncoding.EncodeToString([]byte("l1.x")), "=="} {
			_, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{Cursor: c})
			wantInvalid(t, err, "cursor")
		}
		_, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: epicme.MaxPageSize + 1})
		wantInvalid(t, err, "limit")
		_, err = s.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: -1})
		wantInvalid(t, err, "limit")
	})
}
