package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
)

// userDeleter is implemented by stores that delete users (both do; it is not
// part of epicme.Store because only operators delete accounts).
type userDeleter interface {
	DeleteUser(ctx context.Context, userID string) error
}

// userDisabler is implemented by stores that disable users.
type userDisabler interface {
	SetUserDisabled(ctx context.Context, userID string, disabled bool) error
}

// testConcurrency checks the rules that hold only if a store serialises one
// user's writes: however many requests arrive at once (on one instance or on
// several sharing a database), ids stay dense and unique per user, and
// linking the same pair twice makes one link.
func testConcurrency(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("IDsStayDenseUnderConcurrentCreates", func(t *testing.T) {
		s := open(t)
		a, b := newUser(t, s), newUser(t, s)
		const n = 24
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			for _, u := range []*epicme.User{a, b} {
				wg.Go(func() {
					if _, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: fmt.Sprint("e", i), Content: "c"}); err != nil {
						errs <- err
					}
					if _, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: fmt.Sprint("t", i)}); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := make([]int64, n)
		for i := range want {
			want[i] = int64(i + 1)
		}
		for _, u := range []*epicme.User{a, b} {
			got := ids(listAll(t, s, u.ID, epicme.EntryFilter{Limit: epicme.MaxPageSize}), summaryID)
			equal(t, "entry ids", sorted(got), want)
			equal(t, "tag ids", sorted(ids(mustListTags(t, s, u.ID), tagRefID)), want)
		}
	})

	t.Run("ConcurrentLinksOfOnePairMakeOneLink", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		tag := mustTag(t, s, u.ID, "x")
		const n = 12
		links := make([]*epicme.EntryTag, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { links[i], errs[i] = s.AddTagToEntry(ctx, u.ID, e.ID, tag.ID) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			equal(t, "link", links[i], links[0])
		}
		if links[0].ID != 1 {
			t.Fatalf("link id = %d, want 1", links[0].ID)
		}
		got, err := s.GetEntry(ctx, u.ID, e.ID)
		if err != nil || len(got.Tags) != 1 {
			t.Fatalf("entry tags = %+v, %v; want one", got.Tags, err)
		}
		// The next new link is number 2: the repeats took no ids.
		tag2 := mustTag(t, s, u.ID, "y")
		et, err := s.AddTagToEntry(ctx, u.ID, e.ID, tag2.ID)
		if err != nil || et.ID != 2 {
			t.Fatalf("next link = %+v, %v; want id 2", et, err)
		}
	})
}

// testUserLifecycle checks what deleting and disabling a user does, for
// stores that can.
func testUserLifecycle(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("DeletingAUserDeletesTheJournal", func(t *testing.T) {
		s := open(t)
		del, ok := s.(userDeleter)
		if !ok {
			t.Skip("the store does not delete users")
		}
		a, b := newUser(t, s), newUser(t, s)
		for _, u := range []*epicme.User{a, b} {
			tag := mustTag(t, s, u.ID, "walks")
			mustEntry(t, s, u.ID, epicme.NewEntry{Title: "River", Content: "heron by the water", TagIDs: []int64{tag.ID}})
		}
		bBefore := snapshot(t, s, b.ID)
		if err := del.DeleteUser(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, del.DeleteUser(ctx, a.ID), epicme.ENOTFOUND)
		_, err := s.UserByID(ctx, a.ID)
		wantCode(t, err, epicme.ENOTFOUND)
		_, err = s.GetEntry(ctx, a.ID, 1)
		wantError(t, err, epicme.ENOTFOUND, entryNotFound(1))
		_, err = s.GetTag(ctx, a.ID, 1)
		wantError(t, err, epicme.ENOTFOUND, tagNotFound(1))
		equal(t, "A's entries", len(listAll(t, s, a.ID, epicme.EntryFilter{})), 0)
		equal(t, "A's tags", len(mustListTags(t, s, a.ID)), 0)
		equal(t, "A's search", len(search(t, s, a.ID, "heron")), 0)
		equal(t, "B's journal", snapshot(t, s, b.ID), bBefore)
		equal(t, "B's search", len(search(t, s, b.ID, "heron")), 1)
		// The email is free again, and the new account starts at id 1.
		c, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: a.Email})
		if err != nil {
			t.Fatalf("reusing a deleted account's email: %v", err)
		}
		if c.ID == a.ID {
			t.Fatal("a new account got the deleted account's id")
		}
		if e := mustEntry(t, s, c.ID, epicme.NewEntry{Title: "t", Content: "c"}); e.ID != 1 {
			t.Fatalf("first entry of the new account has id %d", e.ID)
		}
		users, err := s.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if u.ID == a.ID {
				t.Fatal("ListUsers still lists the deleted user")
			}
		}
		if len(users) != 2 {
			t.Fatalf("%d users after deleting one of three", len(users))
		}
	})

	t.Run("DisabledUsersAreMarked", func(t *testing.T) {
		s := open(t)
		dis, ok := s.(userDisabler)
		if !ok {
			t.Skip("the store does not disable users")
		}
		u := newUser(t, s)
		if err := dis.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		for _, get := range []func() (*epicme.User, error){
			func() (*epicme.User, error) { return s.UserByID(ctx, u.ID) },
			func() (*epicme.User, error) { return s.UserByIdentity(ctx, u.Issuer, u.Subject) },
			func() (*epicme.User, error) { return s.LocalUserByEmail(ctx, u.Email) },
		} {
			got, err := get()
			if err != nil || !got.Disabled || got.UpdatedAt.Before(u.UpdatedAt) {
				t.Fatalf("disabled user reads as %+v, %v", got, err)
			}
		}
		if err := dis.SetUserDisabled(ctx, u.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, err := s.UserByID(ctx, u.ID); err != nil || got.Disabled {
			t.Fatalf("re-enabled user reads as %+v, %v", got, err)
		}
		wantCode(t, dis.SetUserDisabled(ctx, "nosuchuser", true), epicme.ENOTFOUND)
	})
}

// testText checks that every store keeps text exactly, and refuses the one
// character a PostgreSQL text column cannot hold (NUL) as invalid input on
// every store, rather than failing inside one of them.
func testText(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("UnusualTextRoundTrips", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		odd := "emoji 🦉 RTL עברית combining e\u0301 controls \x01\x1f\t\r\n tab\ttrailing  \u2028 \uFEFF BOM 'quotes' \"double\" back\\slash %_ like"
		long := strings.Repeat("ж", epicme.MaxContentBytes/2) // exactly at the limit, 2 bytes a rune
		tagName := strings.Repeat("ü", epicme.MaxTagNameLen)
		tag := mustTag(t, s, u.ID, tagName)
		for _, in := range []epicme.NewEntry{
			{Title: odd, Content: odd, Mood: ptr("🦉 \u00e9té"), Location: ptr(""), Weather: ptr(" ")},
			{Title: strings.Repeat("t", epicme.MaxTitleLen), Content: long, TagIDs: []int64{tag.ID}},
		} {
			e := mustEntry(t, s, u.ID, in)
			got, err := s.GetEntry(ctx, u.ID, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "entry read back", got, e)
			if got.Title != in.Title || got.Content != in.Content || deref(got.Mood) != deref(in.Mood) || deref(got.Location) != deref(in.Location) {
				t.Fatalf("text changed on the way through the store")
			}
		}
		got, err := s.GetTag(ctx, u.ID, tag.ID)
		if err != nil || got.Name != tagName {
			t.Fatalf("tag = %+v, %v", got, err)
		}
	})

	t.Run("NULCharactersAreInvalid", func(t *testing.T) {
		s := open(t)
		u := newUser(t, s)
		for _, c := range []struct {
			field string
			in    epicme.NewEntry
		}{
			{"title", epicme.NewEntry{Title: "a\x00b", Content: "c"}},
			{"content", epicme.NewEntry{Title: "t", Content: "c\x00"}},
			{"mood", epicme.NewEntry{Title: "t", Content: "c", Mood: ptr("\x00")}},
		} {
			_, err := s.CreateEntry(ctx, u.ID, c.in)
			wantInvalid(t, err, c.field)
		}
		e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		_, err := s.UpdateEntry(ctx, u.ID, e.ID, epicme.EntryUpdate{Content: ptr("x\x00y")})
		wantInvalid(t, err, "content")
		_, err = s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "x\x00"})
		wantInvalid(t, err, "name")
		_, err = s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "x", Description: ptr("\x00")})
		wantInvalid(t, err, "description")
		_, err = s.CreateUser(ctx, epicme.NewUser{Issuer: "https://idp.example", Subject: "s\x00"})
		wantInvalid(t, err, "subject")
		_, err = s.EnsureUser(ctx, "https://idp.example", "s\x00", "")
		wantInvalid(t, err, "subject")
		_, err = s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a\x00@example.com"})
		wantInvalid(t, err, "email")
		got, err := s.GetEntry(ctx, u.ID, e.ID)
		if err != nil || got.Content != "c" {
			t.Fatalf("entry after a refused update = %+v, %v", got, err)
		}
		if tags := mustListTags(t, s, u.ID); len(tags) != 0 {
			t.Fatalf("refused tags were stored: %v", tags)
		}
	})

	t.Run("LookupsWithNULFindNothing", func(t *testing.T) { testLookupsWithNUL(t, open) })
}

// testLookupsWithNUL checks that looking a user up by a key holding NUL (a
// sign-in form passes what was typed) answers "not found" on every store.
func testLookupsWithNUL(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	u := newUser(t, s)
	_, err := s.UserByID(ctx, u.ID+"\x00")
	wantCode(t, err, epicme.ENOTFOUND)
	_, err = s.UserByIdentity(ctx, epicme.LocalIssuer, "\x00"+u.Subject)
	wantCode(t, err, epicme.ENOTFOUND)
	_, err = s.LocalUserByEmail(ctx, u.Email+"\x00")
	wantCode(t, err, epicme.ENOTFOUND)
}

// bulkLoader is implemented by stores that load a journal in one
// transaction (fixtures, imports).
type bulkLoader interface {
	BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error
}

// testBulkInsert checks that a bulk load numbers, dates, links and indexes
// entries as one call per row would, and writes nothing when any row fails.
func testBulkInsert(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t)
	bl, ok := s.(bulkLoader)
	if !ok {
		t.Skip("the store has no bulk load")
	}
	u := newUser(t, s)
	old := mustTag(t, s, u.ID, "old")
	tags := []epicme.NewTag{{Name: "two"}, {Name: "three", Description: ptr("3")}, {Name: "four"}}
	var entries []epicme.NewEntry
	for i := range 30 {
		entries = append(entries, epicme.NewEntry{
			Title: fmt.Sprint("bulk ", i), Content: fmt.Sprint("loaded word", i%3),
			IsFavorite: i%2 == 0, TagIDs: []int64{int64(2 + i%3), old.ID, int64(2 + i%3)},
		})
	}
	if err := bl.BulkInsert(ctx, u.ID, entries, tags); err != nil {
		t.Fatal(err)
	}
	list := listAll(t, s, u.ID, epicme.EntryFilter{})
	if len(list) != 30 || list[0].ID != 30 || list[29].ID != 1 {
		t.Fatalf("listed %d entries, newest %d, oldest %d; want 30, newest last in the slice", len(list), list[0].ID, list[29].ID)
	}
	for i := 1; i < len(list); i++ {
		if d := list[i-1].CreatedAt.Sub(list[i].CreatedAt); d != time.Minute {
			t.Fatalf("entries %d and %d are %v apart, want a minute", list[i-1].ID, list[i].ID, d)
		}
	}
	e, err := s.GetEntry(ctx, u.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 5 is entries[4]: tag 2 + 4%3 = 3 ("three") and "old", by name.
	equal(t, "entry 5 tags", e.Tags, []epicme.TagRef{{ID: old.ID, Name: "old"}, {ID: 3, Name: "three"}})
	if e.Title != "bulk 4" || !e.IsFavorite || e.Content != "loaded word1" {
		t.Fatalf("entry 5 = %s", dump(e))
	}
	equal(t, "tags", ids(mustListTags(t, s, u.ID), tagRefID), []int64{4, old.ID, 3, 2})
	equal(t, "search word1", len(search(t, s, u.ID, "word1")), 10)
	equal(t, "search loaded", len(search(t, s, u.ID, "loaded")), 30)
	// Counters continue after the load.
	if e := mustEntry(t, s, u.ID, epicme.NewEntry{Title: "after", Content: "c"}); e.ID != 31 {
		t.Fatalf("next entry id = %d, want 31", e.ID)
	}
	if tag := mustTag(t, s, u.ID, "five"); tag.ID != 5 {
		t.Fatalf("next tag id = %d, want 5", tag.ID)
	}
	if et, err := s.AddTagToEntry(ctx, u.ID, 31, 5); err != nil || et.ID != 61 {
		t.Fatalf("next link = %+v, %v; want id 61 after 60 loaded links", et, err)
	}

	// Failures write nothing.
	before := snapshot(t, s, u.ID)
	err = bl.BulkInsert(ctx, u.ID, []epicme.NewEntry{{Title: "a", Content: "b"}, {Title: "a", Content: "b", TagIDs: []int64{77}}}, []epicme.NewTag{{Name: "six"}})
	wantError(t, err, epicme.ENOTFOUND, tagNotFound(77))
	err = bl.BulkInsert(ctx, u.ID, []epicme.NewEntry{{Title: "a", Content: "b"}}, []epicme.NewTag{{Name: "seven"}, {Name: "OLD"}})
	wantCode(t, err, epicme.ECONFLICT)
	err = bl.BulkInsert(ctx, u.ID, []epicme.NewEntry{{Title: "a", Content: "b"}, {Title: "", Content: "b"}}, nil)
	wantInvalid(t, err, "title")
	equal(t, "journal after failed loads", snapshot(t, s, u.ID), before)
	err = bl.BulkInsert(ctx, "nosuchuser", []epicme.NewEntry{{Title: "a", Content: "b"}}, nil)
	wantCode(t, err, epicme.ENOTFOUND)
}
