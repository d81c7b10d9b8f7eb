package authserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
)

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testParams are cheap Argon2id parameters: the tests check the flow, not
// the cost.
var testParams = password.Params{Memory: 1024, Time: 1, Threads: 1}

const (
	testEmail    = "alice@example.com"
	testPassword = "correct horse battery"
)

// env is an authorization server on a loopback httptest server, backed by a
// SQLite file, with one local user.
type env struct {
	t        testing.TB
	db       *sqlite.DB
	kek      []byte
	srv      *authserver.Server
	ts       *httptest.Server
	issuer   string
	resource string
	clock    *clock
	user     *epicme.User
	cfg      authserver.Config
	mux      *http.ServeMux
}

type envOption func(*authserver.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// Cheap Argon2id parameters: the tests check the flow, not the cost.
	hash, err := password.HashWith(testPassword, testParams)
	if err != nil {
		t.Fatal(err)
	}
	user, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: testEmail, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, kek: authserver.NewKEK(), clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, user: user}
	var handler http.Handler = http.NotFoundHandler()
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.ts.Close)
	e.issuer = e.ts.URL
	e.resource = e.ts.URL + "/mcp"
	e.cfg = authserver.Config{
		Issuer:   e.issuer,
		Resource: e.resource,
		Store:    db,
		Users:    db,
		KEK:      e.kek,
		Now:      e.clock.Now,
		Logger:   testLogger(),
		Journal:  db,
		// The same cheap parameters as the test user's hash.
		PasswordParams: testParams,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.srv, err = authserver.New(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	e.srv.Register(e.mux)
	handler = e.mux
	return e
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func do(t testing.TB, c *http.Client, req *http.Request) reply {
	t.Helper()
	if c == nil {
		c = noRedirect()
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readReply(t, resp)
}

func readReply(t testing.TB, resp *http.Response) reply {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// postForm posts a form to path with optional Basic credentials.
func (e *env) postForm(path string, form url.Values, basicID, basicSecret string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(basicID, basicSecret)
	}
	return do(e.t, nil, req)
}

func (e *env) get(path string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
	return do(e.t, nil, req)
}

// register registers a client by RFC 7591 and returns the response.
func (e *env) register(meta map[string]any) reply {
	e.t.Helper()
	b, _ := json.Marshal(meta)
	req, _ := http.NewRequest(http.MethodPost, e.issuer+authserver.RegistrationPath, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return do(e.t, nil, req)
}

// testClient is a registered client.
type testClient struct {
	id, secret, redirect string
}

func (e *env) publicClient() testClient {
	e.t.Helper()
	r := e.register(map[string]any{
		"client_name": "Test App", "redirect_uris": []string{"http://127.0.0.1:9999/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
	})
	if r.status != http.StatusCreated {
		e.t.Fatalf("registration: %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	return testClient{id: m["client_id"].(string), redirect: "http://127.0.0.1:9999/callback"}
}

func (e *env) confidentialClient() testClient {
	e.t.Helper()
	r := e.register(map[string]any{
		"client_name": "Server App", "redirect_uris": []string{"https://app.example/callback"},
		"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"authorization_code", "refresh_token"},
	})
	if r.status != http.StatusCreated {
		e.t.Fatalf("registration: %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	return testClient{id: m["client_id"].(string), secret: m["client_secret"].(string), redirect: "https://app.example/callback"}
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// browser is a user agent with a cookie jar that does not follow redirects
// to the client.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, client: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), e.issuer) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

func (b *browser) get(u string) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(b.e.t, b.client, req)
}

func (b *browser) post(path string, form url.Values) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(b.e.t, b.client, req)
}

var (
	csrfField    = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	requestField = regexp.MustCompile(`name="request" value="([^"]*)"`)
	consentField = regexp.MustCompile(`name="consent" value="([^"]*)"`)
	nextField    = regexp.MustCompile(`name="next" value="([^"]*)"`)
)

// formFields reads the hidden fields of the sign-in or consent page.
func formFields(t testing.TB, page string) url.Values {
	t.Helper()
	c, r := csrfField.FindStringSubmatch(page), requestField.FindStringSubmatch(page)
	if c == nil || r == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	f := url.Values{"csrf": {html.UnescapeString(c[1])}, "request": {html.UnescapeString(r[1])}}
	if m := consentField.FindStringSubmatch(page); m != nil {
		f.Set("consent", html.UnescapeString(m[1]))
	}
	if m := nextField.FindStringSubmatch(page); m != nil && m[1] != "" {
		f.Set("next", html.UnescapeString(m[1]))
	}
	return f
}

// signIn submits the sign-in form shown by page.
func (b *browser) signIn(page, email, pw string) reply {
	b.e.t.Helper()
	f := formFields(b.e.t, page)
	f.Set("email", email)
	f.Set("password", pw)
	return b.post(authserver.SignInPath, f)
}

// consent submits the consent form, granting the scopes given (all shown,
// when none).
func (b *browser) consent(page string, scopes ...string) reply {
	b.e.t.Helper()
	f := formFields(b.e.t, page)
	f.Set("decision", "allow")
	if scopes == nil {
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			scopes = append(scopes, m[1])
		}
	}
	f["scope"] = scopes
	return b.post(authserver.ConsentPath, f)
}

// authzURL builds an authorization request.
func (e *env) authzURL(c testClient, challenge string, extra url.Values) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.id},
		"redirect_uri":          {c.redirect},
		"state":                 {"st-123"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"resource":              {e.resource},
	}
	for k, v := range extra {
		if v == nil {
			delete(q, k)
		} else {
			q[k] = v
		}
	}
	return e.issuer + authserver.AuthorizePath + "?" + q.Encode()
}

// location parses the redirect of a 302 and checks it goes to the client.
func location(t testing.TB, r reply, redirect string) url.Values {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("want a redirect to the client, got %d:\n%s", r.status, r.body)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("redirect to %q, want %q", r.header.Get("Location"), redirect)
	}
	return loc.Query()
}

// authorize runs the whole browser step (sign in if needed, consent to the
// scopes given or all) and returns the code.
func (b *browser) authorize(c testClient, challenge string, extra url.Values, scopes ...string) string {
	t := b.e.t
	t.Helper()
	r := b.get(b.e.authzURL(c, challenge, extra))
	if r.status == http.StatusOK && strings.Contains(r.body, `name="password"`) {
		r = b.signIn(r.body, testEmail, testPassword)
	}
	if r.status == http.StatusOK && strings.Contains(r.body, `name="decision"`) {
		r = b.consent(r.body, scopes...)
	}
	q := location(t, r, c.redirect)
	if q.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("iss") != b.e.issuer || q.Get("state") != "st-123" {
		t.Fatalf("redirect lacks iss or state: %v", q)
	}
	return q.Get("code")
}

// exchange redeems a code.
func (e *env) exchange(c testClient, code, verifier string, extra url.Values) reply {
	e.t.Helper()
	f := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.redirect},
		"code_verifier": {verifier},
		"resource":      {e.resource},
	}
	for k, v := range extra {
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	if c.secret != "" {
		return e.postForm(authserver.TokenPath, f, c.id, c.secret)
	}
	f.Set("client_id", c.id)
	return e.postForm(authserver.TokenPath, f, "", "")
}

func (e *env) refresh(c testClient, rt string, extra url.Values) reply {
	e.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for k, v := range extra {
		f[k] = v
	}
	if c.secret != "" {
		return e.postForm(authserver.TokenPath, f, c.id, c.secret)
	}
	f.Set("client_id", c.id)
	return e.postForm(authserver.TokenPath, f, "", "")
}

// tokens runs a full flow and returns the token response.
func (e *env) tokens(c testClient, scopes ...string) map[string]any {
	e.t.Helper()
	v, ch := pkce()
	code := e.browser().authorize(c, ch, nil, scopes...)
	r := e.exchange(c, code, v, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

// verify checks an access token with the in-process verifier.
func (e *env) verify(tok string) error {
	_, err := e.srv.Verifier().Verify(context.Background(), tok)
	return err
}

func wantOAuthError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if got := r.json(t)["error"]; got != code {
		t.Fatalf("error %v, want %s: %s", got, code, r.body)
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("EPICME_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
