package authserver_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/password"
)

// signedIn returns a browser signed in as the test user, and the CSRF token
// of its forms.
func (e *env) signedIn() (*browser, string) {
	e.t.Helper()
	b := e.browser()
	page := b.get(e.issuer + authserver.AccountPath)
	r := b.signIn(page.body, testEmail, testPassword)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Your account") {
		e.t.Fatalf("sign-in to the account page: %d\n%s", r.status, r.body)
	}
	return b, html.UnescapeString(csrfField.FindStringSubmatch(r.body)[1])
}

func TestRule_AccountFormsRequireCSRFToken(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	b, csrf := e.signedIn()
	forms := map[string]url.Values{
		authserver.AccountDeletePath:   {"confirm_email": {testEmail}, "password": {testPassword}},
		authserver.AccountPasswordPath: {"current": {testPassword}, "new": {"a new long password"}, "confirm": {"a new long password"}},
		authserver.AccountExportPath:   {"format": {"json"}},
		authserver.AppsRevokePath:      {"client_id": {"x"}},
		authserver.SignOutPath:         {},
		authserver.SignUpPath:          {"email": {"eve@example.com"}, "password": {"eve's password"}, "confirm": {"eve's password"}},
	}
	for path, f := range forms {
		for _, token := range []string{"", "forged", csrf + "x"} {
			g := url.Values{}
			for k, v := range f {
				g[k] = v
			}
			if token != "" {
				g.Set("csrf", token)
			}
			if r := b.post(path, g); r.status != http.StatusForbidden {
				t.Errorf("POST %s with CSRF token %q: %d, want 403", path, token, r.status)
			}
		}
	}
	// Nothing happened: same account, same password, still signed in, no
	// new account.
	if r := b.get(e.issuer + authserver.AccountPath); !strings.Contains(r.body, "Your account") {
		t.Fatalf("still signed in: %d", r.status)
	}
	if _, err := e.db.LocalUserByEmail(context.Background(), "eve@example.com"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a forged sign-up created an account: %v", err)
	}
	fresh := e.browser()
	if r := fresh.signIn(fresh.get(e.issuer+authserver.AccountPath).body, testEmail, testPassword); r.status != http.StatusOK {
		t.Fatalf("the password must not have changed: %d", r.status)
	}
}

var inlineStyleOrScript = regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=`)

func TestRule_EveryPageHasStrictHeadersAndCannotBeFramed(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	c := e.publicClient()
	_, ch := pkce()
	b, _ := e.signedIn()
	pages := map[string]string{
		"consent":      e.authzURL(c, ch, nil),
		"account":      e.issuer + authserver.AccountPath,
		"apps":         e.issuer + authserver.AppsPath,
		"sign-in":      e.issuer + authserver.AuthorizePath + "?" + strings.SplitN(e.authzURL(c, ch, nil), "?", 2)[1],
		"sign-up":      e.issuer + authserver.SignUpPath,
		"error":        e.issuer + authserver.AuthorizePath + "?client_id=nobody",
		"sign-in-only": e.issuer + authserver.AppsPath,
	}
	for name, u := range pages {
		br := b
		if name == "sign-in" || name == "sign-in-only" || name == "sign-up" {
			br = e.browser()
		}
		r := br.get(u)
		h := r.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", name, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q allows too much", name, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", name, h)
		}
		if m := inlineStyleOrScript.FindString(r.body); m != "" {
			t.Errorf("%s: the page has inline code or style (%q), which the CSP blocks", name, m)
		}
		if !strings.Contains(r.body, `<link rel="stylesheet" href="`+authserver.StylePath+`">`) {
			t.Errorf("%s: no stylesheet link", name)
		}
		// Only the pages of an authorization may post (and so redirect)
		// to the client.
		toClient := strings.Contains(csp, "http://127.0.0.1:9999")
		if want := name == "consent" || name == "sign-in"; toClient != want {
			t.Errorf("%s: CSP %q: form-action to the client's redirect URI %v, want %v", name, csp, toClient, want)
		}
	}
	st := e.get(authserver.StylePath)
	if st.status != http.StatusOK || !strings.HasPrefix(st.header.Get("Content-Type"), "text/css") || !strings.Contains(st.body, "body{") {
		t.Fatalf("stylesheet: %d %v", st.status, st.header)
	}
}

func TestRule_ConsentForOneClientCannotApproveAnother(t *testing.T) {
	e := newEnv(t)
	a, bc := e.publicClient(), e.confidentialClient()
	_, ch := pkce()
	b := e.browser()
	pageA := b.signIn(b.get(e.authzURL(a, ch, nil)).body, testEmail, testPassword).body
	pageB := b.get(e.authzURL(bc, ch, nil)).body
	if !strings.Contains(pageB, `name="decision"`) {
		t.Fatalf("client B's consent page: %s", pageB)
	}
	// A's answer (CSRF token and consent token) carried over to B's request.
	f := formFields(t, pageA)
	f.Set("request", formFields(t, pageB).Get("request"))
	f.Set("decision", "allow")
	f["scope"] = []string{epicme.ScopeEntriesRead}
	if r := b.post(authserver.ConsentPath, f); r.status != http.StatusForbidden || r.header.Get("Location") != "" {
		t.Fatalf("A's consent replayed for B: %d, Location %q", r.status, r.header.Get("Location"))
	}
	if _, err := e.db.Consent(context.Background(), e.user.ID, bc.id); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("B got a consent: %v", err)
	}
	// Another user's session cannot use A's form either.
	hash, _ := password.HashWith("mallory's password", testParams)
	if _, err := e.db.CreateUser(context.Background(), epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "mallory@example.com", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	m := e.browser()
	m.signIn(m.get(e.authzURL(a, ch, nil)).body, "mallory@example.com", "mallory's password")
	g := formFields(t, pageA)
	g.Set("decision", "allow")
	g.Set("csrf", formFields(t, m.get(e.authzURL(a, ch, nil)).body).Get("csrf"))
	if r := m.post(authserver.ConsentPath, g); r.status != http.StatusForbidden {
		t.Fatalf("alice's consent form posted in mallory's session: %d", r.status)
	}
	// B's own form still works.
	if q := location(t, b.consent(pageB), bc.redirect); q.Get("code") == "" {
		t.Fatalf("B's own consent: %v", q)
	}
}

// countingVerifier wraps password.Verify, counting calls, the hashes
// checked and the most that ran at once.
type countingVerifier struct {
	calls, inFlight, maxInFlight atomic.Int32
	mu                           sync.Mutex
	hashes                       []string
	delay                        time.Duration
}

func (v *countingVerifier) verify(pw, hash string) (bool, error) {
	v.calls.Add(1)
	n := v.inFlight.Add(1)
	defer v.inFlight.Add(-1)
	for {
		m := v.maxInFlight.Load()
		if n <= m || v.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	v.mu.Lock()
	v.hashes = append(v.hashes, hash)
	v.mu.Unlock()
	if v.delay > 0 {
		time.Sleep(v.delay)
	}
	ok, _, err := password.Verify(pw, hash)
	return ok, err
}

var alertText = regexp.MustCompile(`role="alert">([^<]*)<`)

func TestRule_SignInDoesNotRevealWhichEmailsExist(t *testing.T) {
	v := &countingVerifier{}
	e := newEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify })
	ctx := context.Background()
	hash, _ := password.HashWith(testPassword, testParams)
	dis, _ := e.db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "disabled@example.com", PasswordHash: hash})
	if err := e.db.SetUserDisabled(ctx, dis.ID, true); err != nil {
		t.Fatal(err)
	}
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	type answer struct {
		status int
		alert  string
	}
	try := func(email, pw string) answer {
		before := v.calls.Load()
		r := b.signIn(page, email, pw)
		if n := v.calls.Load() - before; n != 1 {
			t.Errorf("sign-in as %s checked %d password hashes, want exactly 1", email, n)
		}
		m := alertText.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("sign-in as %s: no alert (%d)", email, r.status)
		}
		return answer{r.status, m[1]}
	}
	wrong := try(testEmail, "not the password")
	for _, email := range []string{"nobody@example.com", "disabled@example.com"} {
		if got := try(email, testPassword); got != wrong {
			t.Errorf("sign-in as %s answered %+v; a wrong password answers %+v", email, got, wrong)
		}
	}
	// The unknown email's hash has the parameters of real ones, so it
	// costs the same (measured by BenchmarkSignInUnknownEmailVersusWrongPassword).
	prefix := func(h string) string { return h[:strings.LastIndex(h[:strings.LastIndex(h, "$")], "$")] }
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, h := range v.hashes {
		if prefix(h) != prefix(hash) {
			t.Errorf("checked a hash with parameters %q, real hashes have %q", prefix(h), prefix(hash))
		}
	}
}

func TestRule_SignInBacksOffAlikeForKnownAndUnknownEmails(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	statuses := func(email string) []int {
		var out []int
		for range 5 {
			out = append(out, b.signIn(page, email, "not the password").status)
		}
		return out
	}
	known, unknown := statuses(testEmail), statuses("nobody@example.com")
	want := []int{401, 401, 401, 429, 429}
	for i := range want {
		if known[i] != want[i] || unknown[i] != want[i] {
			t.Fatalf("statuses: known %v, unknown %v, want both %v", known, unknown, want)
		}
	}
	r := b.signIn(page, testEmail, testPassword)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Wait") {
		t.Fatalf("the right password during the backoff: %d", r.status)
	}
	e.clock.Advance(3 * time.Second)
	if r := b.signIn(page, testEmail, testPassword); r.status != http.StatusOK {
		t.Fatalf("after the backoff: %d", r.status)
	}
}

func TestRule_ConcurrentPasswordChecksAreCapped(t *testing.T) {
	v := &countingVerifier{delay: 30 * time.Millisecond}
	e := newEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify; c.MaxPasswordChecks = 2 })
	c := e.publicClient()
	_, ch := pkce()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.browser()
			page := b.get(e.authzURL(c, ch, nil)).body
			b.signIn(page, "user"+string(rune('a'+i))+"@example.com", "whatever password")
		}()
	}
	wg.Wait()
	if v.calls.Load() != 8 || v.maxInFlight.Load() > 2 {
		t.Fatalf("%d checks, at most %d at once; want 8, at most 2", v.calls.Load(), v.maxInFlight.Load())
	}
}

func TestRule_PasswordChangeEndsOtherSessions(t *testing.T) {
	e := newEnv(t)
	b1, csrf := e.signedIn()
	b2, _ := e.signedIn()
	r := b1.post(authserver.AccountPasswordPath, url.Values{"csrf": {csrf}, "current": {testPassword}, "new": {"a brand new password"}, "confirm": {"a brand new password"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, "Your password is changed") {
		t.Fatalf("change password: %d\n%s", r.status, r.body)
	}
	if r := b2.get(e.issuer + authserver.AccountPath); !strings.Contains(r.body, `name="password"`) || strings.Contains(r.body, "Your account") {
		t.Fatal("the other browser is still signed in after the password changed")
	}
	if r := b1.get(e.issuer + authserver.AccountPath); !strings.Contains(r.body, "Your account") {
		t.Fatal("the browser that changed the password should stay signed in")
	}
	// A wrong current password changes nothing.
	r = b1.post(authserver.AccountPasswordPath, url.Values{"csrf": {csrf}, "current": {"wrong"}, "new": {"another password"}, "confirm": {"another password"}})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("change with a wrong current password: %d", r.status)
	}
	// Sign out ends the session.
	if r := b1.post(authserver.SignOutPath, url.Values{"csrf": {csrf}}); r.status != http.StatusOK || !strings.Contains(r.body, "signed out") {
		t.Fatalf("sign out: %d", r.status)
	}
	if r := b1.get(e.issuer + authserver.AppsPath); !strings.Contains(r.body, `name="password"`) {
		t.Fatal("still signed in after signing out")
	}
}

func TestRule_SignUpOffUnlessAllowed(t *testing.T) {
	e := newEnv(t)
	if r := e.browser().get(e.issuer + authserver.SignUpPath); r.status != http.StatusNotFound {
		t.Fatalf("sign-up without AllowSignUp: %d", r.status)
	}
	c := e.publicClient()
	_, ch := pkce()
	if r := e.browser().get(e.authzURL(c, ch, nil)); strings.Contains(r.body, authserver.SignUpPath) {
		t.Fatal("the sign-in page links to a sign-up that is off")
	}
}

func TestRule_AccountDeletionNeedsEmailAndPassword(t *testing.T) {
	e := newEnv(t)
	b, csrf := e.signedIn()
	for _, f := range []url.Values{
		{"confirm_email": {"someone@example.com"}, "password": {testPassword}},
		{"confirm_email": {testEmail}, "password": {"wrong"}},
	} {
		f.Set("csrf", csrf)
		if r := b.post(authserver.AccountDeletePath, f); r.status == http.StatusOK {
			t.Fatalf("deletion with %v: %d", f, r.status)
		}
	}
	if _, err := e.db.UserByID(context.Background(), e.user.ID); err != nil {
		t.Fatalf("the account must still exist: %v", err)
	}
}

func TestRule_ConnectedAppsShowWhenAGrantWasLastUsed(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	tok := e.tokens(c)["access_token"].(string)
	b, _ := e.signedIn()
	e.clock.Advance(10 * time.Minute)
	if r := b.get(e.issuer + authserver.AppsPath); !strings.Contains(r.body, "10 minutes ago") {
		t.Fatalf("before the token is used, the last use is its issue:\n%s", r.body)
	}
	if err := e.verify(tok); err != nil {
		t.Fatal(err)
	}
	r := b.get(e.issuer + authserver.AppsPath)
	if !strings.Contains(r.body, "just now") || !strings.Contains(r.body, "10 minutes ago") {
		t.Fatalf("after a use, last used is now and first used stays:\n%s", r.body)
	}
}

func TestRule_NotYouSignsOutAndAsksAgainForTheSameRequest(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	consent := b.signIn(b.get(e.authzURL(c, ch, nil)).body, testEmail, testPassword).body
	f := formFields(t, consent)
	f.Del("consent")
	r := b.post(authserver.SignOutPath, f)
	if r.status != http.StatusOK || !strings.Contains(r.body, "You are signed out") || !strings.Contains(r.body, "Test App") || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("Not you? Sign out: %d\n%s", r.status, r.body)
	}
	// The same request goes on after signing in again.
	if r := b.signIn(r.body, testEmail, testPassword); !strings.Contains(r.body, `name="decision"`) {
		t.Fatalf("signing in again should show the consent: %d", r.status)
	}
}
