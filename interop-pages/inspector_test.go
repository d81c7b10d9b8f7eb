// Package inspector runs the MCP Inspector CLI (npm @modelcontextprotocol/inspector,
// pinned in package.json and package-lock.json here) against a real
// "epicme serve" through the whole OAuth flow: the Inspector discovers the
// embedded authorization server, registers itself, prints the
// authorization URL, and the shared headless-Chromium driver (package
// browser) signs in and answers the consent page, whose redirect reaches
// the Inspector's callback listener. Enable it with:
//
//	npm ci --prefix interop-inspector
//	apt-get install chromium
package inspector

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
)

// folder is this directory, where node_modules holds the Inspector.
func folder(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func inspectorBin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; install Node.js, then run `npm ci --prefix interop-inspector` to enable the Inspector test")
	}
	bin := filepath.Join(folder(t), "node_modules", ".bin", "mcp-inspector")
	if _, err := os.Stat(bin); err != nil {
		t.Skip("interop-inspector/node_modules is missing; run `npm ci --prefix interop-inspector` to enable the Inspector test")
	}
	return bin
}

// freePort returns a loopback port nobody listens on now.
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

// serve builds and starts "epicme serve" on a fresh data directory bound
// to loopback, and returns its URL and the printed demo password.
func serve(t *testing.T) (base, demoPassword string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "epicme")
	build := exec.Command("go", "build", "-o", bin, "github.com/epicme/epicme/cmd/epicme")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building epicme: %v\n%s", err, out)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	re := regexp.MustCompile(`sign in as demo@epicme\.local / (\S+)`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return "http://" + addr, m[1]
		}
	}
	t.Fatalf("epicme serve printed no demo sign-in\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
	return "", ""
}

var authURL = regexp.MustCompile(`https?://\S+/oauth/authorize\?\S+`)

// TestInspectorCLICompletesTheFlowThroughThePages runs the Inspector's
// headless CLI: it calls whoami, which needs a token; the driver signs in
// as the demo user and leaves only user:read ticked; whoami answers with
// the demo user and exactly that scope.
func TestInspectorCLICompletesTheFlowThroughThePages(t *testing.T) {
	inspector := inspectorBin(t)
	b := browser.Require(t)
	base, pw := serve(t)
	page, err := b.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	callback := "http://" + freePort(t) + "/oauth/callback"
	cmd := exec.CommandContext(ctx, inspector, "--cli",
		"--server-url", base+"/mcp", "--transport", "http",
		"--method", "tools/call", "--tool-name", "whoami",
		"--callback-url", callback)
	// A private home and in-memory secrets: nothing of the run outlives
	// it. Interactive OAuth without a terminal must be allowed explicitly;
	// the Inspector prints the URL, which the driver opens.
	// An xdg-open that opens nothing keeps the Inspector from starting a
	// browser of its own.
	shim := t.TempDir()
	if err := os.WriteFile(filepath.Join(shim, "xdg-open"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MCP_INSPECTOR_SECRET_STORE=memory", "MCP_AUTO_OPEN_ENABLED=true",
		"PATH="+shim+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Dir = folder(t)
	var stdout lockedBuffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderrPipe, &stderr))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if u := authURL.FindString(sc.Text()); u != "" {
				select {
				case found <- u:
				default:
				}
			}
		}
	}()
	var signInErr error
	select {
	case u := <-found:
		_, signInErr = page.Authorize(browser.Authorization{
			URL: u, Email: "demo@epicme.local", Password: pw,
			Scopes: []string{"user:read"}, Deliver: true, Name: "inspector",
		})
	case <-ctx.Done():
		t.Fatalf("the Inspector printed no authorization URL\nstderr: %s", stderr.String())
	}
	if signInErr != nil {
		t.Fatalf("signing in for the Inspector: %v\nstderr: %s", signInErr, stderr.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the Inspector failed: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var res struct {
		StructuredContent struct {
			User   struct{ Email string }
			Scopes []string
		}
	}
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		t.Fatalf("the Inspector's output is not the tool result: %v\n%s", err, stdout.String())
	}
	if res.StructuredContent.User.Email != "demo@epicme.local" || strings.Join(res.StructuredContent.Scopes, " ") != "user:read" {
		t.Fatalf("whoami through the Inspector: %+v", res.StructuredContent)
	}
}
