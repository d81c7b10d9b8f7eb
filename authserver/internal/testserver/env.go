// Package testserver is a whole authorization server on loopback for
// tests (Env): a SQLite store with one local user, registered clients, a
// browser-like agent with a cookie jar, and EpicMe's MCP endpoint behind
// the auth package when a test mounts it. Package authserver's tests and
// the Chromium tests of package inbrowser share it; it is internal, so
// that nothing outside this module's authorization server depends on it.
package testserver

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
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// PasswordParams are cheap Argon2id parameters: the tests check the flow, not
// the cost.
var PasswordParams = password.Params{Memory: 1024, Time: 1, Threads: 1}

// The one local user every Env starts with.
const (
	Email    = "alice@example.com"
	Password = "correct horse battery"
)

// Env is an authorization server on a loopback httptest server, backed by a
// SQLite file, with one local user.
type Env struct {
	TB       testing.TB
	DB       *sqlite.DB
	Server   *authserver.Server
	Issuer   string
	Resource string
	Clock    *testenv.Clock
	User     *epicme.User
	Config   authserver.Config
	Mux      *http.ServeMux
}

// Option changes the server's configuration before NewEnv starts it.
type Option func(*authserver.Config)

// NewEnv starts an Env, closed when the test ends.
func NewEnv(t testing.TB, opts ...Option) *Env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	hash, err := password.HashWith(Password, PasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	user, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: Email, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{TB: t, DB: db, Clock: testenv.NewClock(time.Now().UTC().Truncate(time.Second)), User: user}
	var handler http.Handler = http.NotFoundHandler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	e.Issuer = ts.URL
	e.Resource = ts.URL + "/mcp"
	e.Config = authserver.Config{
		Issuer:         e.Issuer,
		Resource:       e.Resource,
		Store:          db,
		Users:          db,
		KEK:            authserver.NewKEK(),
		Now:            e.Clock.Now,
		Logger:         testLogger(),
		Journal:        db,
		PasswordParams: PasswordParams,
	}
	for _, o := range opts {
		o(&e.Config)
	}
	e.Server, err = authserver.New(ctx, e.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.Mux = http.NewServeMux()
	e.Server.Register(e.Mux)
	handler = e.Mux
	return e
}

// Reply is a response read in full.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body as a JSON object, failing the test if it is not one.
func (r Reply) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.Status, r.Body)
	}
	return m
}

// Do sends req with c (noRedirect() when nil) and reads the reply.
func Do(t testing.TB, c *http.Client, req *http.Request) Reply {
	t.Helper()
	if c == nil {
		c = noRedirect()
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return ReadReply(resp)
}

// ReadReply reads resp in full and closes its body.
func ReadReply(resp *http.Response) Reply {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Reply{resp.StatusCode, resp.Header, string(b)}
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// PostForm posts a form to path with optional Basic credentials.
func (e *Env) PostForm(path string, form url.Values, basicID, basicSecret string) Reply {
	e.TB.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(basicID, basicSecret)
	}
	return Do(e.TB, nil, req)
}

// Get fetches path on the server without following redirects.
func (e *Env) Get(path string) Reply {
	e.TB.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.Issuer+path, nil)
	return Do(e.TB, nil, req)
}

// Register registers a client by RFC 7591 and returns the response.
func (e *Env) Register(meta map[string]any) Reply {
	e.TB.Helper()
	b, _ := json.Marshal(meta)
	req, _ := http.NewRequest(http.MethodPost, e.Issuer+authserver.RegistrationPath, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	return Do(e.TB, nil, req)
}

// Client is a registered client.
type Client struct {
	ID, Secret, Redirect string
}

// PublicClient registers a public client (no secret, PKCE).
func (e *Env) PublicClient() Client {
	e.TB.Helper()
	return e.registered("Test App", "http://127.0.0.1:9999/callback", "none")
}

// ConfidentialClient registers a client with a secret (client_secret_basic).
func (e *Env) ConfidentialClient() Client {
	e.TB.Helper()
	return e.registered("Server App", "https://app.example/callback", "client_secret_basic")
}

// registered registers a client of the code and refresh grants by RFC 7591.
func (e *Env) registered(name, redirect, authMethod string) Client {
	e.TB.Helper()
	r := e.Register(map[string]any{
		"client_name": name, "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": authMethod, "grant_types": []string{"authorization_code", "refresh_token"},
	})
	if r.Status != http.StatusCreated {
		e.TB.Fatalf("registration: %d %s", r.Status, r.Body)
	}
	m := r.JSON(e.TB)
	secret, _ := m["client_secret"].(string)
	return Client{ID: m["client_id"].(string), Secret: secret, Redirect: redirect}
}

// PKCE returns a verifier and its S256 challenge.
func PKCE() (verifier, challenge string) {
	verifier = strings.Repeat("v", 20) + base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// Agent is a user agent with a cookie jar that does not follow redirects
// to the client.
type Agent struct {
	Env    *Env
	Client *http.Client
}

// Agent returns a fresh user agent: no cookies, so nobody is signed in.
func (e *Env) Agent() *Agent {
	jar, _ := cookiejar.New(nil)
	return &Agent{Env: e, Client: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), e.Issuer) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// Get fetches the absolute URL u.
func (b *Agent) Get(u string) Reply {
	b.Env.TB.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return Do(b.Env.TB, b.Client, req)
}

// Post posts a form to path on the server.
func (b *Agent) Post(path string, form url.Values) Reply {
	b.Env.TB.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.Env.Issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return Do(b.Env.TB, b.Client, req)
}

// CSRFField finds the CSRF token of a page's form; the others are the
// hidden fields FormFields reads.
var (
	CSRFField    = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
	requestField = regexp.MustCompile(`name="request" value="([^"]*)"`)
	consentField = regexp.MustCompile(`name="consent" value="([^"]*)"`)
	nextField    = regexp.MustCompile(`name="next" value="([^"]*)"`)
)

// FormFields reads the hidden fields of the sign-in or consent page.
func FormFields(t testing.TB, page string) url.Values {
	t.Helper()
	c, r := CSRFField.FindStringSubmatch(page), requestField.FindStringSubmatch(page)
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

// SignIn submits the sign-in form shown by page.
func (b *Agent) SignIn(page, email, pw string) Reply {
	b.Env.TB.Helper()
	f := FormFields(b.Env.TB, page)
	f.Set("email", email)
	f.Set("password", pw)
	return b.Post(authserver.SignInPath, f)
}

// Consent submits the consent form, granting the scopes given (all shown,
// when none).
func (b *Agent) Consent(page string, scopes ...string) Reply {
	b.Env.TB.Helper()
	f := FormFields(b.Env.TB, page)
	f.Set("decision", "allow")
	if scopes == nil {
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			scopes = append(scopes, m[1])
		}
	}
	f["scope"] = scopes
	return b.Post(authserver.ConsentPath, f)
}

// AuthzURL builds an authorization request.
func (e *Env) AuthzURL(c Client, challenge string, extra url.Values) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.Redirect},
		"state":                 {"st-123"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"resource":              {e.Resource},
	}
	merge(q, extra)
	return e.Issuer + authserver.AuthorizePath + "?" + q.Encode()
}

// ConsentPage signs the user in on a fresh agent, for an authorization
// request of c with extra parameters, and returns the agent and the
// consent page it shows.
func (e *Env) ConsentPage(c Client, extra url.Values) (*Agent, string) {
	e.TB.Helper()
	_, ch := PKCE()
	b := e.Agent()
	return b, b.SignIn(b.Get(e.AuthzURL(c, ch, extra)).Body, Email, Password).Body
}

// Location parses the redirect of a 302 and checks it goes to the client.
func Location(t testing.TB, r Reply, redirect string) url.Values {
	t.Helper()
	if r.Status != http.StatusFound {
		t.Fatalf("want a redirect to the client, got %d:\n%s", r.Status, r.Body)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("redirect to %q, want %q", r.Header.Get("Location"), redirect)
	}
	return loc.Query()
}

// Authorize runs the whole browser step (sign in if needed, consent to the
// scopes given or all) and returns the code.
func (b *Agent) Authorize(c Client, challenge string, extra url.Values, scopes ...string) string {
	t := b.Env.TB
	t.Helper()
	r := b.Get(b.Env.AuthzURL(c, challenge, extra))
	if r.Status == http.StatusOK && strings.Contains(r.Body, `name="password"`) {
		r = b.SignIn(r.Body, Email, Password)
	}
	if r.Status == http.StatusOK && strings.Contains(r.Body, `name="decision"`) {
		r = b.Consent(r.Body, scopes...)
	}
	q := Location(t, r, c.Redirect)
	if q.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("iss") != b.Env.Issuer || q.Get("state") != "st-123" {
		t.Fatalf("redirect lacks iss or state: %v", q)
	}
	return q.Get("code")
}

// Exchange redeems a code.
func (e *Env) Exchange(c Client, code, verifier string, extra url.Values) Reply {
	e.TB.Helper()
	f := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.Redirect},
		"code_verifier": {verifier},
		"resource":      {e.Resource},
	}
	merge(f, extra)
	return e.token(c, f)
}

// Refresh redeems a refresh token.
func (e *Env) Refresh(c Client, rt string, extra url.Values) Reply {
	e.TB.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	merge(f, extra)
	return e.token(c, f)
}

// token posts f to the token endpoint as client c: with Basic
// credentials when it has a secret, else with its client_id.
func (e *Env) token(c Client, f url.Values) Reply {
	if c.Secret != "" {
		return e.PostForm(authserver.TokenPath, f, c.ID, c.Secret)
	}
	f.Set("client_id", c.ID)
	return e.PostForm(authserver.TokenPath, f, "", "")
}

// merge sets the parameters of extra in q; a nil value removes one.
func merge(q, extra url.Values) {
	for k, v := range extra {
		if v == nil {
			delete(q, k)
		} else {
			q[k] = v
		}
	}
}

// Tokens runs a full flow and returns the token response.
func (e *Env) Tokens(c Client, scopes ...string) map[string]any {
	e.TB.Helper()
	v, ch := PKCE()
	code := e.Agent().Authorize(c, ch, nil, scopes...)
	r := e.Exchange(c, code, v, nil)
	if r.Status != http.StatusOK {
		e.TB.Fatalf("token: %d %s", r.Status, r.Body)
	}
	return r.JSON(e.TB)
}

// Verify checks an access token with the in-process verifier.
func (e *Env) Verify(tok string) error {
	_, err := e.Server.Verifier().Verify(context.Background(), tok)
	return err
}

// WantOAuthError fails the test unless r is an OAuth error response (RFC 6749 §5.2) with status and error code.
func WantOAuthError(t testing.TB, r Reply, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got := r.JSON(t)["error"]; got != code {
		t.Fatalf("error %v, want %s: %s", got, code, r.Body)
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("EPICME_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// MountMCP serves EpicMe's MCP endpoint on the env, protected by the auth
// package with the in-process verifier: the all-in-one deployment.
func (e *Env) MountMCP() {
	e.TB.Helper()
	m, err := mcpserver.New(e.DB, authserver.Callers(e.DB, e.Issuer), mcpserver.Options{
		Secret: []byte(strings.Repeat("k", 32)), Logger: e.Config.Logger,
	})
	if err != nil {
		e.TB.Fatal(err)
	}
	rs, err := auth.NewResourceServer(e.Server.Verifier(), auth.Options{
		ResourceURL:          e.Resource,
		AuthorizationServers: []string{e.Issuer},
		ScopesSupported:      epicme.AllScopes,
		Realm:                "EpicMe",
		Logger:               e.Config.Logger,
		RequiredScopes:       m.RequiredScopes,
	})
	if err != nil {
		e.TB.Fatal(err)
	}
	rs.Mount(e.Mux, m.HTTPHandler())
}

// ToolText joins the text contents of a tool result.
func ToolText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}
