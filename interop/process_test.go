package interop

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
)

// requireNode skips t unless node and the npm packages pinned by
// package-lock.json are installed, and returns the node executable.
func requireNode(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, testenv.Node, "node is not installed; install Node.js 20 or later, then run `npm ci --prefix interop` to enable the interop tests")
	}
	for _, pkg := range []string{"oidc-provider", "@modelcontextprotocol/sdk", "@modelcontextprotocol/client"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg, "package.json")); err != nil {
			testenv.Missing(t, testenv.Node, "interop/node_modules/"+pkg+" is missing; run `npm ci --prefix interop` to enable the interop tests")
		}
	}
	return node
}

// lockedBuffer collects a child's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a child program that lives as long as the test.
type process struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line
	stderr *lockedBuffer
	done   chan struct{}
}

// startProcess starts cmd and stops it when t ends: it closes the child's
// stdin (the Node programs also exit on that, should the test binary die)
// and sends it SIGTERM, then kills it if it lingers. The child's stderr is shown when the test fails.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, lines: make(chan string, 64), stderr: &lockedBuffer{}, done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is reading; drop rather than block the child
			}
		}
		close(p.lines)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			if s := strings.TrimSpace(p.stderr.String()); s != "" {
				t.Logf("%s stderr:\n%s", name, s)
			}
		}
	})
	return p
}

// firstLine waits for the child's first line on stdout, which the Node
// programs print when they are ready.
func (p *process) firstLine(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
		}
		return line
	case <-time.After(timeout):
		t.Fatalf("%s was not ready within %v\n%s", p.name, timeout, p.stderr.String())
	}
	return ""
}

// stop ends the child; it may be called more than once.
func (p *process) stop() {
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// runNode runs a Node script to completion and returns its stdout. It fails
// the test, showing stderr, if the script fails.
func runNode(t *testing.T, timeout time.Duration, env []string, script string, args ...string) string {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
