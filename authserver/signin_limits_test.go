package authserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// signInFrom submits the sign-in form of page as if from xff (through a
// trusted proxy).
func signInFrom(b *testserver.Agent, xff, page, email, pw string) testserver.Reply {
	b.Env.TB.Helper()
	f := testserver.FormFields(b.Env.TB, page)
	f.Set("email", email)
	f.Set("password", pw)
	req, _ := http.NewRequest(http.MethodPost, b.Env.Issuer+authserver.SignInPath, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", xff)
	return testserver.Do(b.Env.TB, b.Client, req)
}

// Wrong passwords for an account from many networks must not keep its
// owner out: a right password from a network that has not failed goes
// through (OWASP Authentication Cheat Sheet, "Account Lockout").
func TestAttack_SignInLockoutFromManySources(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	for i := range 10 {
		if r := signInFrom(b, fmt.Sprintf("198.51.100.%d", i+1), page, testserver.Email, "a wrong guess"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, r.Status)
		}
	}
	if r := signInFrom(b, "203.0.113.7", page, testserver.Email, testserver.Password); r.Status != http.StatusOK || !strings.Contains(r.Body, `name="decision"`) {
		t.Fatalf("the owner from a network without failures: %d %s", r.Status, alertText.FindString(r.Body))
	}
}

// A network that guesses one account's password waits, even with the
// right password, and rotating addresses within one IPv6 /64 does not
// make a new source.
func TestRule_SignInThrottledPerAccountAndSource(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	for i := range 3 {
		signInFrom(b, fmt.Sprintf("2001:db8:5:1::%x", i+1), page, testserver.Email, "a wrong guess")
	}
	if r := signInFrom(b, "2001:db8:5:1::99", page, testserver.Email, testserver.Password); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the right password from the guessing /64: %d", r.Status)
	}
	if r := signInFrom(b, "2001:db8:5:2::1", page, testserver.Email, testserver.Password); r.Status != http.StatusOK {
		t.Fatalf("the right password from another /64: %d", r.Status)
	}
}

// One network guessing many accounts meets the per-source limit.
func TestRule_SignInThrottledPerSource(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	var r testserver.Reply
	for i := range 21 {
		r = signInFrom(b, "198.51.100.9", page, fmt.Sprintf("user%d@example.com", i), "a wrong guess")
	}
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("the 21st failure from one source: %d", r.Status)
	}
	if r := signInFrom(b, "198.51.100.9", page, testserver.Email, testserver.Password); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the guessing source signing in to a fresh account: %d", r.Status)
	}
}

// Many networks that keep guessing one account meet its ceiling: a network
// that already failed on it waits out the window, while one that has not
// still signs in.
func TestRule_SignInAccountCeilingSparesFreshSources(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	for i := range 51 {
		for range 3 {
			signInFrom(b, fmt.Sprintf("198.51.%d.1", i), page, testserver.Email, "a wrong guess")
		}
	}
	e.Clock.Advance(10 * time.Second) // past every pair's backoff
	if r := signInFrom(b, "198.51.0.1", page, testserver.Email, testserver.Password); r.Status != http.StatusTooManyRequests {
		t.Fatalf("a failing source over the account's ceiling: %d", r.Status)
	}
	if r := signInFrom(b, "203.0.113.7", page, testserver.Email, testserver.Password); r.Status != http.StatusOK {
		t.Fatalf("a fresh source over the account's ceiling: %d", r.Status)
	}
}
