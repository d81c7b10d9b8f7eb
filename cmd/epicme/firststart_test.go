package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
)

// TestFirstStartKeepsTheDemoSignInReachable runs the README's first command
// as a new user would, with an empty home directory: first with the port
// busy, then free, then once more. Whatever happened before, each start
// either prints the demo passwords or says how to get one back, and that
// command works.
func TestFirstStartKeepsTheDemoSignInReachable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "epicme")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	home := t.TempDir()
	dataDir := filepath.Join(home, ".local", "share", "epicme")
	addr := freeAddr(t)
	environ := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "EPICME_ADDR=" + addr}

	// 1. The port is busy: serve fails, says how to choose another, and
	// leaves the home directory as it was.
	busy, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	busy.Close()
	if code := cmd.ProcessState.ExitCode(); code != exitError || !strings.Contains(string(out), "the port is in use") || !strings.Contains(string(out), "--addr") {
		t.Fatalf("serve on a busy port: exit %d (%v)\n%s", code, err, out)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("a failed start created %s: %v", dataDir, err)
	}

	// 2. The port is free: the demo accounts are created and their
	// passwords printed.
	banner := serveUntilBanner(t, bin, environ)
	m := regexp.MustCompile(`sign in as demo@epicme\.local / (\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("first start printed no demo sign-in:\n%s", banner)
	}
	checkPassword(t, dataDir, m[1])

	// 3. Again: no password now, but the command that makes a new one.
	banner = serveUntilBanner(t, bin, environ)
	hint := "epicme user reset-password --email demo@epicme.local --generate"
	if strings.Contains(banner, "sign in as") || !strings.Contains(banner, hint) {
		t.Fatalf("second start should say how to get a password back:\n%s", banner)
	}
	cmd = exec.Command(bin, strings.Fields(hint)[1:]...)
	cmd.Env = environ
	got, err := cmd.Output()
	pw := regexp.MustCompile(`New password, shown only now: (\S+)`).FindSubmatch(got)
	if err != nil || pw == nil {
		t.Fatalf("%s: %v\n%s", hint, err, got)
	}
	checkPassword(t, dataDir, string(pw[1]))

	// 4. A database left without accounts (as a start before this fix
	// could leave it) gets the demo accounts on the next start.
	home2 := t.TempDir()
	environ2 := []string{"HOME=" + home2, "PATH=" + os.Getenv("PATH"), "EPICME_ADDR=" + addr}
	cmd = exec.Command(bin, "migrate")
	cmd.Env = environ2
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if banner := serveUntilBanner(t, bin, environ2); !strings.Contains(banner, "sign in as demo@epicme.local / ") {
		t.Fatalf("a database without accounts got no demo accounts:\n%s", banner)
	}
}

// serveUntilBanner runs "epicme serve", reads stdout up to "Press Ctrl-C to
// stop.", then stops it with SIGINT as a person would, and returns what it
// printed.
func serveUntilBanner(t *testing.T, bin string, environ []string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = environ
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if sc.Text() == "Press Ctrl-C to stop." {
				lines <- b.String()
				io.Copy(io.Discard, stdout)
				return
			}
		}
		lines <- b.String()
	}()
	var banner string
	select {
	case banner = <-lines:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no banner\nstderr: %s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\nstdout: %s\nstderr: %s", err, banner, stderr.String())
	}
	return banner
}

// checkPassword verifies that pw signs in as the demo account.
func checkPassword(t *testing.T, dataDir, pw string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dataDir, databaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.LocalUserByEmail(ctx, "demo@epicme.local")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := db.PasswordHash(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := password.Verify(pw, hash); !ok || err != nil {
		t.Fatalf("the printed password does not verify: %v", err)
	}
}
