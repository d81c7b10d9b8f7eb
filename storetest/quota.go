package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/epicme/epicme"
)

// testQuota holds a store to epicme.Quota: the write past each limit is
// refused with ECONFLICT naming the limit, nothing it would have written is
// stored, other users are not affected, and deleting makes room again.
func testQuota(t *testing.T, open opener) {
	ctx := context.Background()
	withQuota := func(t *testing.T, q epicme.Quota) epicme.Store {
		s := open(t)
		qs, ok := s.(epicme.QuotaSetter)
		if !ok {
			t.Fatalf("%T does not implement epicme.QuotaSetter: a store must enforce a per-user quota", s)
		}
		qs.SetQuota(q)
		return s
	}
	count := func(t *testing.T, s epicme.Store, u *epicme.User) int {
		t.Helper()
		p, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: epicme.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		return len(p.Entries)
	}
	wantLimit := func(t *testing.T, err error, words string) {
		t.Helper()
		wantCode(t, err, epicme.ECONFLICT)
		if msg := epicme.ErrorMessage(err); !strings.Contains(msg, words) {
			t.Fatalf("message %q does not name the limit (%q)", msg, words)
		}
	}

	t.Run("Entries", func(t *testing.T) {
		s := withQuota(t, epicme.Quota{Entries: 3})
		u, other := newUser(t, s), newUser(t, s)
		for i := 0; i < 3; i++ {
			if _, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "c"}); err != nil {
				t.Fatal(err)
			}
		}
		tag, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "fourth", Content: "c", TagIDs: []int64{tag.ID}})
		wantLimit(t, err, "at most 3 entries")
		if n := count(t, s, u); n != 3 {
			t.Fatalf("%d entries after the refused write, want 3", n)
		}
		if p, err := s.ListEntries(ctx, u.ID, epicme.EntryFilter{TagIDs: []int64{tag.ID}}); err != nil || len(p.Entries) != 0 {
			t.Fatalf("the refused entry's tag link was stored: %v %v", p, err)
		}
		// Another user's journal has its own allowance.
		if _, err := s.CreateEntry(ctx, other.ID, epicme.NewEntry{Title: "t", Content: "c"}); err != nil {
			t.Fatalf("another user's write: %v", err)
		}
		// Deleting makes room, and the refused write used no id.
		if _, err := s.DeleteEntry(ctx, u.ID, 3); err != nil {
			t.Fatal(err)
		}
		e, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
		if err != nil {
			t.Fatalf("after a delete: %v", err)
		}
		if e.ID != 4 {
			t.Fatalf("id %d after a refused write and a delete, want 4", e.ID)
		}
	})

	t.Run("Tags", func(t *testing.T) {
		s := withQuota(t, epicme.Quota{Tags: 2})
		u := newUser(t, s)
		for _, n := range []string{"a", "b"} {
			if _, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: n}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "c"})
		wantLimit(t, err, "at most 2 tags")
		tags, err := s.ListTags(ctx, u.ID)
		if err != nil || len(tags) != 2 {
			t.Fatalf("tags after the refused write: %v %v", tags, err)
		}
		if _, err := s.DeleteTag(ctx, u.ID, 1); err != nil {
			t.Fatal(err)
		}
		tg, err := s.CreateTag(ctx, u.ID, epicme.NewTag{Name: "c"})
		if err != nil || tg.ID != 3 {
			t.Fatalf("after a delete: %v %v, want tag 3", tg, err)
		}
	})

	t.Run("Bytes", func(t *testing.T) {
		s := withQuota(t, epicme.Quota{Bytes: 100})
		u := newUser(t, s)
		// Bytes, not characters: "é" is two.
		first, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "ab", Content: strings.Repeat("é", 29)}) // 60 bytes
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: strings.Repeat("x", 40)}) // 101 in all
		wantLimit(t, err, "at most 100 bytes")
		if n := count(t, s, u); n != 1 {
			t.Fatalf("%d entries after the refused write, want 1", n)
		}
		// Growing an entry past the limit is refused and changes nothing.
		_, err = s.UpdateEntry(ctx, u.ID, first.ID, epicme.EntryUpdate{Content: ptr(strings.Repeat("y", 99)), Mood: ptr(ptr("glad"))})
		wantLimit(t, err, "at most 100 bytes")
		got, err := s.GetEntry(ctx, u.ID, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Content != first.Content || got.Mood != nil {
			t.Fatalf("the refused update changed the entry: %+v", got)
		}
		// Growing up to the limit exactly is allowed; so is shrinking.
		if _, err := s.UpdateEntry(ctx, u.ID, first.ID, epicme.EntryUpdate{Content: ptr(strings.Repeat("y", 98))}); err != nil {
			t.Fatalf("growing to exactly the limit: %v", err)
		}
		if _, err := s.UpdateEntry(ctx, u.ID, first.ID, epicme.EntryUpdate{Content: ptr("short")}); err != nil {
			t.Fatalf("shrinking: %v", err)
		}
		if _, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: strings.Repeat("x", 40)}); err != nil {
			t.Fatalf("after shrinking: %v", err)
		}
		// Deleting frees what the entry used.
		if _, err := s.DeleteEntry(ctx, u.ID, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: strings.Repeat("z", 50)}); err != nil {
			t.Fatalf("after a delete: %v", err)
		}
	})

	// Writes racing for the last places cannot pass the limit together:
	// each checks the count under its own transaction's lock on the user.
	t.Run("ConcurrentWrites", func(t *testing.T) {
		s := withQuota(t, epicme.Quota{Entries: 5, Bytes: 1000})
		u := newUser(t, s)
		const n = 16
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: strings.Repeat("c", 100)})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case epicme.ErrorCode(err) != epicme.ECONFLICT:
				t.Fatalf("a racing write failed otherwise: %v", err)
			}
		}
		if got := count(t, s, u); ok != 5 || got != 5 {
			t.Fatalf("%d writes succeeded and %d entries are stored, want 5 and 5", ok, got)
		}
	})

	t.Run("DefaultsWhenUnset", func(t *testing.T) {
		if got := (epicme.Quota{}).OrDefault(); got != epicme.DefaultQuota {
			t.Fatalf("zero quota = %+v, want the defaults %+v", got, epicme.DefaultQuota)
		}
	})
}
