package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/epicme/epicme"
)

// SQLInjections are strings that would change a statement built by
// pasting text into SQL, or a full-text query built by pasting text into
// FTS5 MATCH or to_tsquery syntax.
var SQLInjections = []string{
	`'; DROP TABLE entries; --`,
	`" OR 1=1 --`,
	`x' OR '1'='1`,
	`%' OR user_id LIKE '%`,
	`1; DELETE FROM users`,
	`\'; SELECT * FROM users; --`,
	`') UNION SELECT id, email, password_hash FROM users --`,
	`$1`, `?`, `:name`, `@x`, `E'\x27'`, `$$ OR true $$`,
}

// SearchSyntax are full-text query operators of SQLite FTS5 and
// PostgreSQL tsquery, which a search must take as plain words.
var SearchSyntax = []string{
	`secret OR walk`, `NOT walk`, `walk AND NOT river`, `NEAR(walk river)`, `NEAR(secret near, 10)`,
	`title:secret`, `{title content}: secret`, `content:*`, `secr*`, `^secret`, `"secret`, `walk"`,
	`(secret)`, `secret)`, `-walk`, `+secret`, `*`, `"" ""`, `secret | walk`, `secret & !walk`,
	`secret:*`, `secret <-> walk`, `!!secret`, `walk:A`, `'secret'`,
}

// AttackSQLInjection stores every injection string in every text field of
// one user's entries and tags, reads them back verbatim, and searches with
// them and with every search operator: no error but a validation one, no
// row of another user, and the other user's journal unchanged.
func AttackSQLInjection(t *testing.T, open func(t *testing.T) epicme.Store) {
	ctx := context.Background()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	alice, bob := newUser(t, s), newUser(t, s)
	if _, err := s.CreateEntry(ctx, bob.ID, epicme.NewEntry{Title: "bob secret", Content: "secret near walk river"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateEntry(ctx, alice.ID, epicme.NewEntry{Title: "alice walk", Content: "a walk near the river"}); err != nil {
		t.Fatal(err)
	}
	noBob := func(what string, p *epicme.SearchPage, err error) {
		t.Helper()
		if err != nil {
			if epicme.ErrorCode(err) != epicme.EINVALID {
				t.Fatalf("%s: %v", what, err)
			}
			return
		}
		for _, h := range p.Results {
			if strings.Contains(h.Title, "bob") {
				t.Fatalf("%s found bob's entry", what)
			}
		}
	}
	for i, x := range SQLInjections {
		e, err := s.CreateEntry(ctx, alice.ID, epicme.NewEntry{Title: x, Content: x, Mood: &x, Location: &x, Weather: &x})
		if err != nil {
			t.Fatalf("CreateEntry(%q): %v", x, err)
		}
		got, err := s.GetEntry(ctx, alice.ID, e.ID)
		if err != nil || got.Title != x || got.Content != x || *got.Mood != x || *got.Location != x || *got.Weather != x {
			t.Fatalf("entry %q came back as %+v (%v)", x, got, err)
		}
		if _, err := s.UpdateEntry(ctx, alice.ID, e.ID, epicme.EntryUpdate{Title: ptr(x + "!")}); err != nil {
			t.Fatalf("UpdateEntry(%q): %v", x, err)
		}
		name := strings.Repeat("t", i) + x[:min(len(x), 40)]
		tag, err := s.CreateTag(ctx, alice.ID, epicme.NewTag{Name: name, Description: &x})
		if err != nil {
			t.Fatalf("CreateTag(%q): %v", x, err)
		}
		if got, err := s.GetTag(ctx, alice.ID, tag.ID); err != nil || got.Name != name || *got.Description != x {
			t.Fatalf("tag %q came back as %+v (%v)", x, got, err)
		}
		p, err := s.SearchEntries(ctx, alice.ID, epicme.SearchQuery{Text: x})
		noBob("search "+x, p, err)
		if _, err := s.ListEntries(ctx, alice.ID, epicme.EntryFilter{Cursor: x}); err == nil {
			t.Fatalf("a cursor of %q was accepted", x)
		}
		if _, err := s.SearchEntries(ctx, alice.ID, epicme.SearchQuery{Text: "walk", Cursor: x}); err == nil {
			t.Fatalf("a search cursor of %q was accepted", x)
		}
		if _, err := s.LocalUserByEmail(ctx, x); epicme.ErrorCode(err) != epicme.ENOTFOUND && epicme.ErrorCode(err) != epicme.EINVALID {
			t.Fatalf("LocalUserByEmail(%q): %v", x, err)
		}
	}
	for _, q := range SearchSyntax {
		p, err := s.SearchEntries(ctx, alice.ID, epicme.SearchQuery{Text: q})
		noBob("search "+q, p, err)
	}
	// Operators are words: "walk OR river" needs the word "or" too.
	p, err := s.SearchEntries(ctx, alice.ID, epicme.SearchQuery{Text: "walk OR river"})
	noBob("walk OR river", p, err)
	if err == nil {
		for _, h := range p.Results {
			if h.Title == "alice walk" {
				t.Fatal(`"OR" was taken as an operator, not a word`)
			}
		}
	}
	bp, err := s.ListEntries(ctx, bob.ID, epicme.EntryFilter{})
	if err != nil || len(bp.Entries) != 1 || bp.Entries[0].Title != "bob secret" {
		t.Fatalf("bob's journal after the attack: %+v %v", bp, err)
	}
}
