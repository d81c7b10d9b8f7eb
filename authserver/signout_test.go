package authserver_test

import (
	"context"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// copyOf returns a new browser holding a copy of b's cookies: what an
// attacker who stole them holds.
func copyOf(b *testserver.Agent) *testserver.Agent {
	issuer, _ := url.Parse(b.Env.Issuer)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(issuer, b.Client.Jar.Cookies(issuer))
	c := b.Env.Agent()
	c.Client.Jar = jar
	return c
}

func signedInTo(b *testserver.Agent) bool {
	r := b.Get(b.Env.Issuer + authserver.AppsPath)
	return strings.Contains(r.Body, testserver.Email) && !strings.Contains(r.Body, `name="password"`)
}

// Signing out ends the session on the server: a copy of the session
// cookie taken before stops working too.
func TestAttack_CopiedSessionCookieAfterSignOut(t *testing.T) {
	e := testserver.NewEnv(t)
	b, csrf := signedIn(e)
	stolen := copyOf(b)
	if !signedInTo(stolen) {
		t.Fatal("the copied cookie should work before the sign-out")
	}
	if r := b.Post(authserver.SignOutPath, url.Values{"csrf": {csrf}}); !strings.Contains(r.Body, "signed out") {
		t.Fatalf("sign out: %d", r.Status)
	}
	if signedInTo(stolen) {
		t.Fatal("a copy of the session cookie still opens the connected apps after signing out")
	}
}

// Disabling an account and resetting its password from outside the pages
// (the operator's commands) end its sessions on the server.
func TestRule_SessionsEndOnDisableAndPasswordReset(t *testing.T) {
	e := testserver.NewEnv(t)
	ctx := context.Background()
	u, err := e.DB.LocalUserByEmail(ctx, testserver.Email)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signedIn(e)
	if err := e.DB.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := authserver.EndUserSessions(ctx, e.DB, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.SetUserDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if signedInTo(b) {
		t.Fatal("a session of a disabled account came back when it was enabled again")
	}
	b, _ = signedIn(e)
	hash, _ := e.DB.PasswordHash(ctx, u.ID)
	if err := e.DB.SetPasswordHash(ctx, u.ID, hash); err != nil { // the same password, set again by the operator
		t.Fatal(err)
	}
	if err := authserver.EndUserSessions(ctx, e.DB, u.ID); err != nil {
		t.Fatal(err)
	}
	if signedInTo(b) {
		t.Fatal("a session outlived a password reset")
	}
}

// A session lasts SessionTTL, however it is used.
func TestRule_SessionLifetimeIsBounded(t *testing.T) {
	e := testserver.NewEnv(t)
	b, _ := signedIn(e)
	e.Clock.Advance(12*time.Hour - time.Minute)
	if !signedInTo(b) {
		t.Fatal("signed out before the session's lifetime")
	}
	e.Clock.Advance(2 * time.Minute)
	if signedInTo(b) {
		t.Fatal("still signed in after the session's lifetime")
	}
}
