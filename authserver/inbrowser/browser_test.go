package inbrowser

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
	chromium "github.com/epicme/epicme/browser"
	"github.com/epicme/epicme/internal/gosdktest"
	"github.com/epicme/epicme/password"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpStatus posts an MCP initialize with the token and returns the status.
func mcpStatus(e *testserver.Env, t *testing.T, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"browser-test","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, e.Resource, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	return testserver.Do(t, nil, req).Status
}

func newPage(t *testing.T, b *chromium.Browser) *chromium.Page {
	t.Helper()
	p, err := b.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pageText(t *testing.T, p *chromium.Page) string {
	t.Helper()
	s, err := p.Text("main")
	must(t, err)
	return s
}

func TestBrowser_SignInConsentNarrowedRevokedInConnectedApps(t *testing.T) {
	b := chromium.Require(t)
	e := testserver.NewEnv(t)
	e.MountMCP()
	c := e.PublicClient()
	v, ch := testserver.PKCE()
	authz := e.AuthzURL(c, ch, url.Values{"scope": {"user:read entries:read entries:write"}})
	p := newPage(t, b)

	// A wrong password is refused on the page, with the same words as an
	// unknown email.
	_, err := p.Authorize(chromium.Authorization{URL: authz, Email: testserver.Email, Password: "not the password", Name: "wrong-password"})
	var pe *chromium.PageError
	if !errors.As(err, &pe) || pe.Page != "sign-in" || pe.Message != "The email or password is wrong." {
		t.Fatalf("a wrong password: %v", err)
	}

	// The right one leads to consent; entries:write is unticked.
	redirect, err := p.Authorize(chromium.Authorization{
		URL: authz, Email: testserver.Email, Password: testserver.Password,
		Scopes: []string{epicme.ScopeUserRead, epicme.ScopeEntriesRead},
	})
	must(t, err)
	if !strings.HasPrefix(redirect.String(), c.Redirect+"?") {
		t.Fatalf("landed on %s, want the client's redirect URI %s", redirect, c.Redirect)
	}
	q := redirect.Query()
	if q.Get("code") == "" || q.Get("state") != "st-123" || q.Get("iss") != e.Issuer {
		t.Fatalf("redirect %v lacks code, state or iss", q)
	}
	tok := e.Exchange(c, q.Get("code"), v, nil)
	if tok.Status != http.StatusOK {
		t.Fatalf("token: %d %s", tok.Status, tok.Body)
	}
	m := tok.JSON(t)
	got := strings.Fields(m["scope"].(string))
	slices.Sort(got)
	if !slices.Equal(got, []string{epicme.ScopeEntriesRead, epicme.ScopeUserRead}) {
		t.Fatalf("the token has scopes %v, want only the ticked ones", got)
	}
	access := m["access_token"].(string)
	claims, err := e.Server.VerifyAccessToken(context.Background(), access)
	if err != nil || strings.Contains(claims.Scope, epicme.ScopeEntriesWrite) {
		t.Fatalf("access token claims %+v, %v", claims, err)
	}
	if s := mcpStatus(e, t, access); s != http.StatusOK {
		t.Fatalf("/mcp with the new token: %d", s)
	}

	// The grant is listed on Connected apps; revoking it stops the token
	// at /mcp at once.
	must(t, p.Navigate(e.Issuer+authserver.AppsPath))
	p.Screenshot("connected-apps")
	text := pageText(t, p)
	for _, want := range []string{"Test App", c.ID, epicme.ScopeDescriptions[epicme.ScopeEntriesRead], "First used", "Last used"} {
		if !strings.Contains(text, want) {
			t.Errorf("connected apps page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, epicme.ScopeDescriptions[epicme.ScopeEntriesWrite]) {
		t.Errorf("connected apps lists a scope that was not granted:\n%s", text)
	}
	must(t, p.Click(`form[action="`+authserver.AppsRevokePath+`"] button[type=submit]`))
	p.Screenshot("connected-apps-revoked")
	text = pageText(t, p)
	if !strings.Contains(text, "Access revoked") || !strings.Contains(text, "15 minutes") || strings.Contains(text, c.ID) {
		t.Fatalf("after revoking:\n%s", text)
	}
	if s := mcpStatus(e, t, access); s != http.StatusUnauthorized {
		t.Fatalf("/mcp with the revoked token: %d, want 401", s)
	}
	testserver.WantOAuthError(t, e.Refresh(c, m["refresh_token"].(string), nil), http.StatusBadRequest, "invalid_grant")
}

func TestBrowser_ExportHoldsOnlyTheUsersEntriesAndDeletionRemovesThem(t *testing.T) {
	b := chromium.Require(t)
	e := testserver.NewEnv(t)
	e.MountMCP()
	ctx := context.Background()
	hash, _ := password.HashWith("bob's password", testserver.PasswordParams)
	bob, err := e.DB.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "bob@example.com", PasswordHash: hash})
	must(t, err)
	mood := "glad"
	tag, err := e.DB.CreateTag(ctx, e.User.ID, epicme.NewTag{Name: "travel"})
	must(t, err)
	for _, title := range []string{"Alice in Lisbon", "Alice at home"} {
		_, err := e.DB.CreateEntry(ctx, e.User.ID, epicme.NewEntry{Title: title, Content: "Alice's own words about " + title, Mood: &mood, TagIDs: []int64{tag.ID}})
		must(t, err)
	}
	_, err = e.DB.CreateEntry(ctx, bob.ID, epicme.NewEntry{Title: "Bob's secret", Content: "Nobody else may read this."})
	must(t, err)

	// A token Alice gave a client earlier, to see it refused after the
	// deletion.
	c := e.PublicClient()
	access := e.Tokens(c)["access_token"].(string)

	p := newPage(t, b)
	must(t, p.Navigate(e.Issuer+authserver.AccountPath))
	p.Screenshot("account-sign-in")
	must(t, p.Fill("input[name=email]", testserver.Email))
	must(t, p.Fill("input[name=password]", testserver.Password))
	must(t, p.Click("form button[type=submit]"))
	p.Screenshot("account")
	if text := pageText(t, p); !strings.Contains(text, "Export your journal") || !strings.Contains(text, testserver.Email) {
		t.Fatalf("account page:\n%s", text)
	}

	path, name, err := p.Download(`button[name=format][value=json]`)
	must(t, err)
	raw, err := os.ReadFile(path)
	must(t, err)
	var x struct {
		User    struct{ ID, Email string }
		Entries []epicme.Entry
		Tags    []epicme.Tag
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatalf("the JSON export %s does not parse: %v", name, err)
	}
	if !strings.HasSuffix(name, ".json") || x.User.ID != e.User.ID || len(x.Entries) != 2 || len(x.Tags) != 1 || x.Tags[0].Name != "travel" {
		t.Fatalf("JSON export %s: %+v", name, x)
	}
	for _, en := range x.Entries {
		if en.UserID != e.User.ID || !strings.HasPrefix(en.Title, "Alice") || len(en.Tags) != 1 {
			t.Fatalf("exported entry %+v", en)
		}
	}
	if strings.Contains(string(raw), "Bob") || strings.Contains(string(raw), bob.ID) {
		t.Fatal("the export holds another user's data")
	}
	path, name, err = p.Download(`button[name=format][value=markdown]`)
	must(t, err)
	md, err := os.ReadFile(path)
	must(t, err)
	if !strings.HasSuffix(name, ".md") || !strings.Contains(string(md), "## Alice in Lisbon") || !strings.Contains(string(md), "Tags: travel") || strings.Contains(string(md), "Bob") {
		t.Fatalf("Markdown export %s:\n%s", name, md)
	}

	// Deletion asks for the email and the password.
	must(t, p.Fill("input[name=confirm_email]", testserver.Email))
	must(t, p.Fill("#delete-password", testserver.Password))
	p.Screenshot("account-delete-filled")
	must(t, p.Click(`form[action="`+authserver.AccountDeletePath+`"] button[type=submit]`))
	p.Screenshot("account-deleted")
	if text := pageText(t, p); !strings.Contains(text, "Account deleted") {
		t.Fatalf("after deletion:\n%s", text)
	}
	if _, err := e.DB.UserByID(ctx, e.User.ID); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("the user still exists: %v", err)
	}
	raw2, err := sql.Open("sqlite", e.DB.Path())
	must(t, err)
	defer raw2.Close()
	for _, table := range []string{"entries", "tags", "entry_tags", "oauth_grants", "oauth_consents", "oauth_codes"} {
		var n int
		must(t, raw2.QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE user_id = ?", e.User.ID).Scan(&n))
		if n != 0 {
			t.Errorf("%d rows of the deleted user remain in %s", n, table)
		}
	}
	if page, err := e.DB.ListEntries(ctx, bob.ID, epicme.EntryFilter{}); err != nil || len(page.Entries) != 1 {
		t.Fatalf("Bob's journal must stay: %+v, %v", page, err)
	}
	if s := mcpStatus(e, t, access); s != http.StatusUnauthorized {
		t.Fatalf("/mcp with a token of the deleted account: %d, want 401", s)
	}
}

func TestBrowser_SignUpThenConsent(t *testing.T) {
	b := chromium.Require(t)
	e := testserver.NewEnv(t, func(c *authserver.Config) { c.AllowSignUp = true })
	c := e.PublicClient()
	_, ch := testserver.PKCE()
	p := newPage(t, b)
	must(t, p.Navigate(e.AuthzURL(c, ch, nil)))
	p.Screenshot("sign-in-with-sign-up-link")
	must(t, p.Click(`a[href^="`+authserver.SignUpPath+`"]`))
	p.Screenshot("sign-up")
	must(t, p.Fill("input[name=email]", "carol@example.com"))
	must(t, p.Fill("input[name=password]", "carol's long password"))
	must(t, p.Fill("input[name=confirm]", "carol's long password"))
	must(t, p.Click("form button[type=submit]"))
	p.Screenshot("sign-up-consent")
	if ok, err := p.Has("button[name=decision]"); err != nil || !ok {
		t.Fatalf("after sign-up the consent page should show: %v\n%s", err, pageText(t, p))
	}
	if _, err := e.DB.LocalUserByEmail(context.Background(), "carol@example.com"); err != nil {
		t.Fatalf("the new account: %v", err)
	}
	// An unknown client gets an error page, never a redirect.
	must(t, p.Navigate(e.Issuer+authserver.AuthorizePath+"?client_id=nobody&response_type=code"))
	p.Screenshot("error")
	if text := pageText(t, p); !strings.Contains(text, "not registered") {
		t.Fatalf("error page:\n%s", text)
	}
	// Carol changes her password, then signs out.
	must(t, p.Navigate(e.Issuer+authserver.AccountPath))
	must(t, p.Fill("#current", "carol's long password"))
	must(t, p.Fill("#new", "carol's newer password"))
	must(t, p.Fill("#confirm", "carol's newer password"))
	must(t, p.Click(`form[action="`+authserver.AccountPasswordPath+`"] button[type=submit]`))
	p.Screenshot("password-changed")
	if text := pageText(t, p); !strings.Contains(text, "Your password is changed") {
		t.Fatalf("after changing the password:\n%s", text)
	}
	must(t, p.Click(`form[action="`+authserver.SignOutPath+`"] button[type=submit]`))
	p.Screenshot("signed-out")
	if text := pageText(t, p); !strings.Contains(text, "You are signed out") {
		t.Fatalf("after signing out:\n%s", text)
	}
	if ok, _ := p.Has("input[name=password]"); !ok {
		t.Fatal("signing out should show the sign-in form")
	}
}

func TestBrowser_GoSDKClientSignsInThroughThePages(t *testing.T) {
	b := chromium.Require(t)
	e := testserver.NewEnv(t)
	e.MountMCP()
	p := newPage(t, b)
	handler := gosdktest.Registering(t, "Go SDK in a browser", "http://127.0.0.1:8977/callback", func(_ context.Context, authURL string) (*url.URL, error) {
		return p.Authorize(chromium.Authorization{URL: authURL, Email: testserver.Email, Password: testserver.Password, Name: "go-sdk"})
	}, nil)
	session := gosdktest.Connect(t, e.Resource, "browser-e2e", handler, nil)
	res, err := session.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(testserver.ToolText(res), testserver.Email) {
		t.Fatalf("whoami: %v %+v", err, res)
	}
}
