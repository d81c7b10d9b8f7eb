package main

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The messages below are what a person at the terminal reads; each test
// holds the exact text, so that a change to one is a decision.

func TestMessage_UnknownFlagNamesTheClosestOne(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--port", "9000"}, "epicme serve: unknown flag --port (did you mean --addr?)\nRun \"epicme serve --help\" for usage.\n"},
		{[]string{"serve", "--data-dri", "x"}, "epicme serve: unknown flag --data-dri (did you mean --data-dir?)\nRun \"epicme serve --help\" for usage.\n"},
		{[]string{"migrate", "--zzzzzzzz"}, "epicme migrate: unknown flag --zzzzzzzz\nRun \"epicme migrate --help\" for usage.\n"},
		{[]string{"serve", "--addr"}, "epicme serve: flag needs an argument: --addr\nRun \"epicme serve --help\" for usage.\n"},
	} {
		code, out, errOut := newCLI(t).run("", tc.args...)
		if code != exitUsage || out != "" || errOut != tc.want {
			t.Errorf("epicme %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestMessage_NonLoopbackAddressNeedsAnHTTPSPublicURL(t *testing.T) {
	code, _, errOut := newCLI(t).run("", "serve", "--addr", "0.0.0.0:8080")
	want := "epicme serve: --addr 0.0.0.0:8080 is not a loopback address: clients on other machines reach this server at an https URL it cannot guess; give it with --public-url https://… (see docs/deployment.md)\nRun \"epicme serve --help\" for usage.\n"
	if code != exitUsage || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// A plain-http public URL while listening beyond loopback is served, with a
// warning; with no accounts and sign-up off (the default there), serve says
// that nobody can sign in yet.
func TestMessage_ClearTextAndNoAccounts(t *testing.T) {
	s := startServeAt(t, newCLI(t), "0.0.0.0:0", "--public-url", "http://127.0.0.1:8080")
	warning := "WARNING: 0.0.0.0:0 is reachable from other machines, but --public-url http://127.0.0.1:8080 is plain http:\npasswords and tokens would travel in clear text. Put an https proxy in front and give its URL\nwith --public-url https://… (see docs/deployment.md).\n"
	if !strings.Contains(s.stderr.String(), warning) {
		t.Errorf("stderr lacks the clear-text warning:\n%s", s.stderr)
	}
	notice := "\nNo accounts yet, and sign-up is off (the default beyond loopback): nobody can sign in.\nAdd an account with  epicme user add --email you@example.com  or turn sign-up on with --allow-signup.\n"
	if out := s.stdout.String(); !strings.Contains(out, notice) || strings.Contains(out, "demo@epicme.local") {
		t.Errorf("stdout lacks the no-accounts notice, or shows demo accounts:\n%s", out)
	}
}

// Behind a proxy (listening on loopback, reached at an https URL) a
// database without accounts gets no demo accounts: they are for a
// developer's own machine.
func TestServeBehindAProxyCreatesNoDemoAccounts(t *testing.T) {
	s := startServe(t, newCLI(t), "--public-url", "https://journal.example.com")
	if out := s.stdout.String(); strings.Contains(out, "demo@epicme.local") {
		t.Fatalf("demo accounts behind a proxy:\n%s", out)
	}
}

func TestMessage_PublicURLWithTheMCPPath(t *testing.T) {
	code, _, errOut := newCLI(t).run("", "serve", "--public-url", "http://127.0.0.1:8080/mcp")
	want := "epicme serve: --public-url \"http://127.0.0.1:8080/mcp\" names the MCP endpoint; give the server's URL without /mcp: --public-url http://127.0.0.1:8080\nRun \"epicme serve --help\" for usage.\n"
	if code != exitUsage || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// A plain-http public URL that is not loopback is refused in the
// authorization server's words, without its package name.
func TestMessage_PlainHTTPPublicURLElsewhere(t *testing.T) {
	code, _, errOut := newCLI(t).run("", "serve", "--addr", "127.0.0.1:0", "--public-url", "http://journal.example.com")
	want := "epicme serve: issuer \"http://journal.example.com\" must use https unless it is a loopback address (set --public-url to the https URL clients use)\nRun \"epicme serve --help\" for usage.\n"
	if code != exitUsage || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

func TestMessage_DataDirectoryThatCannotBeCreated(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(home, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, vars: map[string]string{"HOME": home}}
	code, _, errOut := c.run("", "serve", "--addr", "127.0.0.1:0")
	want := "epicme serve: cannot create the default data directory " + home + "/.local/share/epicme: not a directory; choose a directory you can write with --data-dir DIR (or EPICME_DATA_DIR)\n"
	if code != exitError || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
	c.vars["EPICME_DATA_DIR"] = filepath.Join(home, "data")
	code, _, errOut = c.run("", "migrate")
	want = "epicme migrate: cannot create --data-dir " + home + "/data: not a directory; choose a directory you can write with --data-dir DIR (or EPICME_DATA_DIR)\n"
	if code != exitError || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// A busy port fails before the data directory is touched, and says how to
// pick another port.
func TestMessage_PortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	c := newCLI(t)
	code, _, errOut := c.run("", "serve", "--addr", addr)
	want := "epicme serve: cannot listen on " + addr + ": the port is in use (another epicme serve?); choose a free one with --addr, e.g. --addr 127.0.0.1:8081\n"
	if code != exitError || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
	if _, err := os.Stat(c.dataDir()); !os.IsNotExist(err) {
		t.Errorf("a failed start touched the data directory: %v", err)
	}
}

// Both kinds of "no such thing" exit 1, with the command that lists what
// there is.
func TestMessage_UnknownGrantAndClientExitAlike(t *testing.T) {
	c := newCLI(t)
	c.mustRun("migrate")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"grant", "revoke", "nosuchid"}, "epicme grant: grant \"nosuchid\" not found (see epicme grant list --all)\n"},
		{[]string{"client", "remove", "nosuch"}, "epicme client: client \"nosuch\" not found (see epicme client list)\n"},
	} {
		code, _, errOut := c.run("", tc.args...)
		if code != exitError || errOut != tc.want {
			t.Errorf("epicme %v: exit %d, stderr %q; want exit 1 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestMessage_BackupSaysItsNameOnce(t *testing.T) {
	c := newCLI(t)
	c.mustRun("migrate")
	out := filepath.Join(t.TempDir(), "copy.db")
	c.mustRun("backup", "--out", out)
	code, _, errOut := c.run("", "backup", "--out", out)
	want := "epicme backup: " + out + " exists; choose a new file\n"
	if code != exitError || errOut != want {
		t.Errorf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// An instance whose keys.kek differs from the one that sealed the signing
// keys says that instances must share it; the key may come from a file or
// the environment instead of the data directory.
func TestMessage_KeyEncryptionKeyMustBeShared(t *testing.T) {
	c := newCLI(t)
	s := startServe(t, c, "--public-url", "http://127.0.0.1:8080")
	s.stop()
	kekPath := filepath.Join(c.dataDir(), kekFile)
	kek, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(shared, kek, 0o600); err != nil {
		t.Fatal(err)
	}
	other := make([]byte, len(kek))
	copy(other, kek)
	other[0] ^= 0xff
	if err := os.WriteFile(kekPath, other, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := c.run("", "serve", "--addr", "127.0.0.1:0", "--public-url", "http://127.0.0.1:8080")
	want := "epicme serve: the signing keys in the database were sealed with another key-encryption key than " + kekPath + ": every instance that shares a database must use the same keys.kek; copy it from the first instance, or give it to each with --kek-file FILE or EPICME_KEK (base64)\n"
	if code != exitError || errOut != want {
		t.Fatalf("exit %d, stderr %q; want %q", code, errOut, want)
	}
	// The right key from a file, then from the environment.
	s = startServe(t, c, "--public-url", "http://127.0.0.1:8080", "--kek-file", shared)
	s.stop()
	c.vars["EPICME_KEK"] = base64.StdEncoding.EncodeToString(kek)
	s = startServe(t, c, "--public-url", "http://127.0.0.1:8080")
	s.stop()
	c.vars["EPICME_KEK"] = "not base64"
	code, _, errOut = c.run("", "serve", "--addr", "127.0.0.1:0", "--public-url", "http://127.0.0.1:8080")
	want = "epicme serve: EPICME_KEK must be the base64 of a 32-byte key-encryption key (base64 < keys.kek)\nRun \"epicme serve --help\" for usage.\n"
	if code != exitUsage || errOut != want {
		t.Fatalf("exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// The command table lines up, whatever the longest command name.
func TestUsageAlignsTheCommandTable(t *testing.T) {
	_, out, _ := newCLI(t).run("", "help")
	col := -1
	for _, line := range strings.Split(out, "\n") {
		for _, c := range commands() {
			if !strings.HasPrefix(line, "  "+c.name+" ") {
				continue
			}
			i := strings.Index(line, c.summary)
			if col == -1 {
				col = i
			}
			if i != col {
				t.Errorf("summary of %s starts at column %d, others at %d:\n%s", c.name, i, col, out)
			}
		}
	}
	if col == -1 {
		t.Fatalf("no command table:\n%s", out)
	}
}

// The banner's URL opened in a browser shows what this is and where to go;
// /mcp opened in a browser shows the same under its 401 challenge.
func TestServeHomePageAndBrowserHint(t *testing.T) {
	s := startServe(t, newCLI(t))
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{s.url + "/mcp", `href="/oauth/account"`, `href="/oauth/sign-up"`}},
		{"/mcp", 401, []string{"This is the MCP endpoint", s.url + "/mcp"}},
		{"/favicon.ico", 204, nil},
	} {
		req, _ := http.NewRequest("GET", s.url+tc.path, nil)
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s lacks %q:\n%s", tc.path, w, body)
			}
		}
		if tc.path == "/mcp" && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Errorf("GET /mcp from a browser lost its challenge: %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
}
