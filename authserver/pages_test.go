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
	"github.com/epicme/epicme/authserver/internal/testserver"
	"github.com/epicme/epicme/password"
)

// signedIn returns a browser signed in as the test user, and the CSRF token
// of its forms.
func signedIn(e *testserver.Env) (*testserver.Agent, string) {
	e.TB.Helper()
	b := e.Agent()
	page := b.Get(e.Issuer + authserver.AccountPath)
	r := b.SignIn(page.Body, testserver.Email, testserver.Password)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "Your account") {
		e.TB.Fatalf("sign-in to the account page: %d\n%s", r.Status, r.Body)
	}
	return b, html.UnescapeString(testserver.CSRFField.FindStringSubmatch(r.Body)[1])
}

func TestRule_AccountFormsRequireCSRFToken(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	b, csrf := signedIn(e)
	forms := map[string]url.Values{
		authserver.AccountDeletePath:   {"confirm_email": {testserver.Email}, "password": {testserver.Password}},
		authserver.AccountPasswordPath: {"current": {testserver.Password}, "new": {"a new long password"}, "confirm": {"a new long password"}},
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
			if r := b.Post(path, g); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with CSRF token %q: %d, want 403", path, token, r.Status)
			}
		}
	}
	// Nothing happened: same account, same password, still signed in, no
	// new account.
	if r := b.Get(e.Issuer + authserver.AccountPath); !strings.Contains(r.Body, "Your account") {
		t.Fatalf("still signed in: %d", r.Status)
	}
	if _, err := e.DB.LocalUserByEmail(context.Background(), "eve@example.com"); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("a forged sign-up created an account: %v", err)
	}
	fresh := e.Agent()
	if r := fresh.SignIn(fresh.Get(e.Issuer+authserver.AccountPath).Body, testserver.Email, testserver.Password); r.Status != http.StatusOK {
		t.Fatalf("the password must not have changed: %d", r.Status)
	}
}

var inlineStyleOrScript = regexp.MustCompile(`(?i)<script|<style|\sstyle=|\son[a-z]+=`)

func TestRule_EveryPageHasStrictHeadersAndCannotBeFramed(t *testing.T) {
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b, _ := signedIn(e)
	pages := map[string]string{
		"consent":      e.AuthzURL(c, ch, nil),
		"account":      e.Issuer + authserver.AccountPath,
		"apps":         e.Issuer + authserver.AppsPath,
		"sign-in":      e.Issuer + authserver.AuthorizePath + "?" + strings.SplitN(e.AuthzURL(c, ch, nil), "?", 2)[1],
		"sign-up":      e.Issuer + authserver.SignUpPath,
		"error":        e.Issuer + authserver.AuthorizePath + "?client_id=nobody",
		"sign-in-only": e.Issuer + authserver.AppsPath,
	}
	for name, u := range pages {
		br := b
		if name == "sign-in" || name == "sign-in-only" || name == "sign-up" {
			br = e.Agent()
		}
		r := br.Get(u)
		h := r.Header
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
		if m := inlineStyleOrScript.FindString(r.Body); m != "" {
			t.Errorf("%s: the page has inline code or style (%q), which the CSP blocks", name, m)
		}
		if !strings.Contains(r.Body, `<link rel="stylesheet" href="`+authserver.StylePath+`">`) {
			t.Errorf("%s: no stylesheet link", name)
		}
		// Only the pages of an authorization may post (and so redirect)
		// to the client.
		toClient := strings.Contains(csp, "http://127.0.0.1:9999")
		if want := name == "consent" || name == "sign-in"; toClient != want {
			t.Errorf("%s: CSP %q: form-action to the client's redirect URI %v, want %v", name, csp, toClient, want)
		}
	}
	st := e.Get(authserver.StylePath)
	if st.Status != http.StatusOK || !strings.HasPrefix(st.Header.Get("Content-Type"), "text/css") || !strings.Contains(st.Body, "body{") {
		t.Fatalf("stylesheet: %d %v", st.Status, st.Header)
	}
}

func TestRule_ConsentForOneClientCannotApproveAnother(t *testing.T) {
	e := testserver.NewEnv(t)
	a, bc := e.PublicClient(), e.ConfidentialClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	pageA := b.SignIn(b.Get(e.AuthzURL(a, ch, nil)).Body, testserver.Email, testserver.Password).Body
	pageB := b.Get(e.AuthzURL(bc, ch, nil)).Body
	if !strings.Contains(pageB, `name="decision"`) {
		t.Fatalf("client B's consent page: %s", pageB)
	}
	// A's answer (CSRF token and consent token) carried over to B's request.
	f := testserver.FormFields(t, pageA)
	f.Set("request", testserver.FormFields(t, pageB).Get("request"))
	f.Set("decision", "allow")
	f["scope"] = []string{epicme.ScopeEntriesRead}
	if r := b.Post(authserver.ConsentPath, f); r.Status != http.StatusForbidden || r.Header.Get("Location") != "" {
		t.Fatalf("A's consent replayed for B: %d, Location %q", r.Status, r.Header.Get("Location"))
	}
	if _, err := e.DB.Consent(context.Background(), e.User.ID, bc.ID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("B got a consent: %v", err)
	}
	// Another user's session cannot use A's form either.
	hash, _ := password.HashWith("mallory's password", testserver.PasswordParams)
	if _, err := e.DB.CreateUser(context.Background(), epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "mallory@example.com", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	m := e.Agent()
	m.SignIn(m.Get(e.AuthzURL(a, ch, nil)).Body, "mallory@example.com", "mallory's password")
	g := testserver.FormFields(t, pageA)
	g.Set("decision", "allow")
	g.Set("csrf", testserver.FormFields(t, m.Get(e.AuthzURL(a, ch, nil)).Body).Get("csrf"))
	if r := m.Post(authserver.ConsentPath, g); r.Status != http.StatusForbidden {
		t.Fatalf("alice's consent form posted in mallory's session: %d", r.Status)
	}
	// B's own form still works.
	if q := testserver.Location(t, b.Consent(pageB), bc.Redirect); q.Get("code") == "" {
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
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify })
	ctx := context.Background()
	hash, _ := password.HashWith(testserver.Password, testserver.PasswordParams)
	dis, _ := e.DB.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "disabled@example.com", PasswordHash: hash})
	if err := e.DB.SetUserDisabled(ctx, dis.ID, true); err != nil {
		t.Fatal(err)
	}
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	type answer struct {
		status int
		alert  string
	}
	try := func(email, pw string) answer {
		before := v.calls.Load()
		r := b.SignIn(page, email, pw)
		if n := v.calls.Load() - before; n != 1 {
			t.Errorf("sign-in as %s checked %d password hashes, want exactly 1", email, n)
		}
		m := alertText.FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatalf("sign-in as %s: no alert (%d)", email, r.Status)
		}
		return answer{r.Status, m[1]}
	}
	wrong := try(testserver.Email, "not the password")
	for _, email := range []string{"nobody@example.com", "disabled@example.com"} {
		if got := try(email, testserver.Password); got != wrong {
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
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	statuses := func(email string) []int {
		var out []int
		for range 5 {
			out = append(out, b.SignIn(page, email, "not the password").Status)
		}
		return out
	}
	known, unknown := statuses(testserver.Email), statuses("nobody@example.com")
	want := []int{401, 401, 401, 429, 429}
	for i := range want {
		if known[i] != want[i] || unknown[i] != want[i] {
			t.Fatalf("statuses: known %v, unknown %v, want both %v", known, unknown, want)
		}
	}
	r := b.SignIn(page, testserver.Email, testserver.Password)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "Wait") {
		t.Fatalf("the right password during the backoff: %d", r.Status)
	}
	e.Clock.Advance(3 * time.Second)
	if r := b.SignIn(page, testserver.Email, testserver.Password); r.Status != http.StatusOK {
		t.Fatalf("after the backoff: %d", r.Status)
	}
}

func TestRule_ConcurrentPasswordChecksAreCapped(t *testing.T) {
	v := &countingVerifier{delay: 30 * time.Millisecond}
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify; c.MaxPasswordChecks = 2 })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.Agent()
			page := b.Get(e.AuthzURL(c, ch, nil)).Body
			b.SignIn(page, "user"+string(rune('a'+i))+"@example.com", "whatever password")
		}()
	}
	wg.Wait()
	if v.calls.Load() != 8 || v.maxInFlight.Load() > 2 {
		t.Fatalf("%d checks, at most %d at once; want 8, at most 2", v.calls.Load(), v.maxInFlight.Load())
	}
}

func TestRule_PasswordChangeEndsOtherSessions(t *testing.T) {
	e := testserver.NewEnv(t)
	b1, csrf := signedIn(e)
	b2, _ := signedIn(e)
	r := b1.Post(authserver.AccountPasswordPath, url.Values{"csrf": {csrf}, "current": {testserver.Password}, "new": {"a brand new password"}, "confirm": {"a brand new password"}})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "Your password is changed") {
		t.Fatalf("change password: %d\n%s", r.Status, r.Body)
	}
	if r := b2.Get(e.Issuer + authserver.AccountPath); !strings.Contains(r.Body, `name="password"`) || strings.Contains(r.Body, "Your account") {
		t.Fatal("the other browser is still signed in after the password changed")
	}
	if r := b1.Get(e.Issuer + authserver.AccountPath); !strings.Contains(r.Body, "Your account") {
		t.Fatal("the browser that changed the password should stay signed in")
	}
	// A wrong current password changes nothing.
	r = b1.Post(authserver.AccountPasswordPath, url.Values{"csrf": {csrf}, "current": {"wrong"}, "new": {"another password"}, "confirm": {"another password"}})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("change with a wrong current password: %d", r.Status)
	}
	// Sign out ends the session.
	if r := b1.Post(authserver.SignOutPath, url.Values{"csrf": {csrf}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "signed out") {
		t.Fatalf("sign out: %d", r.Status)
	}
	if r := b1.Get(e.Issuer + authserver.AppsPath); !strings.Contains(r.Body, `name="password"`) {
		t.Fatal("still signed in after signing out")
	}
}

func TestRule_SignUpOffUnlessAllowed(t *testing.T) {
	e := testserver.NewEnv(t)
	if r := e.Agent().Get(e.Issuer + authserver.SignUpPath); r.Status != http.StatusNotFound {
		t.Fatalf("sign-up without AllowSignUp: %d", r.Status)
	}
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	if r := e.Agent().Get(e.AuthzURL(c, ch, nil)); strings.Contains(r.Body, authserver.SignUpPath) {
		t.Fatal("the sign-in page links to a sign-up that is off")
	}
}

func TestRule_AccountDeletionNeedsEmailAndPassword(t *testing.T) {
	e := testserver.NewEnv(t)
	b, csrf := signedIn(e)
	for _, f := range []url.Values{
		{"confirm_email": {"someone@example.com"}, "password": {testserver.Password}},
		{"confirm_email": {testserver.Email}, "password": {"wrong"}},
	} {
		f.Set("csrf", csrf)
		if r := b.Post(authserver.AccountDeletePath, f); r.Status == http.StatusOK {
			t.Fatalf("deletion with %v: %d", f, r.Status)
		}
	}
	if _, err := e.DB.UserByID(context.Background(), e.User.ID); err != nil {
		t.Fatalf("the account must still exist: %v", err)
	}
}

func TestRule_ConnectedAppsShowWhenAGrantWasLastUsed(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	tok := e.Tokens(c)["access_token"].(string)
	b, _ := signedIn(e)
	e.Clock.Advance(10 * time.Minute)
	if r := b.Get(e.Issuer + authserver.AppsPath); !strings.Contains(r.Body, "10 minutes ago") {
		t.Fatalf("before the token is used, the last use is its issue:\n%s", r.Body)
	}
	if err := e.Verify(tok); err != nil {
		t.Fatal(err)
	}
	r := b.Get(e.Issuer + authserver.AppsPath)
	if !strings.Contains(r.Body, "just now") || !strings.Contains(r.Body, "10 minutes ago") {
		t.Fatalf("after a use, last used is now and first used stays:\n%s", r.Body)
	}
}

func TestRule_NotYouSignsOutAndAsksAgainForTheSameRequest(t *testing.T) {
	e := testserver.NewEnv(t)
	b, consent := e.ConsentPage(e.PublicClient(), nil)
	f := testserver.FormFields(t, consent)
	f.Del("consent")
	r := b.Post(authserver.SignOutPath, f)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "You are signed out") || !strings.Contains(r.Body, "Test App") || !strings.Contains(r.Body, `name="password"`) {
		t.Fatalf("Not you? Sign out: %d\n%s", r.Status, r.Body)
	}
	// The same request goes on after signing in again.
	if r := b.SignIn(r.Body, testserver.Email, testserver.Password); !strings.Contains(r.Body, `name="decision"`) {
		t.Fatalf("signing in again should show the consent: %d", r.Status)
	}
}
