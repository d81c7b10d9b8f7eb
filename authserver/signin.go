package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/internal/lru"
	"github.com/epicme/epicme/password"
)

// Limits on password guessing (OWASP Authentication Cheat Sheet, "Account
// Lockout"). They key on the pair (email as typed, network source) and on
// the source, never on the email alone: wrong passwords from other networks
// cannot keep an account's owner out. Sources are keyed as every other
// per-source limit is (ratelimit.Sources: an IPv6 /64 is one source).
//
// Every attempt counts in a fixed window (stored, so they hold across
// restarts and instances); failures also start an exponential backoff kept
// in memory. Attempts from sources that already failed on an email count
// towards a high ceiling for the email, which a source with no failures on
// it never meets. Keys name the email whether or not an account has it, so
// that no answer reveals which emails exist.
const (
	signInWindow          = 15 * time.Minute
	signInPerPair         = 10  // attempts per email and source per window
	signInPerSource       = 50  // attempts per source per window
	signInAccountCeiling  = 100 // attempts per email, from sources that failed on it, per window
	backoffFreeFailures   = 3   // failures of a pair after which attempts must wait
	sourceFreeFailures    = 20
	maxBackoff            = 5 * time.Minute
	maxBackoffKeys        = 10000
	passwordCheckMaxQueue = 10 * time.Second
)

// errBusy means too many password checks are running.
var errBusy = errors.New("authserver: too many password checks at once")

// passwordGate caps the password hashes computed at once: each Argon2id
// hash takes tens of MiB and a core for tens of milliseconds, so a burst of
// sign-ins must queue rather than exhaust the machine.
type passwordGate struct {
	slots  chan struct{}
	verify func(pw, hash string) (bool, error)
	params password.Params

	dummyOnce sync.Once
	dummy     string
}

func (g *passwordGate) acquire(ctx context.Context) error {
	t := time.NewTimer(passwordCheckMaxQueue)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *passwordGate) release() { <-g.slots }

// check verifies pw against hash; with hash "", it verifies against a hash
// of a random password made with the same parameters as new hashes, so
// that an unknown email costs what a wrong password costs.
func (g *passwordGate) check(ctx context.Context, pw, hash string) (bool, error) {
	real := hash != ""
	if !real {
		g.dummyOnce.Do(func() { g.dummy, _ = password.HashWith(randomToken(16), g.params) })
		hash = g.dummy
	}
	if err := g.acquire(ctx); err != nil {
		return false, err
	}
	defer g.release()
	ok, err := g.verify(pw, hash)
	return ok && real, err
}

// hash makes the hash of a new password.
func (g *passwordGate) hash(ctx context.Context, pw string) (string, error) {
	if err := g.acquire(ctx); err != nil {
		return "", err
	}
	defer g.release()
	return password.HashWith(pw, g.params)
}

// backoff remembers recent sign-in failures per key and says how long the
// next attempt must wait: nothing for the first few, then doubling from one
// second up to maxBackoff. At most maxBackoffKeys keys are kept: under a
// flood of distinct keys the least recently failing go first, and a key
// is forgotten once its window and its wait are both over.
type backoff struct {
	mu sync.Mutex // guards the failures the cache holds
	c  *lru.Cache[string, *failures]
}

type failures struct {
	n     int
	until time.Time
	last  time.Time
}

func newBackoff() *backoff { return &backoff{c: lru.New[string, *failures](maxBackoffKeys)} }

// wait returns how long key must still wait at now (0: go ahead).
func (b *backoff) wait(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.c.Get(key, now)
	if !ok || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// fail records a failure of key; after free failures, each one makes the
// next attempt wait, twice as long as the last.
func (b *backoff) fail(key string, free int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.c.Get(key, now)
	if !ok || now.Sub(f.last) > signInWindow {
		f = &failures{}
	}
	f.n++
	f.last = now
	if over := f.n - free; over >= 0 {
		d := time.Second << min(over, 20)
		f.until = now.Add(min(d, maxBackoff))
	}
	b.c.Put(key, f, maxTime(f.until, now.Add(signInWindow)))
}

func (b *backoff) reset(key string) { b.c.Remove(key) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// tooMany is the answer to a sign-in that must wait.
func tooMany(d time.Duration) string {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if secs < 90 {
		return fmt.Sprintf("Too many sign-in attempts. Wait %d seconds and try again.", secs)
	}
	return fmt.Sprintf("Too many sign-in attempts. Wait %d minutes and try again.", (secs+59)/60)
}

// serveSignIn checks an email and password against the stored Argon2id
// hash and starts a session. Without an authorization request in the form,
// the user is signing in to the account pages.
func (s *Server) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if !s.parsePageForm(w, r) {
		return
	}
	var a *authzRequest
	if r.PostForm.Get("request") != "" {
		if a = s.carriedRequest(w, r); a == nil {
			return
		}
	}
	next := accountNext(r.PostForm.Get("next"))
	ctx := r.Context()
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	pw := r.PostForm.Get("password")
	refuse := func(status int, msg string) {
		s.showSignInPage(w, r, a, status, email, msg, "", next)
	}
	if email == "" || pw == "" || len(pw) > epicme.MaxPasswordLen || len(email) > epicme.MaxEmailLen {
		refuse(http.StatusBadRequest, "Enter your email and password.")
		return
	}
	now := s.now()
	source := s.signInSource(r)
	pairKey, sourceKey := signInPairKey(email, source), "signin-source:"+source
	if d := max(s.backoff.wait(pairKey, now), s.backoff.wait(sourceKey, now)); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		refuse(http.StatusTooManyRequests, tooMany(d))
		return
	}
	if ok, err := s.countSignIn(ctx, email, pairKey, sourceKey, now); err != nil {
		s.log.ErrorContext(ctx, "counting sign-in attempts", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	} else if !ok {
		refuse(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a quarter of an hour and try again.")
		return
	}
	user, _, err := s.checkPassword(ctx, email, pw)
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "5")
		refuse(http.StatusServiceUnavailable, "The server is busy. Try again in a few seconds.")
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "checking password", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	if user == nil {
		s.backoff.fail(pairKey, backoffFreeFailures, now)
		s.backoff.fail(sourceKey, sourceFreeFailures, now)
		refuse(http.StatusUnauthorized, "The email or password is wrong.")
		return
	}
	s.backoff.reset(pairKey)
	s.store.ResetEvents(ctx, pairKey)
	if err := s.startSession(w, r, user); err != nil {
		s.log.ErrorContext(ctx, "starting a session", "err", err)
		s.showError(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	if a == nil {
		s.log.InfoContext(ctx, "user signed in", "user", user.ID)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.log.InfoContext(ctx, "user signed in", "user", user.ID, "client_id", a.client.ID)
	s.consentOrCode(w, r, a, user)
}

// signInSource is the network source sign-in limits key on: the request's
// address as Config.Sources keys it (an IPv6 address by its /64). Guessing
// passwords is limited from every source, exempt or not.
func (s *Server) signInSource(r *http.Request) string {
	key, _, _ := s.sourceKeys(r)
	return key
}

// signInPairKey is the key of the limits of one email from one source.
func signInPairKey(email, source string) string {
	return "signin:" + source + " " + email
}

// countSignIn counts one sign-in attempt and reports whether it may go
// ahead: within the pair's and the source's windows and, when the pair has
// attempts before this one in its window (which a success clears), within
// the email's ceiling.
func (s *Server) countSignIn(ctx context.Context, email, pairKey, sourceKey string, now time.Time) (bool, error) {
	pair, err := s.store.CountEvent(ctx, pairKey, signInWindow, now)
	if err != nil || pair > signInPerPair {
		return false, err
	}
	if n, err := s.store.CountEvent(ctx, sourceKey, signInWindow, now); err != nil || n > signInPerSource {
		return false, err
	}
	if pair == 1 {
		return true, nil
	}
	n, err := s.store.CountEvent(ctx, "signin-account:"+email, signInWindow, now)
	return err == nil && n <= signInAccountCeiling, err
}

// accountNext is where a sign-in without an authorization request goes:
// one of the account pages, never an address from the form.
func accountNext(v string) string {
	if v == AppsPath {
		return AppsPath
	}
	return AccountPath
}

// checkPassword returns the enabled local user with this email and
// password, with their password hash, or a nil user. An unknown email, a
// disabled account and an account without a password cost one hash check,
// as a wrong password does, and get the same answer.
func (s *Server) checkPassword(ctx context.Context, email, pw string) (*epicme.User, string, error) {
	user, err := s.users.LocalUserByEmail(ctx, email)
	if err != nil && epicme.ErrorCode(err) != epicme.ENOTFOUND {
		return nil, "", err
	}
	hash := ""
	if err == nil && !user.Disabled {
		if hash, err = s.users.PasswordHash(ctx, user.ID); err != nil {
			return nil, "", err
		}
	}
	ok, err := s.passwords.check(ctx, pw, hash)
	if err != nil && !errors.Is(err, password.ErrMalformed) {
		return nil, "", err
	}
	if !ok {
		return nil, "", nil
	}
	return user, hash, nil
}
