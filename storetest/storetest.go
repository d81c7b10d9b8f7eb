// Package storetest is the contract every epicme.Store must keep. A storage
// package runs it from its own tests against fresh databases:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) epicme.Store { return MustOpenDB(t) })
//	}
//
// The suite speaks only through the epicme.Store interface, so the SQLite
// and PostgreSQL stores are held to the same rules: per-user scoping of every
// method (another user's row answers exactly like a missing one), per-user id
// numbering, uniqueness, cascades, keyset paging, filters, full-text search,
// idempotent linking, validation, and no partial writes; and MCP sessions
// (epicme.SessionStore).
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/epicme/epicme"
)

// Run runs the whole contract as subtests. open returns an empty store; it is
// called once per subtest and the store is closed when the subtest ends
// (open may also register its own cleanup).
func Run(t *testing.T, open func(t *testing.T) epicme.Store) {
	fresh := func(t *testing.T) epicme.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Users", func(t *testing.T) { testUsers(t, fresh) })
	t.Run("Entries", func(t *testing.T) { testEntries(t, fresh) })
	t.Run("Tags", func(t *testing.T) { testTags(t, fresh) })
	t.Run("ListEntries", func(t *testing.T) { testList(t, fresh) })
	t.Run("Search", func(t *testing.T) { testSearch(t, fresh) })
	t.Run("Scoping", func(t *testing.T) { testScoping(t, fresh) })
	t.Run("IsolationProperty", func(t *testing.T) { testIsolationProperty(t, fresh(t)) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, fresh) })
	t.Run("UserLifecycle", func(t *testing.T) { testUserLifecycle(t, fresh) })
	t.Run("Text", func(t *testing.T) { testText(t, fresh) })
	t.Run("BulkInsert", func(t *testing.T) { testBulkInsert(t, fresh) })
	t.Run("Quota", func(t *testing.T) { testQuota(t, fresh) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, fresh) })
}

type opener = func(t *testing.T) epicme.Store

// newUser creates a local account with a random email.
func newUser(t tb, s epicme.Store) *epicme.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), epicme.NewUser{
		Issuer: epicme.LocalIssuer,
		Email:  "u" + strings.ToLower(rand.Text()[:10]) + "@example.com",
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// wantCode fails unless err carries the application error code.
func wantCode(t tb, err error, code string) {
	t.Helper()
	if got := epicme.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// wantError fails unless err has the code and exactly the client message.
func wantError(t tb, err error, code, message string) {
	t.Helper()
	wantCode(t, err, code)
	if got := epicme.ErrorMessage(err); got != message {
		t.Fatalf("error message = %q, want %q", got, message)
	}
}

// wantInvalid fails unless err is EINVALID about field.
func wantInvalid(t tb, err error, field string) {
	t.Helper()
	wantCode(t, err, epicme.EINVALID)
	e, _ := err.(*epicme.Error)
	if e == nil || e.Field != field {
		t.Fatalf("EINVALID field = %+v, want %q", e, field)
	}
	if !strings.Contains(strings.ToLower(e.Message), strings.ToLower(strings.TrimSuffix(field, "s"))) {
		t.Fatalf("EINVALID message %q does not name the field %q", e.Message, field)
	}
}

func entryNotFound(id int64) string { return fmt.Sprintf("Entry with ID %q not found", fmt.Sprint(id)) }
func tagNotFound(id int64) string   { return fmt.Sprintf("Tag ID %q not found", fmt.Sprint(id)) }

func mustEntry(t tb, s epicme.Store, userID string, in epicme.NewEntry) *epicme.Entry {
	t.Helper()
	e, err := s.CreateEntry(context.Background(), userID, in)
	if err != nil {
		t.Fatalf("CreateEntry(%q): %v", in.Title, err)
	}
	return e
}

func mustTag(t tb, s epicme.Store, userID, name string) *epicme.Tag {
	t.Helper()
	tag, err := s.CreateTag(context.Background(), userID, epicme.NewTag{Name: name})
	if err != nil {
		t.Fatalf("CreateTag(%q): %v", name, err)
	}
	return tag
}

func equal(t tb, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %s\n want %s", what, dump(got), dump(want))
	}
}

func dump(v any) string {
	switch v := v.(type) {
	case *epicme.Entry:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v mood=%v loc=%v weather=%v", *v, deref(v.Mood), deref(v.Location), deref(v.Weather))
	case *epicme.Tag:
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v desc=%v", *v, deref(v.Description))
	}
	return fmt.Sprintf("%+v", v)
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", *p)
}

// listAll pages through every entry of the user matching f.
func listAll(t tb, s epicme.Store, userID string, f epicme.EntryFilter) []epicme.EntrySummary {
	t.Helper()
	var all []epicme.EntrySummary
	for i := 0; ; i++ {
		page, err := s.ListEntries(context.Background(), userID, f)
		if err != nil {
			t.Fatalf("ListEntries: %v", err)
		}
		all = append(all, page.Entries...)
		if page.NextCursor == "" {
			return all
		}
		if i > 10000 {
			t.Fatal("ListEntries never ends")
		}
		f.Cursor = page.NextCursor
	}
}

func ids[T any](xs []T, id func(T) int64) []int64 {
	out := make([]int64, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func summaryID(s epicme.EntrySummary) int64 { return s.ID }
func hitID(h epicme.SearchHit) int64        { return h.ID }
func tagRefID(r epicme.TagRef) int64        { return r.ID }

// tb is the part of testing.TB the helpers use; *rapid.T has it too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
