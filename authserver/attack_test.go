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
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// A document server refused at every private range (more in
// TestRule_CIMDPrivateAddressRefused): the fetcher never dials them.
func TestAttack_CIMDSSRF_PrivateRanges(t *testing.T) {
	d := newDocServer(t)
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
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
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
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
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
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
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.MetadataDocuments = d.options() })
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
	e := testserver.NewEnv(t, func(c *authserver.Config) {
		c.MetadataDocuments = d.options()
		c.MetadataDocuments.Timeout = 200 * time.Millisecond
	})
	r := cimdPage(e, "https://slow.example.com/slow.json")
	if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Fatalf("a document that never comes: %d, Location %q", r.Status, r.Header.Get("Location"))
	}
}

// Every parameter of the authorization request is tried as a way to send
// the browser somewhere other than the client's registered redirect URI:
// the answer is either an error page (no Location) or a redirect to the
// registered URI exactly.
func TestAttack_OpenRedirect_EveryAuthorizeParameter(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	evil := "https://evil.example/steal"
	for name, extra := range map[string]url.Values{
		"redirect_uri":              {"redirect_uri": {evil}},
		"redirect_uri prefix":       {"redirect_uri": {c.Redirect + ".evil.example"}},
		"redirect_uri userinfo":     {"redirect_uri": {"http://127.0.0.1:9999@evil.example/callback"}},
		"redirect_uri twice":        {"redirect_uri": {c.Redirect, evil}},
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
		"redirect_uri in fragment":  {"redirect_uri": {c.Redirect + "#" + evil}},
		"redirect_uri other scheme": {"redirect_uri": {"javascript:alert(1)"}},
	} {
		r := e.Agent().Get(e.AuthzURL(c, ch, extra))
		loc := r.Header.Get("Location")
		if loc == "" {
			continue
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("%s: unparsable Location %q", name, loc)
		}
		u.RawQuery, u.Fragment = "", ""
		if u.String() != c.Redirect && !strings.HasPrefix(loc, e.Issuer+"/") {
			t.Errorf("%s: redirected to %q", name, loc)
		}
	}
}

// A cross-site page submitting the sign-in form (no CSRF cookie, or a
// guessed token) is refused; see TestRule_FormsRequireCSRFToken for
// consent and TestRule_AccountFormsRequireCSRFToken for the account pages.
func TestAttack_CSRF_SignInFromAnotherSite(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	page := e.Agent().Get(e.AuthzURL(c, ch, nil)).Body
	f := testserver.FormFields(t, page)
	f.Set("email", testserver.Email)
	f.Set("password", testserver.Password)
	victim := e.Agent()
	if r := victim.Post(authserver.SignInPath, f); r.Status != http.StatusForbidden {
		t.Fatalf("a sign-in posted from another site: %d", r.Status)
	}
}

func TestAttack_CSRF_ConsentFromAnotherSite(t *testing.T) {
	e := testserver.NewEnv(t)
	b, consent := e.ConsentPage(e.PublicClient(), nil)
	f := testserver.FormFields(t, consent)
	f.Set("decision", "allow")
	f.Set("csrf", "guessed")
	if r := b.Post(authserver.ConsentPath, f); r.Status != http.StatusForbidden || r.Header.Get("Location") != "" {
		t.Fatalf("consent with a guessed CSRF token: %d %q", r.Status, r.Header.Get("Location"))
	}
}

// Every page refuses to be framed (X-Frame-Options and CSP
// frame-ancestors); TestRule_EveryPageHasStrictHeadersAndCannotBeFramed
// checks each page.
func TestAttack_Clickjacking(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	pages := []testserver.Reply{b.Get(e.AuthzURL(c, ch, nil)), b.Get(e.Issuer + authserver.AppsPath)}
	pages = append(pages, b.SignIn(pages[0].Body, testserver.Email, testserver.Password)) // the consent page
	for i, r := range pages {
		if r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("page %d can be framed: %v", i, r.Header)
		}
	}
}

// The attacker plants the cookies of their own visit in the victim's
// browser; the victim signs in; the attacker's cookies must not now be
// signed in as the victim.
func TestAttack_SessionFixation(t *testing.T) {
	e := testserver.NewEnv(t)
	attacker := e.Agent()
	page := attacker.Get(e.Issuer + authserver.AppsPath)
	issuer, _ := url.Parse(e.Issuer)
	victim := e.Agent()
	victim.Client.Jar.SetCookies(issuer, attacker.Client.Jar.Cookies(issuer))
	if r := victim.SignIn(page.Body, testserver.Email, testserver.Password); r.Status != http.StatusOK || !strings.Contains(r.Body, testserver.Email) {
		t.Fatalf("the victim's sign-in: %d", r.Status)
	}
	if r := attacker.Get(e.Issuer + authserver.AppsPath); !strings.Contains(r.Body, `name="password"`) || strings.Contains(r.Body, testserver.Email) {
		t.Fatalf("the attacker's planted cookies became the victim's session: %d\n%s", r.Status, r.Body)
	}
	// The attacker's own jar is not the victim's: try the victim's fresh
	// cookies against a new jar to be sure the session moved with them.
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(issuer, victim.Client.Jar.Cookies(issuer))
	copyOf := &testserver.Agent{Env: e, Client: &http.Client{Jar: jar}}
	if r := copyOf.Get(e.Issuer + authserver.AppsPath); !strings.Contains(r.Body, testserver.Email) {
		t.Fatal("the victim's session is not in the cookies set at sign-in")
	}
}

// Registering a client through DCR whose name copies a client the user
// trusts does not inherit that trust: the user's remembered consent is per
// client, so the look-alike gets a consent page naming its own redirect
// host, never a code straight away.
func TestAttack_ConfusedDeputyThroughDCR(t *testing.T) {
	e := testserver.NewEnv(t)
	good := e.PublicClient()
	b := e.Agent()
	v, ch := testserver.PKCE()
	code := b.Authorize(good, ch, nil)
	if r := e.Exchange(good, code, v, nil); r.Status != http.StatusOK {
		t.Fatalf("the trusted client's flow: %d %s", r.Status, r.Body)
	}
	r := e.Register(map[string]any{
		"client_name": "Test App", "redirect_uris": []string{"https://evil.example/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"},
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("registration: %d", r.Status)
	}
	evil := testserver.Client{ID: r.JSON(t)["client_id"].(string), Redirect: "https://evil.example/callback"}
	page := b.Get(e.AuthzURL(evil, ch, nil))
	if page.Status != http.StatusOK || page.Header.Get("Location") != "" || !strings.Contains(page.Body, `name="decision"`) {
		t.Fatalf("the look-alike got past consent: %d Location %q", page.Status, page.Header.Get("Location"))
	}
	if !strings.Contains(page.Body, "evil.example") {
		t.Fatal("the consent page does not name the look-alike's redirect host")
	}
	// And a code of the trusted client cannot be redeemed by the other.
	code = b.Authorize(good, ch, nil)
	if r := e.Exchange(evil, code, v, nil); r.Status == http.StatusOK {
		t.Fatal("a code issued to one client was redeemed by another")
	}
}

// An unknown email and a wrong password get the same message
// (TestRule_SignInDoesNotRevealWhichEmailsExist also covers a disabled
// account).
func TestAttack_UserEnumeration_Message(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	alert := func(r testserver.Reply) string {
		m := alertText.FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatalf("no message on the refused sign-in (%d)", r.Status)
		}
		return m[1]
	}
	wrong := b.SignIn(page, testserver.Email, "not the password")
	unknown := b.SignIn(page, "nobody@example.com", "not the password")
	if wrong.Status != unknown.Status || alert(wrong) != alert(unknown) {
		t.Fatalf("wrong password: %d %q; unknown email: %d %q", wrong.Status, alert(wrong), unknown.Status, alert(unknown))
	}
}

// Timing: an unknown email costs one password hash check, like a wrong
// password, counted rather than timed (the benchmark
// BenchmarkSignInUnknownEmailVersusWrongPassword measures the cost).
func TestAttack_UserEnumeration_Timing(t *testing.T) {
	v := &countingVerifier{}
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.VerifyPassword = v.verify })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	b := e.Agent()
	page := b.Get(e.AuthzURL(c, ch, nil)).Body
	for _, email := range []string{testserver.Email, "nobody@example.com", "NOBODY@example.com", strings.Repeat("a", 240) + "@example.com"} {
		before := v.calls.Load()
		b.SignIn(page, email, "not the password")
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
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	b := e.Agent()
	m := testserver.CSRFField.FindStringSubmatch(b.Get(e.Issuer + authserver.SignUpPath).Body)
	if m == nil {
		t.Fatal("no sign-up form")
	}
	pw := "a long enough password"
	probe := func() testserver.Reply {
		return b.Post(authserver.SignUpPath, url.Values{"csrf": {html.UnescapeString(m[1])}, "email": {testserver.Email}, "password": {pw}, "confirm": {pw}})
	}
	for i := 0; i < 10; i++ {
		if r := probe(); r.Status != http.StatusConflict {
			t.Fatalf("probe %d: %d", i+1, r.Status)
		}
	}
	r := probe()
	if r.Status != http.StatusTooManyRequests || strings.Contains(r.Body, "already exists") {
		t.Fatalf("the eleventh probe: %d, says whether the email exists: %v", r.Status, strings.Contains(r.Body, "already exists"))
	}
}

// A client names itself with Unicode controls: a right-to-left override
// that turns "Trusted App\u202Etxt.exe" around on screen, a bell, a
// zero-width joiner hiding between letters. The sign-in, consent and
// connected-apps pages show each one as a visible escape, never the
// character itself, so the name a person reads is the name that was
// registered.
func TestAttack_ClientNameWithBidiAndControlCharacters(t *testing.T) {
	e := testserver.NewEnv(t)
	name := "Trusted App\u202Eexe.txt\u0007 \u2066x\u2069 a\u200Db"
	r := e.Register(map[string]any{
		"client_name": name, "redirect_uris": []string{"http://127.0.0.1:9999/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("registration: %d %s", r.Status, r.Body)
	}
	c := testserver.Client{ID: r.JSON(t)["client_id"].(string), Redirect: "http://127.0.0.1:9999/callback"}
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
	b := e.Agent()
	_, ch := testserver.PKCE()
	signIn := b.Get(e.AuthzURL(c, ch, nil))
	if signIn.Status != http.StatusOK || !strings.Contains(signIn.Body, `name="password"`) {
		t.Fatalf("sign-in page: %d", signIn.Status)
	}
	check("sign-in", signIn.Body)
	consent := b.SignIn(signIn.Body, testserver.Email, testserver.Password)
	if consent.Status != http.StatusOK || !strings.Contains(consent.Body, `name="decision"`) {
		t.Fatalf("consent page: %d", consent.Status)
	}
	check("consent", consent.Body)
	b.Consent(consent.Body)
	check("connected apps", b.Get(e.Issuer+"/oauth/apps").Body)
}

// A refresh token presented three times within the grace period used to
// give three refresh tokens, all live: three chains from one token. A grace
// retry now supersedes the successors issued before it, so one chain is
// live; presenting a superseded token is a reuse and revokes the family, and
// so is a retry once the chain has moved on (RFC 9700 §4.14.2).
func TestAttack_RefreshForkWithinGrace(t *testing.T) {
	e := testserver.NewEnv(t)
	c := e.PublicClient()
	rt0 := e.Tokens(c)["refresh_token"].(string)
	var next []string
	for range 3 {
		r := e.Refresh(c, rt0, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("a retry within the grace period: %d %s", r.Status, r.Body)
		}
		next = append(next, r.JSON(t)["refresh_token"].(string))
	}
	e.Clock.Advance(2500 * time.Millisecond)
	// The last chain is the live one.
	last := e.Refresh(c, next[2], nil)
	if last.Status != http.StatusOK {
		t.Fatalf("the newest chain: %d %s", last.Status, last.Body)
	}
	// A superseded one is a reuse: refused, and the family revoked with it.
	testserver.WantOAuthError(t, e.Refresh(c, next[0], nil), http.StatusBadRequest, "invalid_grant")
	testserver.WantOAuthError(t, e.Refresh(c, last.JSON(t)["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")

	// A retry of rt0 after its successor was used is not a retry: the chain
	// moved on, and the family is revoked even within the grace period.
	c2 := e.PublicClient()
	r0 := e.Tokens(c2)["refresh_token"].(string)
	r1 := e.Refresh(c2, r0, nil).JSON(t)["refresh_token"].(string)
	r2 := e.Refresh(c2, r1, nil).JSON(t)["refresh_token"].(string)
	testserver.WantOAuthError(t, e.Refresh(c2, r0, nil), http.StatusBadRequest, "invalid_grant")
	testserver.WantOAuthError(t, e.Refresh(c2, r2, nil), http.StatusBadRequest, "invalid_grant")
}
