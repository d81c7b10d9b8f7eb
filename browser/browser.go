// Package browser drives a real headless Chromium through EpicMe's web pages:
// it opens an OAuth authorization URL, signs in, narrows the consent and
// returns the redirect that carries the code, as a person would. The
// browser tests, the real-client tests and the conformance run all sign in
// through it, so that every one of them exercises the same pages, cookies,
// Content-Security-Policy and redirects a person's browser meets.
//
// It needs the Debian chromium package (/usr/bin/chromium, or the path in
// $EPICME_CHROMIUM). Tests call [Require], which skips them with
// [InstallHint] when the browser is missing.
//
// The browser runs with a fresh profile in a temporary directory, no
// background networking and a host resolver that resolves nothing but
// loopback names, so it never reaches past this machine.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/epicme/epicme/internal/testenv"
)

// InstallHint says how to get the browser the tests need.
const InstallHint = "install Debian chromium (apt-get install chromium) to run the browser tests; .ci/run does"

// DefaultExecPath is where Debian installs Chromium.
const DefaultExecPath = "/usr/bin/chromium"

// ExecPath returns the Chromium to run: $EPICME_CHROMIUM if set, else
// DefaultExecPath. It returns an error naming InstallHint when the file is
// not there.
func ExecPath() (string, error) {
	p := os.Getenv("EPICME_CHROMIUM")
	if p == "" {
		p = DefaultExecPath
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("browser: no Chromium at %s: %s", p, InstallHint)
	}
	return p, nil
}

// Require skips the test when Chromium is missing, and otherwise starts one
// for it, closed when the test ends. Screenshots go to the directory in
// $EPICME_ARTIFACTS_DIR (under a folder named after the test), else to a
// temporary directory of the test.
func Require(t testing.TB) *Browser {
	t.Helper()
	path, err := ExecPath()
	if err != nil {
		testenv.Missing(t, testenv.Chromium, InstallHint)
	}
	dir := ArtifactsDir(t)
	b, err := Start(context.Background(), Options{ExecPath: path, ArtifactsDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// ArtifactsDir returns the directory for the test's screenshots and
// downloads: $EPICME_ARTIFACTS_DIR/<test name> when the variable is set (CI
// keeps it), else a temporary directory removed after the test.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv("EPICME_ARTIFACTS_DIR")
	if root == "" {
		return t.TempDir()
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Options configure a Browser. The zero value runs DefaultExecPath with a
// phone-sized viewport and keeps no screenshots.
type Options struct {
	// ExecPath is the Chromium binary (default DefaultExecPath).
	ExecPath string
	// ArtifactsDir receives the screenshots (PNG) and downloads; "" keeps
	// no screenshots and downloads into a temporary directory.
	ArtifactsDir string
	// Width and Height are the viewport in CSS pixels (default 390×844, a
	// common phone), so screenshots show what a phone shows.
	Width, Height int64
	// Timeout bounds each step: a navigation, a click and the page it
	// leads to (default 20 seconds).
	Timeout time.Duration
	// Logf, when set, receives one line per step.
	Logf func(format string, args ...any)
}

// Browser is one running Chromium. Its pages are independent: each has its
// own cookies, as separate people would.
type Browser struct {
	opts     Options
	profile  string
	downDir  string
	allocCtx context.Context
	cancel   context.CancelFunc
	rootCtx  context.Context
	rootStop context.CancelFunc

	mu     sync.Mutex
	shots  int
	closed bool
}

// Start runs Chromium. Close it when done.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	if opts.ExecPath == "" {
		opts.ExecPath = DefaultExecPath
	}
	if _, err := exec.LookPath(opts.ExecPath); err != nil {
		return nil, fmt.Errorf("browser: cannot run %s: %v (%s)", opts.ExecPath, err, InstallHint)
	}
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 390, 844
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	profile, err := os.MkdirTemp("", "epicme-chromium-")
	if err != nil {
		return nil, err
	}
	b := &Browser{opts: opts, profile: profile}
	b.downDir = opts.ArtifactsDir
	if b.downDir == "" {
		b.downDir = filepath.Join(profile, "downloads")
	}
	if b.downDir, err = filepath.Abs(b.downDir); err != nil {
		return nil, err
	}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(opts.ExecPath),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Names resolve to nothing except loopback: whatever a page or
		// the browser itself asks for, no packet leaves this machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE ::1"),
		chromedp.WindowSize(int(opts.Width), int(opts.Height)),
	}
	b.allocCtx, b.cancel = chromedp.NewExecAllocator(context.WithoutCancel(ctx), flags...)
	b.rootCtx, b.rootStop = chromedp.NewContext(b.allocCtx)
	// The first Run starts the browser; it must not carry a timeout, which
	// would stop the whole browser when it fires.
	if err := chromedp.Do(b.rootCtx); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser: starting %s: %w", opts.ExecPath, err)
	}
	b.logf("started %s", opts.ExecPath)
	return b, nil
}

func (b *Browser) logf(format string, args ...any) {
	if b.opts.Logf != nil {
		b.opts.Logf("browser: "+format, args...)
	}
}

// Close stops Chromium and removes its profile.
func (b *Browser) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	if b.rootCtx != nil {
		ctx, cancel := context.WithTimeout(b.rootCtx, 5*time.Second)
		chromedp.Cancel(ctx)
		cancel()
		b.rootStop()
	}
	b.cancel()
	os.RemoveAll(b.profile)
}

// NewPage opens a tab in a fresh browser context: no cookies, no storage,
// as a new person. Close it when done.
func (b *Browser) NewPage() (*Page, error) {
	ctx, cancel := chromedp.NewContext(b.rootCtx, chromedp.WithNewBrowserContext())
	p := &Page{b: b, ctx: ctx, cancel: cancel}
	err := chromedp.Do(ctx, chromedp.EmulateViewport(b.opts.Width, b.opts.Height, chromedp.EmulateScale(2)))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("browser: opening a page: %w", err)
	}
	if err := os.MkdirAll(b.downDir, 0o755); err != nil {
		cancel()
		return nil, err
	}
	c := chromedp.FromContext(ctx)
	_, err = cdp.Call(ctx, c.Browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior:         cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName,
		BrowserContextID: c.BrowserContextID,
		DownloadPath:     b.downDir,
		EventsEnabled:    ptr(true),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("browser: allowing downloads: %w", err)
	}
	return p, nil
}

func ptr[T any](v T) *T { return &v }

// errNoRedirect is returned when the flow ended on a page rather than at the
// client's redirect URI.
var errNoRedirect = errors.New("browser: the flow did not reach the redirect URI")

// PageError reports that a page refused to go on: the sign-in refused the
// password, or the authorization server showed an error page. Message is the
// text of the page's alert.
type PageError struct {
	// Page is what the page was: "sign-in", "consent", "error" or
	// "unexpected".
	Page    string
	Message string
	// URL is the page's address, when it was an unexpected one.
	URL string
}

// Error implements the error interface.
func (e *PageError) Error() string {
	return fmt.Sprintf("browser: the %s page refused: %s", e.Page, e.Message)
}

// Is makes errors.Is(err, errNoRedirect) true.
func (e *PageError) Is(target error) bool { return target == errNoRedirect }

// cleanText collapses the whitespace of a page's text.
func cleanText(s string) string { return strings.Join(strings.Fields(s), " ") }
