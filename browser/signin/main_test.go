package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epicme/epicme/internal/testenv"

	"github.com/epicme/epicme/browser"
)

// TestSigninPrintsTheRedirect builds the command and runs it as another
// language's test would: the URL on the command line, the password in the
// environment, the redirect on stdout; a refused password exits 1.
func TestSigninPrintsTheRedirect(t *testing.T) {
	if _, err := browser.ExecPath(); err != nil {
		testenv.Missing(t, testenv.Chromium, browser.InstallHint)
	}
	bin := filepath.Join(t.TempDir(), "signin")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alert := ""
		if r.Method == http.MethodPost {
			r.ParseForm()
			if r.PostForm.Get("password") == "right" {
				http.Redirect(w, r, "http://127.0.0.1:1/cb?code=xyz", http.StatusFound)
				return
			}
			alert = `<p role="alert">The email or password is wrong.</p>`
		}
		fmt.Fprintf(w, `<!doctype html>%s<form method="post"><input name="email"><input name="password" type="password" autocomplete="current-password"><button type="submit">Sign in</button></form>`, alert)
	}))
	defer ts.Close()
	authz := ts.URL + "/?client_id=c&redirect_uri=http://127.0.0.1:1/cb"

	cmd := exec.Command(bin, "-url", authz, "-email", "a@example.com")
	cmd.Env = append(cmd.Environ(), "EPICME_SIGNIN_PASSWORD=right", "EPICME_ARTIFACTS_DIR=")
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "http://127.0.0.1:1/cb?code=xyz" {
		t.Fatalf("signin printed %q, %v", out, err)
	}

	cmd = exec.Command(bin, "-wait-url", "-email", "a@example.com", "-password", "wrong")
	cmd.Stdin = strings.NewReader("Please open: " + authz + "\n")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "The email or password is wrong.") {
		t.Fatalf("a refused password: %v\n%s", err, out)
	}
}
