package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/epicme/epicme"
)

func testUsers(t *testing.T, open opener) {
	ctx := context.Background()

	t.Run("LocalAccountRoundTrip", func(t *testing.T) {
		s := open(t)
		u, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: " Alice@Example.COM ", PasswordHash: "hash-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(u.ID) < 16 {
			t.Fatalf("user id %q is too short to be unguessable", u.ID)
		}
		if u.Subject != u.ID {
			t.Fatalf("local account subject = %q, want its id %q", u.Subject, u.ID)
		}
		if u.Email != "alice@example.com" {
			t.Fatalf("email = %q, want it trimmed and lower-cased", u.Email)
		}
		if u.CreatedAt.IsZero() || u.CreatedAt.Location().String() != "UTC" {
			t.Fatalf("createdAt = %v, want a UTC time", u.CreatedAt)
		}
		got, err := s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "UserByID", got, u)
		got, err = s.UserByIdentity(ctx, epicme.LocalIssuer, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "UserByIdentity", got, u)
		got, err = s.LocalUserByEmail(ctx, "ALICE@example.com")
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "LocalUserByEmail (other case)", got, u)
		h, err := s.PasswordHash(ctx, u.ID)
		if err != nil || h != "hash-1" {
			t.Fatalf("PasswordHash = %q, %v", h, err)
		}
		if err := s.SetPasswordHash(ctx, u.ID, "hash-2"); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.PasswordHash(ctx, u.ID); h != "hash-2" {
			t.Fatalf("PasswordHash after SetPasswordHash = %q", h)
		}
	})

	t.Run("MissingUserIsNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.UserByID(ctx, "nosuchuser")
		wantCode(t, err, epicme.ENOTFOUND)
		_, err = s.UserByIdentity(ctx, "https://idp.example", "nobody")
		wantCode(t, err, epicme.ENOTFOUND)
		_, err = s.LocalUserByEmail(ctx, "nobody@example.com")
		wantCode(t, err, epicme.ENOTFOUND)
		_, err = s.PasswordHash(ctx, "nosuchuser")
		wantCode(t, err, epicme.ENOTFOUND)
		wantCode(t, s.SetPasswordHash(ctx, "nosuchuser", "x"), epicme.ENOTFOUND)
	})

	t.Run("LocalEmailIsUniqueAmongLocalAccountsOnly", func(t *testing.T) {
		s := open(t)
		if _, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bob@example.com"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "BOB@example.com"})
		wantCode(t, err, epicme.ECONFLICT)
		ext, err := s.CreateUser(ctx, epicme.NewUser{Issuer: "https://idp.example", Subject: "bob", Email: "bob@example.com"})
		if err != nil {
			t.Fatalf("an external account may share a local account's email: %v", err)
		}
		got, err := s.LocalUserByEmail(ctx, "bob@example.com")
		if err != nil || got.ID == ext.ID {
			t.Fatalf("LocalUserByEmail returned %+v, %v: it must never match an external account", got, err)
		}
	})

	t.Run("IssuerSubjectIsUnique", func(t *testing.T) {
		s := open(t)
		in := epicme.NewUser{Issuer: "https://idp.example", Subject: "sub-1"}
		if _, err := s.CreateUser(ctx, in); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateUser(ctx, in)
		wantCode(t, err, epicme.ECONFLICT)
		other, err := s.CreateUser(ctx, epicme.NewUser{Issuer: "https://other.example", Subject: "sub-1"})
		if err != nil {
			t.Fatalf("the same subject at another issuer is another user: %v", err)
		}
		if other.Issuer != "https://other.example" {
			t.Fatalf("issuer = %q", other.Issuer)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		s := open(t)
		_, err := s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer})
		wantInvalid(t, err, "email")
		_, err = s.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "not-an-email"})
		wantInvalid(t, err, "email")
		_, err = s.CreateUser(ctx, epicme.NewUser{Issuer: "https://idp.example"})
		wantInvalid(t, err, "subject")
		users, err := s.ListUsers(ctx)
		if err != nil || len(users) != 0 {
			t.Fatalf("invalid users were stored: %v, %v", users, err)
		}
	})

	t.Run("EnsureUserCreatesOnceAndIgnoresEmail", func(t *testing.T) {
		s := open(t)
		u1, err := s.EnsureUser(ctx, "https://idp.example", "sub-9", "first@example.com")
		if err != nil {
			t.Fatal(err)
		}
		u2, err := s.EnsureUser(ctx, "https://idp.example", "sub-9", "changed@example.com")
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "second EnsureUser", u2, u1)
		if u1.Email != "first@example.com" {
			t.Fatalf("email = %q, want the one recorded at creation", u1.Email)
		}
		u3, err := s.EnsureUser(ctx, "https://other.example", "sub-9", "first@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u3.ID == u1.ID {
			t.Fatal("EnsureUser linked two issuers' users by email")
		}
	})

	t.Run("EnsureUserConcurrentCallersGetOneUser", func(t *testing.T) {
		s := open(t)
		const n = 16
		var wg sync.WaitGroup
		got := make([]*epicme.User, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = s.EnsureUser(ctx, "https://idp.example", "racer", "")
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if got[i].ID != got[0].ID {
				t.Fatalf("caller %d got user %s, caller 0 got %s", i, got[i].ID, got[0].ID)
			}
		}
		users, err := s.ListUsers(ctx)
		if err != nil || len(users) != 1 {
			t.Fatalf("ListUsers = %d users, %v; want 1", len(users), err)
		}
	})

	t.Run("ListUsersOldestFirst", func(t *testing.T) {
		s := open(t)
		var want []string
		for range 5 {
			want = append(want, newUser(t, s).ID)
		}
		users, err := s.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		seen := map[string]bool{}
		for _, u := range users {
			got = append(got, u.ID)
			if seen[u.ID] {
				t.Fatalf("user id %s repeats", u.ID)
			}
			seen[u.ID] = true
		}
		equal(t, "ListUsers ids", got, want)
	})
}
