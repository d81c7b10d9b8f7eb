package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// syncBuffer collects output written from other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cli runs epicme in-process with a private environment.
type cli struct {
	t    *testing.T
	vars map[string]string
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, vars: map[string]string{"EPICME_DATA_DIR": filepath.Join(t.TempDir(), "data")}}
}

func (c *cli) dataDir() string { return c.vars["EPICME_DATA_DIR"] }

func (c *cli) env(stdin string, stdout, stderr io.Writer) env {
	return env{stdin: strings.NewReader(stdin), stdout: stdout, stderr: stderr, getenv: func(k string) string { return c.vars[k] }}
}

// run runs one command to completion.
func (c *cli) run(stdin string, args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, c.env(stdin, &o, &e))
	return code, o.String(), e.String()
}

func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("epicme %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestVersionPrintsVersionAndGo(t *testing.T) {
	out := newCLI(t).mustRun("version")
	if !regexp.MustCompile(`^epicme dev \(go1\.\d+.* linux|darwin|windows`).MatchString(out) {
		t.Errorf("version output %q", out)
	}
}

func TestUsageErrorsExitWith2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "Commands:"},
		{[]string{"nope"}, nil, `unknown command "nope"`},
		{[]string{"serve", "--bogus"}, nil, "unknown flag --bogus"},
		{[]string{"migrate", "extra"}, nil, `unexpected argument "extra"`},
		{[]string{"serve", "--log-level", "loud"}, nil, `--log-level "loud"`},
		{[]string{"serve", "--addr", "8080"}, nil, "must be host:port"},
		{[]string{"serve", "--public-url", "ftp://x"}, nil, "absolute http or https URL"},
		{[]string{"serve"}, map[string]string{"EPICME_DEV_INSECURE_NO_AUTH": "maybe"}, "EPICME_DEV_INSECURE_NO_AUTH"},
		{[]string{"user"}, nil, "missing subcommand"},
		{[]string{"user", "delete"}, nil, `unknown subcommand "delete"`},
		{[]string{"user", "add"}, nil, "--email is required"},
		{[]string{"stdio"}, nil, "--user is required"},
	} {
		c := newCLI(t)
		for k, v := range tc.env {
			c.vars[k] = v
		}
		code, _, errOut := c.run("", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("epicme %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(errOut, "goroutine") {
			t.Errorf("epicme %v printed a stack trace", tc.args)
		}
	}
}

func TestHelpDocumentsEveryFlagAndEnvVar(t *testing.T) {
	c := newCLI(t)
	code, out, _ := c.run("", "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help exit %d", code)
	}
	for _, want := range []string{
		"--addr", "EPICME_ADDR", "127.0.0.1:8080",
		"--data-dir", "EPICME_DATA_DIR", "--public-url", "EPICME_PUBLIC_URL",
		"--log-level", "EPICME_LOG_LEVEL", "--dev-insecure-no-auth", "EPICME_DEV_INSECURE_NO_AUTH",
		"--dev-user", "EPICME_DEV_USER", "--require-dpop", "EPICME_REQUIRE_DPOP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
	for _, cmd := range [][]string{{"stdio"}, {"user", "add"}, {"user", "list"}, {"migrate"}, {"version"}, {"user"}} {
		code, out, _ := c.run("", append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage: epicme "+cmd[0]) {
			t.Errorf("epicme %v --help: exit %d, output %q", cmd, code, out)
		}
	}
}

func TestMigrateCreatesPrivateDataDirAndPrintsVersion(t *testing.T) {
	c := newCLI(t)
	out := c.mustRun("migrate")
	want := sqlite.LatestSchemaVersion()
	if !strings.HasPrefix(out, "schema version ") || !strings.Contains(out, " "+itoa(want)+" ") {
		t.Errorf("migrate printed %q; want schema version %d", out, want)
	}
	fi, err := os.Stat(c.dataDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v; want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(c.dataDir(), "epicme.db")); err != nil {
		t.Errorf("no database: %v", err)
	}
	// Running again is a no-op with the same answer.
	if again := c.mustRun("migrate"); again != out {
		t.Errorf("second migrate printed %q, first %q", again, out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestDataDirFollowsXDGThenHome(t *testing.T) {
	c := newCLI(t)
	delete(c.vars, "EPICME_DATA_DIR")
	xdg, home := t.TempDir(), t.TempDir()
	c.vars["HOME"] = home
	c.vars["XDG_DATA_HOME"] = xdg
	c.mustRun("migrate")
	if _, err := os.Stat(filepath.Join(xdg, "epicme", "epicme.db")); err != nil {
		t.Errorf("with XDG_DATA_HOME: %v", err)
	}
	delete(c.vars, "XDG_DATA_HOME")
	c.mustRun("migrate")
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "epicme", "epicme.db")); err != nil {
		t.Errorf("with HOME only: %v", err)
	}
	// A flag beats the environment.
	flagDir := filepath.Join(t.TempDir(), "flag")
	c.mustRun("migrate", "--data-dir", flagDir)
	if _, err := os.Stat(filepath.Join(flagDir, "epicme.db")); err != nil {
		t.Errorf("with --data-dir: %v", err)
	}
}

func TestUserAddHashesThePasswordAndListShowsUsers(t *testing.T) {
	c := newCLI(t)
	out := c.mustRun("user", "add", "--email", "Alice@Example.com", "--password", "correct horse")
	if !strings.Contains(out, "alice@example.com") {
		t.Errorf("user add printed %q", out)
	}
	code, out, errOut := c.run("battery staple\n", "user", "add", "--email", "bob@example.com")
	if code != 0 {
		t.Fatalf("user add with the password on stdin: exit %d %s", code, errOut)
	}

	code, _, errOut = c.run("", "user", "add", "--email", "alice@example.com", "--password", "another one")
	if code != 1 || !strings.Contains(strings.ToLower(errOut), "exists") && !strings.Contains(strings.ToLower(errOut), "already") {
		t.Errorf("duplicate user: exit %d, %q; want exit 1 saying it exists", code, errOut)
	}
	code, _, errOut = c.run("", "user", "add", "--email", "carol@example.com", "--password", "short")
	if code != 1 || !strings.Contains(errOut, "at least 8") {
		t.Errorf("short password: exit %d, %q", code, errOut)
	}
	code, _, errOut = c.run("", "user", "add", "--email", "not-an-email", "--password", "long enough")
	if code != 1 || !strings.Contains(errOut, "email") {
		t.Errorf("bad email: exit %d, %q", code, errOut)
	}
	code, _, errOut = c.run("", "user", "add", "--email", "dave@example.com")
	if code != 2 || !strings.Contains(errOut, "no password") {
		t.Errorf("no password anywhere: exit %d, %q", code, errOut)
	}

	list := c.mustRun("user", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "alice@example.com") ||
		!strings.Contains(lines[2], "bob@example.com") || !strings.Contains(lines[1], "local") {
		t.Errorf("user list:\n%s", list)
	}

	db, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir(), "epicme.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for email, pw := range map[string]string{"alice@example.com": "correct horse", "bob@example.com": "battery staple"} {
		u, err := db.LocalUserByEmail(context.Background(), email)
		if err != nil {
			t.Fatal(err)
		}
		h, err := db.PasswordHash(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=1,p=2$") || strings.Contains(h, pw) {
			t.Errorf("%s: stored hash %q", email, h)
		}
		if ok, _, err := password.Verify(pw, h); !ok || err != nil {
			t.Errorf("%s: password does not verify: %v %v", email, ok, err)
		}
	}
}

func TestDevModeRefusesNonLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		code, _, errOut := newCLI(t).run("", "serve", "--dev-insecure-no-auth", "--addr", addr)
		if code != 2 || !strings.Contains(errOut, "loopback") {
			t.Errorf("--addr %s: exit %d, stderr %q", addr, code, errOut)
		}
	}
}

// serving is a running "epicme serve".
type serving struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() int
}

func startServe(t *testing.T, c *cli, args ...string) *serving {
	t.Helper()
	return startServeAt(t, c, "127.0.0.1:0", args...)
}

// startServeAt starts "epicme serve --addr addr" and waits for its banner;
// url is the URL the banner prints.
func startServeAt(t *testing.T, c *cli, addr string, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", addr}, args...), c.env("", s.stdout, s.stderr))
	}()
	re := regexp.MustCompile(`serving at (https?://\S+)`)
	testenv.Eventually(t, 15*time.Second, func() error {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			return nil
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before serving\nstdout: %s\nstderr: %s", code, s.stdout, s.stderr)
		default:
		}
		return fmt.Errorf("serve has not started\nstdout: %s\nstderr: %s", s.stdout, s.stderr)
	})
	var once sync.Once
	code := 0
	s.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func TestServeDevModeServesMCPAndStopsGracefully(t *testing.T) {
	c := newCLI(t)
	s := startServe(t, c, "--dev-insecure-no-auth")

	out := s.stdout.String()
	for _, want := range []string{s.url + "/mcp", "claude mcp add --transport http epicme " + s.url + "/mcp", "dev@epicme.local", "password"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(s.stderr.String(), "WARNING: authentication is OFF") {
		t.Errorf("no warning on stderr:\n%s", s.stderr)
	}
	fi, err := os.Stat(filepath.Join(c.dataDir(), "secret.key"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Errorf("secret.key: %v %v", fi, err)
	}

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
	}

	ctx := context.Background()
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			cl, err := client.NewStreamableHttpClient(s.url+"/mcp", transport.WithHTTPTimeout(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			exerciseJournal(t, ctx, cl, version)
		})
	}

	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d after SIGINT-like cancel\nstderr: %s", code, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", s.stderr)
	}

	// A second start reuses the account and does not print a password again.
	s2 := startServe(t, c, "--dev-insecure-no-auth")
	if strings.Contains(s2.stdout.String(), "password") {
		t.Errorf("second start printed a password:\n%s", s2.stdout)
	}
}

// exerciseJournal initializes a client at the protocol version and makes a
// round trip through the journal: whoami, create_entry, get_entry.
func exerciseJournal(t *testing.T, ctx context.Context, cl *client.Client, version string) {
	t.Helper()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "epicme-cli-test", Version: "1"}
	res, err := cl.Initialize(ctx, init)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if res.ServerInfo.Name != "epicme" {
		t.Errorf("server name %q", res.ServerInfo.Name)
	}
	call := func(name string, args map[string]any) string {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		r, err := cl.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := json.Marshal(r)
		if r.IsError {
			t.Fatalf("%s: tool error %s", name, b)
		}
		return string(b)
	}
	if out := call("whoami", nil); !strings.Contains(out, "dev@epicme.local") && !strings.Contains(out, "@") {
		t.Errorf("whoami: %s", out)
	}
	title := "Walk by the river " + version
	out := call("create_entry", map[string]any{"title": title, "content": "The water was high after the rain."})
	var created struct {
		StructuredContent struct {
			Entry struct{ ID int64 } `json:"entry"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.StructuredContent.Entry.ID == 0 {
		t.Fatalf("create_entry result %s (%v)", out, err)
	}
	if out := call("get_entry", map[string]any{"id": created.StructuredContent.Entry.ID}); !strings.Contains(out, title) {
		t.Errorf("get_entry: %s", out)
	}
}

func TestStdioServesTheLocalUser(t *testing.T) {
	c := newCLI(t)
	c.mustRun("user", "add", "--email", "me@example.com", "--password", "long enough")

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		e := c.env("", outW, stderr)
		e.stdin = inR
		done <- run(ctx, []string{"stdio", "--user", "me@example.com"}, e)
		outW.Close()
	}()

	cl := client.NewClient(transport.NewIO(outR, inW, io.NopCloser(strings.NewReader(""))))
	defer cl.Close()
	exerciseJournal(t, ctx, cl, "2025-11-25")

	inW.Close() // end of input ends the server
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("stdio exit %d\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stdio did not stop at end of input")
	}
}

func TestStdioNamesTheFixForAnUnknownUser(t *testing.T) {
	code, _, errOut := newCLI(t).run("", "stdio", "--user", "ghost@example.com")
	if code != 1 || !strings.Contains(errOut, "epicme user add --email ghost@example.com") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestStdioBinaryKeepsStdoutForTheProtocol runs the real binary as a
// subprocess, as desktop clients do: anything but JSON-RPC on stdout would
// break the client.
func TestStdioBinaryKeepsStdoutForTheProtocol(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "epicme")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := newCLI(t)
	c.mustRun("user", "add", "--email", "me@example.com", "--password", "long enough")

	cl, err := client.NewStdioMCPClient(bin, []string{"EPICME_DATA_DIR=" + c.dataDir(), "EPICME_LOG_LEVEL=debug"}, "stdio", "--user", "me@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	exerciseJournal(t, context.Background(), cl, "2025-11-25")
	if r, ok := client.GetStderr(cl); ok {
		b := make([]byte, 4096)
		n, _ := r.Read(b)
		if n > 0 && !strings.Contains(string(b[:n]), "level=") {
			t.Errorf("stderr is not logs: %q", b[:n])
		}
	}
}
