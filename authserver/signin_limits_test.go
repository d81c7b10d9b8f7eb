package authserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
)

// signInFrom submits the sign-in form of page as if from xff (through a
// trusted proxy).
func (b *browser) signInFrom(xff, page, email, pw string) reply {
	b.e.t.Helper()
	f := formFields(b.e.t, page)
	f.Set("email", email)
	f.Set("password", pw)
	req, _ := http.NewRequest(http.MethodPost, b.e.issuer+authserver.SignInPath, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", xff)
	return do(b.e.t, b.client, req)
}

// Wrong passwords for an account from many networks must not keep its
// owner out: a right password from a network that has not failed goes
// through (OWASP Authentication Cheat Sheet, "Account Lockout").
func TestAttack_SignInLockoutFromManySources(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	for i := range 10 {
		if r := b.signInFrom(fmt.Sprintf("198.51.100.%d", i+1), page, testEmail, "a wrong guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, r.status)
		}
	}
	if r := b.signInFrom("203.0.113.7", page, testEmail, testPassword); r.status != http.StatusOK || !strings.Contains(r.body, `name="decision"`) {
		t.Fatalf("the owner from a network without failures: %d %s", r.status, alertText.FindString(r.body))
	}
}

// A network that guesses one account's password waits, even with the
// right password, and rotating addresses within one IPv6 /64 does not
// make a new source.
func TestRule_SignInThrottledPerAccountAndSource(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	for i := range 3 {
		b.signInFrom(fmt.Sprintf("2001:db8:5:1::%x", i+1), page, testEmail, "a wrong guess")
	}
	if r := b.signInFrom("2001:db8:5:1::99", page, testEmail, testPassword); r.status != http.StatusTooManyRequests {
		t.Fatalf("the right password from the guessing /64: %d", r.status)
	}
	if r := b.signInFrom("2001:db8:5:2::1", page, testEmail, testPassword); r.status != http.StatusOK {
		t.Fatalf("the right password from another /64: %d", r.status)
	}
}

// One network guessing many accounts meets the per-source limit.
func TestRule_SignInThrottledPerSource(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	var r reply
	for i := range 21 {
		r = b.signInFrom("198.51.100.9", page, fmt.Sprintf("user%d@example.com", i), "a wrong guess")
	}
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("the 21st failure from one source: %d", r.status)
	}
	if r := b.signInFrom("198.51.100.9", page, testEmail, testPassword); r.status != http.StatusTooManyRequests {
		t.Fatalf("the guessing source signing in to a fresh account: %d", r.status)
	}
}

// Many networks that keep guessing one account meet its ceiling: a network
// that already failed on it waits out the window, while one that has not
// still signs in.
func TestRule_SignInAccountCeilingSparesFreshSources(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.SourceAddress = authserver.ForwardedFor })
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	for i := range 51 {
		for range 3 {
			b.signInFrom(fmt.Sprintf("198.51.%d.1", i), page, testEmail, "a wrong guess")
		}
	}
	e.clock.Advance(10 * time.Second) // past every pair's backoff
	if r := b.signInFrom("198.51.0.1", page, testEmail, testPassword); r.status != http.StatusTooManyRequests {
		t.Fatalf("a failing source over the account's ceiling: %d", r.status)
	}
	if r := b.signInFrom("203.0.113.7", page, testEmail, testPassword); r.status != http.StatusOK {
		t.Fatalf("a fresh source over the account's ceiling: %d", r.status)
	}
}
