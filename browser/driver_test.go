package browser_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/epicme/epicme/browser"
)

// signInServer is a stand-in sign-in page with EpicMe's strict
// Content-Security-Policy: the right password redirects to the client, a
// wrong one shows the form again with an alert.
func signInServer(t *testing.T) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self' http://127.0.0.1:1")
		alert := ""
		if r.Method == http.MethodPost {
			r.ParseForm()
			if r.PostForm.Get("email") == "a@example.com" && r.PostForm.Get("password") == "right" {
				http.Redirect(w, r, "http://127.0.0.1:1/cb?code=abc&state=x", http.StatusFound)
				return
			}
			alert = `<p role="alert">The email or password is wrong.</p>`
		}
		fmt.Fprintf(w, `<!doctype html><title>Sign in</title>%s<form method="post"><input name="email"><input name="password" type="password" autocomplete="current-password"><button type="submit">Sign in</button></form>`, alert)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestAuthorizeFollowsRedirectToClient(t *testing.T) {
	b := browser.Require(t)
	ts := signInServer(t)
	p, err := b.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u, err := p.Authorize(browser.Authorization{URL: ts.URL + "/?redirect_uri=http://127.0.0.1:1/cb", Email: "a@example.com", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "127.0.0.1:1" || u.Query().Get("code") != "abc" || u.Query().Get("state") != "x" {
		t.Fatalf("redirect %s", u)
	}
}

func TestAuthorizeReportsRefusedSignIn(t *testing.T) {
	b := browser.Require(t)
	ts := signInServer(t)
	p, err := b.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Authorize(browser.Authorization{URL: ts.URL + "/?redirect_uri=http://127.0.0.1:1/cb", Email: "a@example.com", Password: "wrong"})
	var pe *browser.PageError
	if !errors.As(err, &pe) || pe.Page != "sign-in" || pe.Message != "The email or password is wrong." {
		t.Fatalf("want the sign-in page's refusal, got %v", err)
	}
}
