package browser

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// Authorization is one run through the authorization server's pages.
type Authorization struct {
	// URL is the authorization request (RFC 6749 §4.1.1), as a client
	// would open it in the user's browser.
	URL string
	// Email and Password sign in when the sign-in page shows.
	Email, Password string
	// Scopes, when not nil, are the scopes left ticked on the consent page;
	// every other box is unticked. Nil leaves the page as it is.
	Scopes []string
	// Deny presses Deny instead of Allow.
	Deny bool
	// RedirectURI is where the flow ends (default: the redirect_uri of URL).
	RedirectURI string
	// Deliver lets the browser load the redirect URI, for a real client
	// listening there. Otherwise the driver answers that request itself
	// with a short page, and nothing reaches the redirect URI.
	Deliver bool
	// Name prefixes the screenshots of this run (default "authorize").
	Name string
}

// Authorize opens a.URL, signs in and answers the consent page as a asks,
// and returns the URL the authorization server redirected to: the client's
// redirect URI with code, state and iss (or error). Pages seen on the way
// are saved as screenshots. When a page refuses (a wrong password, an error
// page), it returns a *PageError with the page's message.
func (p *Page) Authorize(a Authorization) (*url.URL, error) {
	if a.Name == "" {
		a.Name = "authorize"
	}
	target := a.RedirectURI
	if target == "" {
		u, err := url.Parse(a.URL)
		if err != nil {
			return nil, fmt.Errorf("browser: authorization URL: %w", err)
		}
		target = u.Query().Get("redirect_uri")
		if target == "" {
			return nil, errors.New("browser: the authorization URL has no redirect_uri; set Authorization.RedirectURI")
		}
	}
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	arrived, err := p.watchRedirect(ctx, target, a.Deliver)
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, dcancel := p.step()
		chromedp.Do(dctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := callT(ctx, t, fetch.Disable)
			return err
		}))
		dcancel()
	}()

	done := func() (*url.URL, bool) {
		select {
		case u := <-arrived:
			return u, true
		default:
			return nil, false
		}
	}
	if err := p.Navigate(a.URL); err != nil {
		if u, ok := done(); ok {
			return u, nil
		}
		return nil, err
	}
	signedIn := false
	for range 6 {
		if u, ok := done(); ok {
			p.b.logf("redirected to %s", redactCode(u))
			return u, nil
		}
		kind, err := p.pageKind()
		if err != nil {
			if u, ok := done(); ok {
				return u, nil
			}
			return nil, err
		}
		switch kind {
		case "sign-in":
			if signedIn {
				p.Screenshot(a.Name + "-sign-in-refused")
				return nil, &PageError{Page: "sign-in", Message: p.alertText()}
			}
			p.Screenshot(a.Name + "-sign-in")
			if err := p.Fill("input[name=email]", a.Email); err != nil {
				return nil, err
			}
			if err := p.Fill("input[name=password]", a.Password); err != nil {
				return nil, err
			}
			signedIn = true
			err = p.Click("form button[type=submit]")
		case "consent":
			p.Screenshot(a.Name + "-consent")
			if a.Scopes != nil {
				if err := p.tickScopes(a.Scopes); err != nil {
					return nil, err
				}
			}
			button := `button[name=decision][value=allow]`
			if a.Deny {
				button = `button[name=decision][value=deny]`
			}
			err = p.Click(button)
		case "error":
			p.Screenshot(a.Name + "-error")
			return nil, &PageError{Page: "error", Message: p.alertText()}
		default:
			if u, ok := done(); ok {
				return u, nil
			}
			p.Screenshot(a.Name + "-unexpected")
			where, _ := p.URL()
			return nil, &PageError{Page: "unexpected", Message: p.alertText(), URL: where}
		}
		if err != nil {
			if u, ok := done(); ok {
				return u, nil
			}
			return nil, err
		}
	}
	return nil, errNoRedirect
}

// tickScopes leaves ticked exactly the scope boxes named.
func (p *Page) tickScopes(scopes []string) error {
	shown, err := eval[[]string](p, `Array.from(document.querySelectorAll('input[type=checkbox][name=scope]')).map(function(e){return e.value})`)
	if err != nil {
		return err
	}
	for _, s := range scopes {
		if !slices.Contains(shown, s) {
			return fmt.Errorf("browser: the consent page offers no scope %q (it offers %v)", s, shown)
		}
	}
	for _, s := range shown {
		if err := p.SetChecked(fmt.Sprintf(`input[type=checkbox][name=scope][value=%q]`, s), slices.Contains(scopes, s)); err != nil {
			return err
		}
	}
	return nil
}

// watchRedirect intercepts requests to the redirect URI and sends the first
// one's URL on the returned channel. Without deliver, it answers them with a
// page of its own, so a redirect URI nobody listens on still ends the flow.
func (p *Page) watchRedirect(ctx context.Context, target string, deliver bool) (<-chan *url.URL, error) {
	arrived := make(chan *url.URL, 1)
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	pattern := escapePattern(target) + "*"
	sctx, cancel := p.step()
	defer cancel()
	err := chromedp.Do(sctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := callT(ctx, t, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}})
		return err
	}))
	if err != nil {
		return nil, fmt.Errorf("browser: intercepting the redirect: %w", err)
	}
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			u, perr := url.Parse(ev.Request.URL + ev.Request.URLFragment)
			matches := perr == nil && strings.HasPrefix(ev.Request.URL, target)
			if matches {
				select {
				case arrived <- u:
				default:
				}
			}
			chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				if deliver || !matches {
					_, err := callT(ctx, t, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
					return err
				}
				_, err := callT(ctx, t, fetch.FulfillRequest, fetch.FulfillRequestParams{
					RequestID:    ev.RequestID,
					ResponseCode: 200,
					ResponseHeaders: []*fetch.HeaderEntry{
						{Name: "Content-Type", Value: "text/html; charset=utf-8"},
					},
					Body: []byte(`<!doctype html><title>Back at the application</title><p>The authorization server sent the browser back to the application.</p>`),
				})
				return err
			}))
		}
	}()
	return arrived, nil
}

// escapePattern escapes the wildcards of a Fetch URL pattern.
func escapePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)
	return r.Replace(s)
}

// redactCode hides the code of a redirect in logs.
func redactCode(u *url.URL) string {
	c := *u
	q := c.Query()
	if q.Has("code") {
		q.Set("code", "…")
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// callT sends one DevTools command to the tab.
func callT[P, R any](ctx context.Context, t *chromedp.Target, c cdp.Command[P, R], params ...P) (R, error) {
	var p P
	if len(params) > 0 {
		p = params[0]
	}
	return cdp.Call(ctx, t, c, p)
}
