package storetest

import (
	"context"
	"testing"

	"github.com/epicme/epicme"
)

// journal is everything a user's journal holds, as the Store shows it.
type journal struct {
	Entries []*epicme.Entry
	Tags    []*epicme.Tag
}

// snapshot reads a user's whole journal through the public methods.
func snapshot(t tb, s epicme.Store, userID string) journal {
	t.Helper()
	ctx := context.Background()
	var j journal
	for _, sum := range listAll(t, s, userID, epicme.EntryFilter{Limit: epicme.MaxPageSize}) {
		e, err := s.GetEntry(ctx, userID, sum.ID)
		if err != nil {
			t.Fatalf("GetEntry(%d) of a listed entry: %v", sum.ID, err)
		}
		j.Entries = append(j.Entries, e)
	}
	refs, err := s.ListTags(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		tag, err := s.GetTag(ctx, userID, r.ID)
		if err != nil {
			t.Fatalf("GetTag(%d) of a listed tag: %v", r.ID, err)
		}
		j.Tags = append(j.Tags, tag)
	}
	return j
}

// testScoping calls every user-scoped method of user A with ids that exist
// only for user B, and checks that each answers exactly as for an id nobody
// has, and that B's journal is untouched.
func testScoping(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	a, b := newUser(t, s), newUser(t, s)

	// A has entries and tags 1-2; B has 1-5, so ids 3-5 are B's alone and
	// 99 is nobody's.
	for i := range 2 {
		tag := mustTag(t, s, a.ID, "a-tag-"+string(rune('0'+i)))
		mustEntry(t, s, a.ID, epicme.NewEntry{Title: "A's entry", Content: "shared words from alice", TagIDs: []int64{tag.ID}})
	}
	for i := range 5 {
		tag := mustTag(t, s, b.ID, "b-tag-"+string(rune('0'+i)))
		mustEntry(t, s, b.ID, epicme.NewEntry{Title: "B's entry", Content: "shared words from bob", TagIDs: []int64{tag.ID}})
	}
	before := snapshot(t, s, b.ID)
	aBefore := snapshot(t, s, a.ID)

	for _, id := range []int64{3, 4, 5, 99} {
		_, err := s.GetEntry(ctx, a.ID, id)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.UpdateEntry(ctx, a.ID, id, epicme.EntryUpdate{Title: ptr("stolen")})
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.UpdateEntry(ctx, a.ID, id, epicme.EntryUpdate{})
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.DeleteEntry(ctx, a.ID, id)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.GetTag(ctx, a.ID, id)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.UpdateTag(ctx, a.ID, id, epicme.TagUpdate{Name: ptr("stolen")})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.UpdateTag(ctx, a.ID, id, epicme.TagUpdate{})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.DeleteTag(ctx, a.ID, id)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.AddTagToEntry(ctx, a.ID, id, 1)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.AddTagToEntry(ctx, a.ID, 1, id)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.RemoveTagFromEntry(ctx, a.ID, id, 1)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(id))
		_, err = s.RemoveTagFromEntry(ctx, a.ID, 1, id)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		_, err = s.CreateEntry(ctx, a.ID, epicme.NewEntry{Title: "t", Content: "c", TagIDs: []int64{id}})
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(id))
		page, err := s.ListEntries(ctx, a.ID, epicme.EntryFilter{TagIDs: []int64{id}})
		if err != nil || len(page.Entries) != 0 {
			t.Fatalf("A listing by tag %d = %+v, %v; want nothing", id, page, err)
		}
	}
	// B's tag names do not conflict with A's.
	if _, err := s.CreateTag(ctx, a.ID, epicme.NewTag{Name: "b-tag-0"}); err != nil {
		t.Fatalf("A creating a tag named like B's: %v", err)
	}
	for _, sum := range listAll(t, s, a.ID, epicme.EntryFilter{}) {
		if sum.Title != "A's entry" {
			t.Fatalf("A's list shows %+v", sum)
		}
	}
	for _, h := range search(t, s, a.ID, "shared words") {
		if h.Title != "A's entry" {
			t.Fatalf("A's search shows %+v", h)
		}
	}
	if hits := search(t, s, a.ID, "bob"); len(hits) != 0 {
		t.Fatalf("A's search for B's word found %+v", hits)
	}
	for _, tag := range mustListTags(t, s, a.ID) {
		if tag.Name[0] != 'a' && tag.Name != "b-tag-0" {
			t.Fatalf("A's tags show %+v", tag)
		}
	}
	equal(t, "B's journal after A's calls", snapshot(t, s, b.ID), before)
	aAfter := snapshot(t, s, a.ID)
	equal(t, "A's entries after failed calls", aAfter.Entries, aBefore.Entries)

	// Unknown users see nothing and change nothing.
	page, err := s.ListEntries(ctx, "nosuchuser", epicme.EntryFilter{})
	if err != nil || len(page.Entries) != 0 {
		t.Fatalf("unknown user's list = %+v, %v", page, err)
	}
	_, err = s.GetEntry(ctx, "nosuchuser", 1)
	wantError(t, err, epicme.ENOTFOUND, entryNotFound(1))
	if _, err := s.CreateEntry(ctx, "nosuchuser", epicme.NewEntry{Title: "t", Content: "c"}); err == nil {
		t.Fatal("CreateEntry for an unknown user succeeded")
	}
	if _, err := s.CreateTag(ctx, "nosuchuser", epicme.NewTag{Name: "t"}); err == nil {
		t.Fatal("CreateTag for an unknown user succeeded")
	}
	equal(t, "B's journal at the end", snapshot(t, s, b.ID), before)
}

func mustListTags(t tb, s epicme.Store, userID string) []epicme.TagRef {
	t.Helper()
	refs, err := s.ListTags(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return refs
}
