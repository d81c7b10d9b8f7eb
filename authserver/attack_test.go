package authserver_test

// Attacks on the authorization server, each named after the attack. Many
// rules are also tested under TestRule_* names; these tests make the attack
// itself and check it fails, and say which rule test covers more.

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
)

// A document server refused at every private range (more in
// TestRule_CIMDPrivateAddressRefused): the fetcher never dials them.
func TestAttack_CIMDSSRF_PrivateRanges(t *testing.T) {
	d := newDocServer(t)
	e := newEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	for host, addr := range map[string]string{
		"a.example.com": "10.0.0.5", "b.example.com": "172.16.0.1", "c.example.com": "192.168.0.1",
		"d.example.com": "169.254.169.254", "e.example.com": "fc00::1", "f.example.com": "fe80::1",
		"g.example.com": "127.0.0.1", "h.example.com": "::ffff:10.0.0.1", "i.example.com": "0.0.0.0",
	} {
		d.res.answers[host] = [][]netip.Addr{{netip.MustParseAddr(addr)}}
		wantRefusedPage(t, cimdPage(e, "https://"+host+"/client.json"), "not a public address")
	}
	if dl := d.dials(); len(dl) != 0 {
		t.Fatalf("private addresses were dialled: %v", dl)
	}
}

func TestAttack_CIMDSSRF_Redirects(t *testing.T) {
	d := newDocServer(t)
	e := newEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	d.res.answers["public.example.com"] = [][]netip.Addr{{publicIP}}
	d.res.answers["inside.example.com"] = [][]netip.Addr{{netip.MustParseAddr("10.9.9.9")}}
	d.redirect("/to-inside", "https://inside.example.com/client.json")
	d.redirect("/to-ip", "https://169.254.169.254/latest/meta-data/")
	wantRefusedPage(t, cimdPage(e, "https://public.example.com/to-inside"), "not a public address")
	wantRefusedPage(t, cimdPage(e, "https://public.example.com/to-ip"), "metadata document")
	for _, a := range d.dials() {
		if !strings.HasPrefix(a, publicIP.String()+":") {
			t.Fatalf("a redirect made the fetcher dial %s", a)
		}
	}
}

// The name is public when checked and loopback when dialled again: the
// check is made on the address actually dialled, so the second answer is
// refused.
func TestAttack_CIMDSSRF_DNSRebinding(t *testing.T) {
	d := newDocServer(t)
	e := newEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	d.res.answers["rebind.example.com"] = [][]netip.Addr{{publicIP}, {netip.MustParseAddr("127.0.0.1")}}
	d.redirect("/hop", "https://rebind.example.com/client.json")
	d.serveJSON("/client.json", cimdDoc("https://rebind.example.com/client.json"), "")
	wantRefusedPage(t, cimdPage(e, "https://rebind.example.com/hop"), "not a public address")
	for _, a := range d.dials() {
		if !strings.HasPrefix(a, publicIP.String()+":") {
			t.Fatalf("dialled %s after rebinding", a)
		}
	}
}

// A document of a megabyte (and one that never ends) is cut at the size
// limit, not read to the end.
func TestAttack_CIMDSSRF_Oversize(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["big.example.com"] = [][]netip.Addr{{publicIP}}
	e := newEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
	d.mu.Lock()
	d.docs["/huge.json"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"client_name":"` + strings.Repeat("x", 1<<20) + `"}`))
	}
	d.docs["/endless.json"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for i := 0; i < 1024; i++ { // 64 MiB unless the reader stops
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	d.mu.Unlock()
	wantRefusedPage(t, cimdPage(e, "https://big.example.com/huge.json"), "larger than 5120 bytes")
	wantRefusedPage(t, cimdPage(e, "https://big.example.com/endless.json"), "larger than 5120 bytes")
}

// A document server that answers slowly (or never) is given up on after
// the fetch timeout; the sign-in page says so instead of hanging.
func TestAttack_CIMDSSRF_Slow(t *testing.T) {
	d := newDocServer(t)
	d.res.answers["slow.example.com"] = [][]netip.Addr{{publicIP}}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	d.mu.Lock()
	d.docs["/slow.json"] = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	d.mu.Unlock()
	e := newEnv(t, func(c *authserver.Config) {
		c.MetadataDocuments = d.options()
		c.MetadataDocuments.Timeout = 200 * time.Millisecond
	})
	r := cimdPage(e, "https://slow.example.com/slow.json")
	if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
		t.Fatalf("a document that never comes: %d, Location %q", r.status, r.header.Get("Location"))
	}
}

// Every parameter of the authorization request is tried as a way to send
// the browser somewhere other than the client's registered redirect URI:
// the answer is either an error page (no Location) or a redirect to the
// registered URI exactly.
func TestAttack_OpenRedirect_EveryAuthorizeParameter(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	evil := "https://evil.example/steal"
	for name, extra := range map[string]url.Values{
		"redirect_uri":              {"redirect_uri": {evil}},
		"redirect_uri prefix":       {"redirect_uri": {c.redirect + ".evil.example"}},
		"redirect_uri userinfo":     {"redirect_uri": {"http://127.0.0.1:9999@evil.example/callback"}},
		"redirect_uri twice":        {"redirect_uri": {c.redirect, evil}},
		"unknown client_id":         {"client_id": {"no-such-client"}, "redirect_uri": {evil}},
		"client_id as evil URL":     {"client_id": {evil}, "redirect_uri": {evil}},
		"response_type":             {"response_type": {"token"}, "redirect_uri": {evil}},
		"scope":                     {"scope": {"admin"}},
		"resource":                  {"resource": {evil}},
		"state":                     {"state": {evil}},
		"code_challenge_method":     {"code_challenge_method": {"plain"}},
		"missing code_challenge":    {"code_challenge": nil},
		"prompt":                    {"prompt": {"none"}},
		"request_uri":               {"request_uri": {evil}},
		"redirect_uri in fragment":  {"redirect_uri": {c.redirect + "#" + evil}},
		"redirect_uri other scheme": {"redirect_uri": {"javascript:alert(1)"}},
	} {
		r := e.browser().get(e.authzURL(c, ch, extra))
		loc := r.header.Get("Location")
		if loc == "" {
			continue
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("%s: unparsable Location %q", name, loc)
		}
		u.RawQuery, u.Fragment = "", ""
		if u.String() != c.redirect && !strings.HasPrefix(loc, e.issuer+"/") {
			t.Errorf("%s: redirected to %q", name, loc)
		}
	}
}

// A cross-site page submitting the sign-in form (no CSRF cookie, or a
// guessed token) is refused; see TestRule_FormsRequireCSRFToken for
// consent and TestRule_AccountFormsRequireCSRFToken for the account pages.
func TestAttack_CSRF_SignInFromAnotherSite(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	page := e.browser().get(e.authzURL(c, ch, nil)).body
	f := formFields(t, page)
	f.Set("email", testEmail)
	f.Set("password", testPassword)
	victim := e.browser()
	if r := victim.post(authserver.SignInPath, f); r.status != http.StatusForbidden {
		t.Fatalf("a sign-in posted from another site: %d", r.status)
	}
}

func TestAttack_CSRF_ConsentFromAnotherSite(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	consent := b.signIn(b.get(e.authzURL(c, ch, nil)).body, testEmail, testPassword).body
	f := formFields(t, consent)
	f.Set("decision", "allow")
	f.Set("csrf", "guessed")
	if r := b.post(authserver.ConsentPath, f); r.status != http.StatusForbidden || r.header.Get("Location") != "" {
		t.Fatalf("consent with a guessed CSRF token: %d %q", r.status, r.header.Get("Location"))
	}
}

// Every page refuses to be framed (X-Frame-Options and CSP
// frame-ancestors); TestRule_EveryPageHasStrictHeadersAndCannotBeFramed
// checks each page.
func TestAttack_Clickjacking(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	pages := []reply{b.get(e.authzURL(c, ch, nil)), b.get(e.issuer + authserver.AppsPath)}
	pages = append(pages, b.signIn(pages[0].body, testEmail, testPassword)) // the consent page
	for i, r := range pages {
		if r.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("page %d can be framed: %v", i, r.header)
		}
	}
}

// The attacker plants the cookies of their own visit in the victim's
// browser; the victim signs in; the attacker's cookies must not now be
// signed in as the victim.
func TestAttack_SessionFixation(t *testing.T) {
	e := newEnv(t)
	attacker := e.browser()
	page := attacker.get(e.issuer + authserver.AppsPath)
	issuer, _ := url.Parse(e.issuer)
	victim := e.browser()
	victim.client.Jar.SetCookies(issuer, attacker.client.Jar.Cookies(issuer))
	if r := victim.signIn(page.body, testEmail, testPassword); r.status != http.StatusOK || !strings.Contains(r.body, testEmail) {
		t.Fatalf("the victim's sign-in: %d", r.status)
	}
	if r := attacker.get(e.issuer + authserver.AppsPath); !strings.Contains(r.body, `name="password"`) || strings.Contains(r.body, testEmail) {
		t.Fatalf("the attacker's planted cookies became the victim's session: %d\n%s", r.status, r.body)
	}
	// The attacker's own jar is not the victim's: try the victim's fresh
	// cookies against a new jar to be sure the session moved with them.
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(issuer, victim.client.Jar.Cookies(issuer))
	copyOf := &browser{e: e, client: &http.Client{Jar: jar}}
	if r := copyOf.get(e.issuer + authserver.AppsPath); !strings.Contains(r.body, testEmail) {
		t.Fatal("the victim's session is not in the cookies set at sign-in")
	}
}

// Registering a client through DCR whose name copies a client the user
// trusts does not inherit that trust: the user's remembered consent is per
// client, so the look-alike gets a consent page naming its own redirect
// host, never a code straight away.
func TestAttack_ConfusedDeputyThroughDCR(t *testing.T) {
	e := newEnv(t)
	good := e.publicClient()
	b := e.browser()
	v, ch := pkce()
	code := b.authorize(good, ch, nil)
	if r := e.exchange(good, code, v, nil); r.status != http.StatusOK {
		t.Fatalf("the trusted client's flow: %d %s", r.status, r.body)
	}
	r := e.register(map[string]any{
		"client_name": "Test App", "redirect_uris": []string{"https://evil.example/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("registration: %d", r.status)
	}
	evil := testClient{id: r.json(t)["client_id"].(string), redirect: "https://evil.example/callback"}
	page := b.get(e.authzURL(evil, ch, nil))
	if page.status != http.StatusOK || page.header.Get("Location") != "" || !strings.Contains(page.body, `name="decision"`) {
		t.Fatalf("the look-alike got past consent: %d Location %q", page.status, page.header.Get("Location"))
	}
	if !strings.Contains(page.body, "evil.example") {
		t.Fatal("the consent page does not name the look-alike's redirect host")
	}
	// And a code of the trusted client cannot be redeemed by the other.
	code = b.authorize(good, ch, nil)
	if r := e.exchange(evil, code, v, nil); r.status == http.StatusOK {
		t.Fatal("a code issued to one client was redeemed by another")
	}
}

// An unknown email and a wrong password get the same message
// (TestRule_SignInDoesNotRevealWhichEmailsExist also covers a disabled
// account).
func TestAttack_UserEnumeration_Message(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	alert := func(r reply) string {
		m := alertText.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("no message on the refused sign-in (%d)", r.status)
		}
		return m[1]
	}
	wrong := b.signIn(page, testEmail, "not the password")
	unknown := b.signIn(page, "nobody@example.com", "not the password")
	if wrong.status != unknown.status || alert(wrong) != alert(unknown) {
		t.Fatalf("wrong password: %d %q; unknown email: %d %q", wrong.status, alert(wrong), unknown.status, alert(unknown))
	}
}

// Timing: an unknown email costs one password hash check, like a wrong
// password, counted rather than timed (the benchmark
// BenchmarkSignInUnknownEmailVersusWrongPassword measures the cost).
func TestAttack_UserEnumeration_Timing(t *testing.T) {
	v := &countingVerifier{}
	e := newEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify })
	c := e.publicClient()
	_, ch := pkce()
	b := e.browser()
	page := b.get(e.authzURL(c, ch, nil)).body
	for _, email := range []string{testEmail, "nobody@example.com", "NOBODY@example.com", strings.Repeat("a", 240) + "@example.com"} {
		before := v.calls.Load()
		b.signIn(page, email, "not the password")
		if n := v.calls.Load() - before; n != 1 {
			t.Errorf("sign-in as %.20s… checked %d hashes, want 1", email, n)
		}
	}
}

// Sign-up must say when an email is taken (there is no mail to send
// instead), so it can be used to test emails; every attempt counts against
// the address's allowance of 10 sign-ups an hour, so probing stops after
// ten, and the refusal no longer says whether the email exists. Sign-up is
// off by default except on loopback (TestRule_SignUpOffUnlessAllowed).
func TestAttack_UserEnumeration_SignUp(t *testing.T) {
	e := newEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	b := e.browser()
	m := csrfField.FindStringSubmatch(b.get(e.issuer + authserver.SignUpPath).body)
	if m == nil {
		t.Fatal("no sign-up form")
	}
	pw := "a long enough password"
	probe := func() reply {
		return b.post(authserver.SignUpPath, url.Values{"csrf": {html.UnescapeString(m[1])}, "email": {testEmail}, "password": {pw}, "confirm": {pw}})
	}
	for i := 0; i < 10; i++ {
		if r := probe(); r.status != http.StatusConflict {
			t.Fatalf("probe %d: %d", i+1, r.status)
		}
	}
	r := probe()
	if r.status != http.StatusTooManyRequests || strings.Contains(r.body, "already exists") {
		t.Fatalf("the eleventh probe: %d, says whether the email exists: %v", r.status, strings.Contains(r.body, "already exists"))
	}
}

// A client names itself with Unicode controls: a right-to-left override
// that turns "Trusted App\u202Etxt.exe" around on screen, a bell, a
// zero-width joiner hiding between letters. The sign-in, consent and
// connected-apps pages show each one as a visible escape, never the
// character itself, so the name a person reads is the name that was
// registered.
func TestAttack_ClientNameWithBidiAndControlCharacters(t *testing.T) {
	e := newEnv(t)
	name := "Trusted App\u202Eexe.txt\u0007 \u2066x\u2069 a\u200Db"
	r := e.register(map[string]any{
		"client_name": name, "redirect_uris": []string{"http://127.0.0.1:9999/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("registration: %d %s", r.status, r.body)
	}
	c := testClient{id: r.json(t)["client_id"].(string), redirect: "http://127.0.0.1:9999/callback"}
	shown := `Trusted App\u202Eexe.txt\u0007 \u2066x\u2069 a\u200Db`
	check := func(page, body string) {
		t.Helper()
		for _, bad := range []string{"\u202E", "\u0007", "\u2066", "\u2069", "\u200D"} {
			if strings.Contains(body, bad) {
				t.Errorf("the %s page shows %U raw", page, []rune(bad)[0])
			}
		}
		if !strings.Contains(body, shown) {
			t.Errorf("the %s page does not show the name with visible escapes %q", page, shown)
		}
	}
	b := e.browser()
	_, ch := pkce()
	signIn := b.get(e.authzURL(c, ch, nil))
	if signIn.status != http.StatusOK || !strings.Contains(signIn.body, `name="password"`) {
		t.Fatalf("sign-in page: %d", signIn.status)
	}
	check("sign-in", signIn.body)
	consent := b.signIn(signIn.body, testEmail, testPassword)
	if consent.status != http.StatusOK || !strings.Contains(consent.body, `name="decision"`) {
		t.Fatalf("consent page: %d", consent.status)
	}
	check("consent", consent.body)
	b.consent(consent.body)
	check("connected apps", b.get(e.issuer+"/oauth/apps").body)
}

// A refresh token presented three times within the grace period used to
// give three refresh tokens, all live: three chains from one token. A grace
// retry now supersedes the successors issued before it, so one chain is
// live; presenting a superseded token is a reuse and revokes the family, and
// so is a retry once the chain has moved on (RFC 9700 §4.14.2).
func TestAttack_RefreshForkWithinGrace(t *testing.T) {
	e := newEnv(t)
	c := e.publicClient()
	rt0 := e.tokens(c)["refresh_token"].(string)
	var next []string
	for range 3 {
		r := e.refresh(c, rt0, nil)
		if r.status != http.StatusOK {
			t.Fatalf("a retry within the grace period: %d %s", r.status, r.body)
		}
		next = append(next, r.json(t)["refresh_token"].(string))
	}
	e.clock.Advance(2500 * time.Millisecond)
	// The last chain is the live one.
	last := e.refresh(c, next[2], nil)
	if last.status != http.StatusOK {
		t.Fatalf("the newest chain: %d %s", last.status, last.body)
	}
	// A superseded one is a reuse: refused, and the family revoked with it.
	wantOAuthError(t, e.refresh(c, next[0], nil), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.refresh(c, last.json(t)["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")

	// A retry of rt0 after its successor was used is not a retry: the chain
	// moved on, and the family is revoked even within the grace period.
	c2 := e.publicClient()
	r0 := e.tokens(c2)["refresh_token"].(string)
	r1 := e.refresh(c2, r0, nil).json(t)["refresh_token"].(string)
	r2 := e.refresh(c2, r1, nil).json(t)["refresh_token"].(string)
	wantOAuthError(t, e.refresh(c2, r0, nil), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, e.refresh(c2, r2, nil), http.StatusBadRequest, "invalid_grant")
}
