package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Page is one tab with its own cookies.
type Page struct {
	b      *Browser
	ctx    context.Context
	cancel context.CancelFunc
	marks  int
}

// Close closes the tab and forgets its cookies.
func (p *Page) Close() { p.cancel() }

func (p *Page) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, p.b.opts.Timeout)
}

// eval runs a JavaScript expression in the page and decodes its JSON value
// into T. DevTools evaluation is not subject to the page's
// Content-Security-Policy, so it works on pages that forbid scripts.
func eval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := p.step()
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// Navigate loads u and waits for the page.
func (p *Page) Navigate(u string) error {
	ctx, cancel := p.step()
	defer cancel()
	p.b.logf("navigate %s", u)
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		return fmt.Errorf("browser: opening %s: %w", u, err)
	}
	return nil
}

// URL is the address of the current page.
func (p *Page) URL() (string, error) {
	ctx, cancel := p.step()
	defer cancel()
	return chromedp.Run(ctx, chromedp.Location())
}

// Text returns the visible text of the first element matching the CSS
// selector, whitespace collapsed; "" when nothing matches.
func (p *Page) Text(selector string) (string, error) {
	s, err := eval[string](p, fmt.Sprintf(`(function(){var e=document.querySelector(%s);return e?e.innerText:""})()`, jsString(selector)))
	return cleanText(s), err
}

// Has reports whether an element matches the CSS selector.
func (p *Page) Has(selector string) (bool, error) {
	return eval[bool](p, fmt.Sprintf(`document.querySelector(%s)!==null`, jsString(selector)))
}

// Fill sets the value of the input matching the CSS selector.
func (p *Page) Fill(selector, value string) error {
	ok, err := eval[bool](p, fmt.Sprintf(`(function(){var e=document.querySelector(%s);if(!e)return false;e.value=%s;return true})()`, jsString(selector), jsString(value)))
	if err == nil && !ok {
		err = fmt.Errorf("browser: no field %s on the page", selector)
	}
	return err
}

// SetChecked ticks or unticks the checkbox matching the CSS selector.
func (p *Page) SetChecked(selector string, checked bool) error {
	ok, err := eval[bool](p, fmt.Sprintf(`(function(){var e=document.querySelector(%s);if(!e)return false;e.checked=%t;return true})()`, jsString(selector), checked))
	if err == nil && !ok {
		err = fmt.Errorf("browser: no checkbox %s on the page", selector)
	}
	return err
}

// Click clicks the element matching the CSS selector with the mouse, and
// waits for the page it leads to (a form's answer or a link's target).
func (p *Page) Click(selector string) error {
	p.marks++
	mark := p.marks
	// The mark lives on the old document's window: its absence tells the
	// new document apart, whatever its address.
	if _, err := eval[bool](p, fmt.Sprintf(`(window.__epicmeMark=%d)>0`, mark)); err != nil {
		return fmt.Errorf("browser: marking the page: %w", err)
	}
	ctx, cancel := p.step()
	defer cancel()
	p.b.logf("click %s", selector)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		return fmt.Errorf("browser: clicking %s: %w", selector, err)
	}
	return p.waitNewDocument(ctx, mark)
}

func (p *Page) waitNewDocument(ctx context.Context, mark int) error {
	expr := fmt.Sprintf(`window.__epicmeMark===%d?"old":document.readyState`, mark)
	for {
		// Evaluation fails while the old document unloads; try again.
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err == nil && state == "complete" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("browser: waiting for the next page: %w", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Screenshot saves a PNG of the whole page as <n>-<name>.png in the
// artifacts directory and returns its path ("" when screenshots are not
// kept). The number keeps the files in the order they were taken.
func (p *Page) Screenshot(name string) (string, error) {
	dir := p.b.opts.ArtifactsDir
	if dir == "" {
		return "", nil
	}
	ctx, cancel := p.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("browser: screenshot %s: %w", name, err)
	}
	p.b.mu.Lock()
	p.b.shots++
	n := p.b.shots
	p.b.mu.Unlock()
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", err
	}
	p.b.logf("screenshot %s", path)
	return path, nil
}

// Download clicks the element matching the CSS selector, waits for the file
// it downloads and returns its path and the name the server suggested.
func (p *Page) Download(selector string) (path, suggested string, err error) {
	ctx, cancel := p.step()
	defer cancel()
	begin := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	p.b.logf("download via %s", selector)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector))); err != nil {
		return "", "", fmt.Errorf("browser: clicking %s: %w", selector, err)
	}
	var guid string
	for ev, err := range begin {
		if err != nil {
			return "", "", fmt.Errorf("browser: waiting for the download to begin: %w", err)
		}
		guid, suggested = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			return "", "", fmt.Errorf("browser: waiting for the download: %w", err)
		}
		if ev.GUID != guid {
			continue
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			path = ev.FilePath
			if path == "" {
				path = filepath.Join(p.b.downDir, guid)
			}
			return path, suggested, nil
		case cdpbrowser.DownloadProgressStateCanceled:
			return "", "", errors.New("browser: the download was canceled")
		}
	}
	return "", "", errors.New("browser: the download did not finish")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// pageKind tells which of EpicMe's pages is showing.
func (p *Page) pageKind() (string, error) {
	return eval[string](p, `document.querySelector('input[name=password][autocomplete=current-password]')?"sign-in":
		document.querySelector('button[name=decision]')?"consent":
		document.querySelector('[role=alert]')?"error":"other"`)
}

// alertText is the text of the page's alert, or of its main heading.
func (p *Page) alertText() string {
	if s, _ := p.Text("[role=alert]"); s != "" {
		return s
	}
	s, _ := p.Text("body")
	return strings.TrimSpace(s)
}
