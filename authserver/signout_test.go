package authserver_test

import (
	"context"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
)

// copyOf returns a new browser holding a copy of b's cookies: what an
// attacker who stole them holds.
func (b *browser) copyOf() *browser {
	issuer, _ := url.Parse(b.e.issuer)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(issuer, b.client.Jar.Cookies(issuer))
	c := b.e.browser()
	c.client.Jar = jar
	return c
}

func signedInTo(b *browser) bool {
	r := b.get(b.e.issuer + authserver.AppsPath)
	return strings.Contains(r.body, testEmail) && !strings.Contains(r.body, `name="password"`)
}

// Signing out ends the session on the server: a copy of the session
// cookie taken before stops working too.
func TestAttack_CopiedSessionCookieAfterSignOut(t *testing.T) {
	e := newEnv(t)
	b, csrf := e.signedIn()
	stolen := b.copyOf()
	if !signedInTo(stolen) {
		t.Fatal("the copied cookie should work before the sign-out")
	}
	if r := b.post(authserver.SignOutPath, url.Values{"csrf": {csrf}}); !strings.Contains(r.body, "signed out") {
		t.Fatalf("sign out: %d", r.status)
	}
	if signedInTo(stolen) {
		t.Fatal("a copy of the session cookie still opens the connected apps after signing out")
	}
}

// Disabling an account and resetting its password from outside the pages
// (the operator's commands) end its sessions on the server.
func TestRule_SessionsEndOnDisableAndPasswordReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, err := e.db.LocalUserByEmail(ctx, testEmail)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.signedIn()
	if err := e.db.SetUserDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := authserver.EndUserSessions(ctx, e.db, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetUserDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if signedInTo(b) {
		t.Fatal("a session of a disabled account came back when it was enabled again")
	}
	b, _ = e.signedIn()
	hash, _ := e.db.PasswordHash(ctx, u.ID)
	if err := e.db.SetPasswordHash(ctx, u.ID, hash); err != nil { // the same password, set again by the operator
		t.Fatal(err)
	}
	if err := authserver.EndUserSessions(ctx, e.db, u.ID); err != nil {
		t.Fatal(err)
	}
	if signedInTo(b) {
		t.Fatal("a session outlived a password reset")
	}
}

// A session lasts SessionTTL, however it is used.
func TestRule_SessionLifetimeIsBounded(t *testing.T) {
	e := newEnv(t)
	b, _ := e.signedIn()
	e.clock.Advance(12*time.Hour - time.Minute)
	if !signedInTo(b) {
		t.Fatal("signed out before the session's lifetime")
	}
	e.clock.Advance(2 * time.Minute)
	if signedInTo(b) {
		t.Fatal("still signed in after the session's lifetime")
	}
}
