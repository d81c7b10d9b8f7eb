// Command signin completes an OAuth authorization in headless Chromium with
// the shared driver (package browser), for tests written in other languages
// (the Node interop tests, the MCP Inspector, the conformance suite): it
// opens the authorization URL, signs in, answers the consent page and
// prints the URL the authorization server redirected to.
//
//	go run ./browser/signin -url "$AUTHZ_URL" -email demo@epicme.local -password "$PW" [-scope "user:read entries:read"] [-deliver]
//
// With -deliver the browser goes on to the redirect URI, for a client that
// listens there for the code; otherwise the driver answers that request
// itself. -url - reads the URL from the first line of stdin; -wait-url
// waits for a line of stdin containing an http URL (as clients print it).
// The password may come from $EPICME_SIGNIN_PASSWORD instead of the command
// line. Exit status 1 means the pages refused (the message says why), 2 a
// wrong command line.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/epicme/epicme/browser"
)

func main() {
	var (
		authURL, email, pw, scope, shots, redirect string
		deliver, deny, waitURL                     bool
		timeout                                    time.Duration
	)
	flag.StringVar(&authURL, "url", "", "the authorization `URL` (- for the first line of stdin)")
	flag.BoolVar(&waitURL, "wait-url", false, "read stdin until a line holds an http(s) URL, and use the first such URL")
	flag.StringVar(&email, "email", "", "`email` to sign in with")
	flag.StringVar(&pw, "password", os.Getenv("EPICME_SIGNIN_PASSWORD"), "`password` (default $EPICME_SIGNIN_PASSWORD)")
	flag.StringVar(&scope, "scope", "", "space-separated `scopes` to leave ticked on the consent page (default: as shown)")
	flag.BoolVar(&deny, "deny", false, "press Deny on the consent page")
	flag.BoolVar(&deliver, "deliver", false, "let the browser load the redirect URI (a client listens there)")
	flag.StringVar(&redirect, "redirect-uri", "", "where the flow ends (default: the redirect_uri of the URL)")
	flag.StringVar(&shots, "screenshots", os.Getenv("EPICME_ARTIFACTS_DIR"), "`directory` for PNG screenshots of each page (default $EPICME_ARTIFACTS_DIR)")
	flag.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if waitURL {
		authURL = firstURL(os.Stdin)
	} else if authURL == "-" {
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		authURL = strings.TrimSpace(line)
	}
	if authURL == "" || email == "" || pw == "" {
		fmt.Fprintln(os.Stderr, "signin: -url (or -wait-url), -email and -password are required")
		flag.Usage()
		os.Exit(2)
	}
	path, err := browser.ExecPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signin:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := browser.Start(ctx, browser.Options{ExecPath: path, ArtifactsDir: shots})
	if err != nil {
		fmt.Fprintln(os.Stderr, "signin:", err)
		os.Exit(1)
	}
	defer b.Close()
	p, err := b.NewPage()
	if err != nil {
		fmt.Fprintln(os.Stderr, "signin:", err)
		os.Exit(1)
	}
	a := browser.Authorization{URL: authURL, Email: email, Password: pw, Deny: deny, Deliver: deliver, RedirectURI: redirect, Name: "signin"}
	if scope != "" {
		a.Scopes = strings.Fields(scope)
	}
	done := make(chan error, 1)
	var out string
	go func() {
		u, err := p.Authorize(a)
		if err == nil {
			out = u.String()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = errors.New("timed out")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "signin:", err)
		os.Exit(1)
	}
	if deliver {
		// Give the client a moment to read its callback before the
		// browser goes away.
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Println(out)
}

var urlPattern = regexp.MustCompile(`https?://[^\s"'<>]+`)

// firstURL reads lines until one holds an http(s) URL that looks like an
// authorization request.
func firstURL(f *os.File) string {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, u := range urlPattern.FindAllString(sc.Text(), -1) {
			if strings.Contains(u, "response_type=") || strings.Contains(u, "client_id=") {
				return u
			}
		}
	}
	return ""
}
