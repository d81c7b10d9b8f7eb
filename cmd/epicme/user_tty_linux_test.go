package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal: what a person
// types goes into the primary, the program reads the replica as a terminal.
func openPTY(t *testing.T) (primary, replica *os.File) {
	t.Helper()
	primary, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { primary.Close() })
	if err := unix.IoctlSetPointerInt(int(primary.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(primary.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	replica, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close() })
	return primary, replica
}

// TestUserAddOnATerminalDoesNotEchoThePassword runs "user add" with a
// terminal as stdin: it prompts, and while it waits for the password the
// terminal's echo is off; after it, echo is back on.
func TestUserAddOnATerminalDoesNotEchoThePassword(t *testing.T) {
	primary, replica := openPTY(t)
	echoing := func() bool {
		tio, err := unix.IoctlGetTermios(int(replica.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag&unix.ECHO != 0
	}
	if !echoing() {
		t.Fatal("a new terminal should echo")
	}
	c := newCLI(t)
	var stdout, stderr syncBuffer
	e := c.env("", &stdout, &stderr)
	e.stdin = replica
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), []string{"user", "add", "--email", "tty@example.com"}, e) }()

	testenv.Eventually(t, 10*time.Second, func() error {
		if echoing() {
			return fmt.Errorf("echo is on while user add waits for the password; stderr %q", stderr.String())
		}
		return nil
	})
	if want := "Password for tty@example.com (at least 8 characters): "; stderr.String() != want {
		t.Errorf("prompt %q, want %q", stderr.String(), want)
	}
	if _, err := primary.WriteString("correct horse battery\n"); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("user add: exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
	}
	if !echoing() {
		t.Error("echo was not restored")
	}
	db, err := sqlite.Open(context.Background(), c.dataDir()+"/epicme.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.LocalUserByEmail(context.Background(), "tty@example.com")
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := db.PasswordHash(context.Background(), u.ID)
	if ok, _, _ := password.Verify("correct horse battery", hash); !ok {
		t.Fatal("the typed password does not verify")
	}
}

// From a pipe there is no prompt: the first line is the password.
func TestUserAddFromAPipeReadsOneLineWithoutPrompt(t *testing.T) {
	c := newCLI(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"user", "add", "--email", "pipe@example.com"}, c.env("piped password 1\nignored\n", &stdout, &stderr))
	if code != 0 || stderr.String() != "" || strings.Contains(stdout.String(), "piped password") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	code = run(context.Background(), []string{"user", "add", "--email", "empty@example.com"}, c.env("", &stdout, &stderr))
	if want := "epicme user: no password: give --password or one line on stdin\nRun \"epicme user --help\" for usage.\n"; code != exitUsage || !strings.HasSuffix(stderr.String(), want) {
		t.Fatalf("empty stdin: exit %d, stderr %q", code, stderr.String())
	}
}
