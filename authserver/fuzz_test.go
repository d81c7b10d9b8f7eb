package authserver_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/authserver/internal/testserver"
)

// serveForm posts body to path on the server's handler (no network, so the
// fuzzer runs fast) and returns the recorded answer.
func serveForm(h http.Handler, path, body, basic string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.SetBasicAuth(basic, "secret")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzTokenForm: any form body and client id at the token endpoint
// (RFC 6749 §3.2) is answered with a JSON OAuth error, never a 500 and
// never a token, since the fuzzer cannot know a code or refresh token.
func FuzzTokenForm(f *testing.F) {
	e := testserver.NewEnv(f)
	c := e.ConfidentialClient()
	for _, s := range []string{
		"grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&code_verifier=" + strings.Repeat("a", 43),
		"grant_type=refresh_token&refresh_token=abc",
		"grant_type=client_credentials", "grant_type=password&username=a&password=b", "",
		"grant_type=authorization_code&grant_type=refresh_token", "resource=https%3A%2F%2Fevil.example&grant_type=refresh_token",
		"%zz=1", "a=%00%ff", strings.Repeat("x=1&", 100), "client_id=" + c.ID + "&client_secret=wrong&grant_type=refresh_token&refresh_token=x",
	} {
		f.Add(s, c.ID)
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, body, basic string) {
		if strings.ContainsAny(basic, ":\x00") {
			return
		}
		rec := serveForm(e.Mux, authserver.TokenPath, body, basic)
		var m map[string]any
		if rec.Code == http.StatusOK || rec.Code >= 500 || json.Unmarshal(rec.Body.Bytes(), &m) != nil || m["error"] == nil {
			t.Fatalf("token endpoint answered %d %q to %q", rec.Code, rec.Body, body)
		}
	})
}

// FuzzSignInForm: any sign-in form body is refused (bad CSRF token, bad
// request, wrong password, or backoff), never a 500 and never a session.
func FuzzSignInForm(f *testing.F) {
	e := testserver.NewEnv(f)
	for _, s := range []string{
		"csrf=x&request=y&email=" + testserver.Email + "&password=" + testserver.Password,
		"email=a%40b&password=", "csrf=&request=&next=https%3A%2F%2Fevil.example", "%zz", "email=" + strings.Repeat("a", 5000),
		"request=" + strings.Repeat("A", 2000) + "&csrf=" + strings.Repeat("B", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := serveForm(e.Mux, authserver.SignInPath, body, "")
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("sign-in answered %d to %q", rec.Code, body)
		}
		for _, ck := range rec.Result().Cookies() {
			if ck.MaxAge > 0 && strings.Contains(strings.ToLower(ck.Name), "session") {
				t.Fatalf("a session cookie for %q", body)
			}
		}
	})
}
