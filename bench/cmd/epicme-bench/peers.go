package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/bench"
	"github.com/epicme/epicme/bench/peers/chart"
	"github.com/epicme/epicme/httpserver"
)

const benchPeersAbout = `Measure EpicMe against other MCP server stacks doing the same work: a
get_entry tool over stateless Streamable HTTP that reads one entry of one user
from the same SQLite fixture, behind each stack's own bearer check, with the
token looked up by its SHA-256. The contestants:

  epicme         epicme serve as deployed by default: the embedded authorization
                 server's in-process verifier, with a real access token (an
                 RFC 9068 JWT) minted for each fixture user
  epicme-noauth  the same server without authentication (epicme-bench
                 serve-fixture): a header names the fixture user of each call
  bare           a plain net/http handler writing JSON-RPC by hand (the ceiling)
  mcp-go         github.com/mark3labs/mcp-go, with a bearer check in front
  go-sdk         github.com/modelcontextprotocol/go-sdk, auth.RequireBearerToken
  ts-sdk         @modelcontextprotocol/sdk on Express with requireBearerAuth and
                 better-sqlite3 (needs: npm ci --prefix bench/peers/ts)

Run it from the bench directory on a fixture (epicme-bench fixture). It copies
the fixture's data directory to a temporary one, builds every server with
go build, starts them all on loopback ports, checks that each returns the same
entry, then runs each workload against each server in turn, round after round,
rotating the order, so that drift in the machine's load hits all alike.
Workloads: get_entry and tools/list on every server, concurrency 1, 8 and 64;
on EpicMe only, a mixed journal workload (70% reads, 20% list/search, 10%
writes), get_entry with a DPoP-bound token and a proof per call
(get_entry+dpop), get_entry on MCP 2025-11-25 HTTP sessions, one per token,
as most clients call today (get_entry+session), and a run in which every
call carries a token not seen before (the verifier's cache misses). Each
figure is the median of the rounds.

It prints a table and writes results.json (every round) and chart.png to --out.
Resident memory (VmRSS from /proc) is read at idle and sampled under the
64-connection load.`

// peerContestants are the contestants in the order tables list them.
var peerContestants = []string{"epicme", "epicme-noauth", "bare", "mcp-go", "go-sdk", "ts-sdk"}

type peersOptions struct {
	src, out       string
	users, entries int
	rounds         int
	duration       time.Duration
	warmup         time.Duration
	missDuration   time.Duration
	conns          []int
	only           []string
	noExtras       bool
}

func runBenchPeers(ctx context.Context, args []string, e env) error {
	var (
		data  dataFlags
		o     peersOptions
		conns string
		only  string
	)
	fs := newFlagSet("peers", benchPeersAbout, e)
	data.register(fs)
	fs.StringVar(&o.src, "src", "..", "`directory` of the EpicMe source tree (holds go.mod, cmd/epicme and bench/peers)")
	fs.StringVar(&o.out, "out", "", "`directory` for results.json and chart.png (default: a new temporary directory)")
	fs.IntVar(&o.users, "users", 1000, "spread calls over this many fixture users (one token each)")
	fs.IntVar(&o.entries, "entries", 100, "entries per user in the fixture: get_entry asks for ids 1..N")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; every server runs every workload once per round")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long to measure each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "how long to run before measuring")
	fs.DurationVar(&o.missDuration, "miss-duration", 2*time.Second, "how long to measure the first-request-per-token runs")
	fs.StringVar(&conns, "connections", "1,8,64", "comma-separated concurrencies (keep-alive connections)")
	fs.StringVar(&only, "only", "", "comma-separated contestants to run (default: all): "+strings.Join(peerContestants, ","))
	fs.BoolVar(&o.noExtras, "no-extras", false, "skip EpicMe's mixed, DPoP, session and first-request-per-token workloads")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	for _, s := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return usagef("--connections %q: want positive integers separated by commas", conns)
		}
		o.conns = append(o.conns, n)
	}
	if only != "" {
		for _, s := range strings.Split(only, ",") {
			if !slices.Contains(peerContestants, s) {
				return usagef("--only %q: unknown contestant %q (want %s)", only, s, strings.Join(peerContestants, ", "))
			}
			o.only = append(o.only, s)
		}
	}
	if o.users < 1 || o.entries < 1 || o.rounds < 1 || o.duration <= 0 || o.warmup < 0 || o.missDuration <= 0 {
		return usagef("--users, --entries, --rounds, --duration and --miss-duration must be positive")
	}
	if data.dataDir == "" {
		return usagef("--data-dir: give the data directory of a fixture (epicme-bench fixture --data-dir DIR)")
	}
	src, err := filepath.Abs(o.src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(src, "bench", "peers")); err != nil {
		return usagef("--src %s holds no bench/peers: run from the bench directory or pass --src", src)
	}
	o.src = src
	if o.out == "" {
		if o.out, err = os.MkdirTemp("", "epicme-bench-peers-out-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "epicme-bench-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	say := func(format string, args ...any) { fmt.Fprintf(e.stdout, format+"\n", args...) }
	h := &peersHarness{o: o, work: work, say: say, stderr: e.stderr, getenv: e.getenv}
	defer h.stopAll()

	say("copying the fixture %s", data.dataDir)
	if err := h.copyFixture(ctx, data.dataDir); err != nil {
		return err
	}
	say("building the servers (go build)")
	if err := h.build(ctx); err != nil {
		return err
	}
	if err := h.makeTokens(ctx); err != nil {
		return err
	}
	if err := h.startAll(ctx); err != nil {
		return err
	}
	if err := h.check(ctx); err != nil {
		return err
	}
	if err := h.prime(ctx); err != nil {
		return err
	}
	if err := h.measure(ctx); err != nil {
		return err
	}
	h.stopAll()
	return h.report(e.stdout)
}

// peersHarness runs "epicme-bench peers".
type peersHarness struct {
	o      peersOptions
	work   string // temporary directory: binaries, the data copy, token table
	say    func(string, ...any)
	stderr io.Writer
	getenv func(string) string

	dataDir string // the copy of the fixture
	userIDs []string
	bins    string

	peerTokens  []string // one per user; their hashes are in the token table
	epicTokens  []string // one JWT per user
	dpopKey     *bench.DPoPKey
	dpopTokens  []string // one JWT per user, bound to dpopKey
	missTokens  []string // JWTs for the first-request-per-token runs
	epicAddr    string
	toolsFile   string // EpicMe's tools, listed by every peer (writeTools)
	contestants []*contestant
	results     []*peersResult
}

// contestant is one running server.
type contestant struct {
	Name    string `json:"name"`
	Note    string `json:"note"`
	URL     string `json:"url"`
	IdleRSS int64  `json:"idleRssKiB"`
	// IdleAnon is the anonymous (heap and stacks) part of IdleRSS; the rest
	// is file pages, mostly the database mapped by SQLite.
	IdleAnon int64 `json:"idleRssAnonKiB"`
	LoadRSS  int64 `json:"loadRssKiB"`
	LoadAnon int64 `json:"loadRssAnonKiB"`

	cmd    *exec.Cmd
	tokens []string
	stderr *tailBuffer
	done   chan struct{}
}

const benchServeFixtureAbout = `Serve a fixture's data directory on a loopback port without authentication:
each call acts, with every scope, as the fixture user whose index is in its
X-Epicme-Bench-User header (user 0 without one). Prints "listening URL" once
it accepts connections; stops on SIGINT or SIGTERM. It is the auth-off
contestant of "epicme-bench peers", spread over the same users as the others.`

func runBenchServeFixture(ctx context.Context, args []string, e env) error {
	var (
		data  dataFlags
		users int
	)
	fs := newFlagSet("serve-fixture", benchServeFixtureAbout, e)
	data.register(fs)
	fs.IntVar(&users, "users", 0, "serve this many fixture users (default: all)")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	stop, url, _, err := startBenchServer(ctx, &data, users, e)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(e.stdout, "listening %s\n", url)
	<-ctx.Done()
	return nil
}

// peersResult is one workload at one concurrency on one contestant.
type peersResult struct {
	Contestant  string        `json:"contestant"`
	Workload    string        `json:"workload"`
	Connections int           `json:"connections"`
	Rounds      []*peersRound `json:"rounds"`
	// The medians of the rounds.
	CallsPerSec float64       `json:"callsPerSec"`
	P50         time.Duration `json:"p50"`
	P99         time.Duration `json:"p99"`
	Errors      int64         `json:"errors"`
	// CPUPerCall is the server process's CPU time (user and system) per
	// measured call: unlike calls/s, it hardly depends on how much of the
	// machine other processes took during the run.
	CPUPerCall time.Duration `json:"cpuPerCall"`
	// Repeats counts calls of a first-request-per-token run that carried a
	// token already used (when the run outlasted its tokens).
	Repeats int64 `json:"repeats,omitempty"`
}

// peersRound is one run.
type peersRound struct {
	*bench.Result
	CPUPerCall time.Duration `json:"cpuPerCall"`
}

func (h *peersHarness) wanted(name string) bool {
	return len(h.o.only) == 0 || slices.Contains(h.o.only, name)
}

// copyFixture copies the fixture's data directory, so that EpicMe's writes
// (signing keys, the mixed workload) leave the fixture as it was, and reads
// the fixture users' ids.
func (h *peersHarness) copyFixture(ctx context.Context, from string) error {
	from, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, from)
	if err != nil {
		return err
	}
	have, err := bench.CountFixtureUsers(ctx, store)
	if err != nil {
		store.Close()
		return err
	}
	if have == 0 {
		store.Close()
		return fmt.Errorf("no fixture in %s; build one first: epicme-bench fixture --data-dir %s --users 1000", from, from)
	}
	h.o.users = min(h.o.users, have)
	for i := range h.o.users {
		u, err := store.LocalUserByEmail(ctx, bench.UserEmail(i))
		if err != nil {
			store.Close()
			return err
		}
		h.userIDs = append(h.userIDs, u.ID)
	}
	// Closing checkpoints the WAL into the main file, so copying the main
	// file copies everything.
	if err := store.Close(); err != nil {
		return err
	}
	h.dataDir = filepath.Join(h.work, "data")
	if err := os.Mkdir(h.dataDir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, ent := range ents {
		n := ent.Name()
		if !ent.Type().IsRegular() || strings.HasSuffix(n, "-shm") || strings.HasSuffix(n, "-wal") {
			continue
		}
		if err := copyFile(filepath.Join(from, n), filepath.Join(h.dataDir, n)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// build compiles EpicMe and the Go peers into the work directory.
func (h *peersHarness) build(ctx context.Context) error {
	h.bins = filepath.Join(h.work, "bin")
	if err := os.Mkdir(h.bins, 0o755); err != nil {
		return err
	}
	// EpicMe in its module; this command (for serve-fixture) and the Go
	// peers in the bench module.
	for _, b := range []struct {
		dir  string
		pkgs []string
	}{
		{h.o.src, []string{"./cmd/epicme"}},
		{filepath.Join(h.o.src, "bench"), []string{"./cmd/epicme-bench", "./peers/bare", "./peers/mcpgo", "./peers/gosdk"}},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", h.bins + string(filepath.Separator)}, b.pkgs...)...)
		cmd.Dir = b.dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build in %s: %v\n%s", b.dir, err, out.String())
		}
	}
	return nil
}

// makeTokens makes the peers' token table (random opaque tokens, stored by
// their SHA-256) and, with the authorization server EpicMe will run, one
// access token per user plus the first-request-per-token run's tokens.
func (h *peersHarness) makeTokens(ctx context.Context) error {
	var table bytes.Buffer
	for _, id := range h.userIDs {
		tok := "peer_" + rand.Text()
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&table, "%s %s\n", hex.EncodeToString(sum[:]), id)
		h.peerTokens = append(h.peerTokens, tok)
	}
	if err := os.WriteFile(filepath.Join(h.work, "tokens.txt"), table.Bytes(), 0o600); err != nil {
		return err
	}
	if !h.wanted("epicme") {
		return nil
	}

	// The issuer is the URL EpicMe will serve at, so its port is chosen now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	h.epicAddr = ln.Addr().String()
	ln.Close()
	issuer := "http://" + h.epicAddr
	store, err := openStore(ctx, h.dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	kek, err := loadKEK(h.dataDir)
	if err != nil {
		return err
	}
	// The configuration "epicme serve" gives its embedded authorization
	// server, with tokens that outlast the run.
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: issuer, Resource: issuer + httpserver.MCPPath,
		Store: store, Users: store, KEK: kek,
		Logger: slog.New(slog.DiscardHandler), AccessTokenTTL: 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	users := make([]*epicme.User, len(h.userIDs))
	for i, id := range h.userIDs {
		if users[i], err = store.UserByID(ctx, id); err != nil {
			return err
		}
	}
	mint := func(n int) ([]string, error) {
		toks := make([]string, n)
		for i := range toks {
			t, err := as.IssueAccessToken(ctx, users[i%len(users)], "epicme-bench", epicme.AllScopes)
			if err != nil {
				return nil, err
			}
			toks[i] = t
		}
		return toks, nil
	}
	h.say("minting access tokens for %d users", len(users))
	if h.epicTokens, err = mint(len(users)); err != nil {
		return err
	}
	if !h.o.noExtras {
		// The same users' tokens bound to one DPoP key, for the runs
		// where every call carries a proof.
		if h.dpopKey, err = bench.NewDPoPKey(); err != nil {
			return err
		}
		for _, u := range users {
			t, err := as.IssueBoundAccessToken(ctx, u, "epicme-bench", epicme.AllScopes, h.dpopKey.JKT)
			if err != nil {
				return err
			}
			h.dpopTokens = append(h.dpopTokens, t)
		}
	}
	if !h.o.noExtras {
		// Enough for 6,000 verifications a second (each checks an ES256
		// signature); a run that outlasts its tokens reports the repeats.
		n := max(2000, int(6000*h.o.missDuration.Seconds()))
		h.say("minting %d more for the first-request-per-token runs", n*len(h.missConns())*h.o.rounds)
		if h.missTokens, err = mint(n * len(h.missConns()) * h.o.rounds); err != nil {
			return err
		}
	}
	return nil
}

// missConns are the concurrencies of the first-request-per-token runs.
func (h *peersHarness) missConns() []int {
	var c []int
	for _, n := range h.o.conns {
		if n > 1 {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		c = h.o.conns
	}
	return c
}

// startAll starts every contestant and waits until each listens.
func (h *peersHarness) startAll(ctx context.Context) error {
	db := filepath.Join(h.dataDir, databaseFile)
	tokens := filepath.Join(h.work, "tokens.txt")
	epic := filepath.Join(h.bins, "epicme")
	for _, name := range peerContestants {
		if !h.wanted(name) {
			continue
		}
		var (
			args []string
			note string
			toks = h.peerTokens
			url  string
		)
		switch name {
		case "epicme":
			args = []string{epic, "serve", "--data-dir", h.dataDir, "--addr", h.epicAddr, "--public-url", "http://" + h.epicAddr, "--log-level", "warn",
				// One address and one client send every call: the limits
				// would refuse nearly all of them, and no peer has any.
				"--rate-mcp-client", "0", "--rate-mcp-source", "0", "--rate-mcp-user", "0"}
			note = "epicme serve, embedded authorization server's verifier, JWT access tokens, rate limits off"
			toks = h.epicTokens
			url = "http://" + h.epicAddr + httpserver.MCPPath
		case "epicme-noauth":
			args = []string{filepath.Join(h.bins, "epicme-bench"), "serve-fixture", "--data-dir", h.dataDir, "--users", strconv.Itoa(h.o.users), "--log-level", "warn"}
			note = "EpicMe without authentication (epicme-bench serve-fixture): the X-Epicme-Bench-User header names the user"
			toks = nil
		case "bare":
			args = []string{filepath.Join(h.bins, "bare"), "-db", db, "-tokens", tokens}
			note = "net/http, JSON-RPC by hand (ceiling)"
		case "mcp-go":
			args = []string{filepath.Join(h.bins, "mcpgo"), "-db", db, "-tokens", tokens}
			note = "mark3labs/mcp-go v1.6.0, bearer middleware"
		case "go-sdk":
			args = []string{filepath.Join(h.bins, "gosdk"), "-db", db, "-tokens", tokens}
			note = "modelcontextprotocol/go-sdk v1.8.0, auth.RequireBearerToken"
		case "ts-sdk":
			dir := filepath.Join(h.o.src, "bench", "peers", "ts")
			_, missing := os.Stat(filepath.Join(dir, "node_modules", "better-sqlite3"))
			node, err := exec.LookPath("node")
			if (missing != nil || err != nil) && nodeRequired() {
				// CI promised Node (internal/testenv of the product).
				return errors.New("ts-sdk: node or bench/peers/ts/node_modules is missing and EPICME_TEST_REQUIRE lists node")
			}
			if missing != nil {
				h.say("skipping ts-sdk: its packages are not installed (run: npm ci --prefix bench/peers/ts)")
				continue
			}
			if err != nil {
				h.say("skipping ts-sdk: node is not installed")
				continue
			}
			args = []string{node, filepath.Join(dir, "server.mjs"), "-db", db, "-tokens", tokens}
			note = "@modelcontextprotocol/sdk " + npmVersion(dir, "@modelcontextprotocol/sdk") + ", Express, requireBearerAuth, better-sqlite3"
		}
		if h.toolsFile != "" && name != "epicme-noauth" {
			args = append(args, "-tools", h.toolsFile)
		}
		c := &contestant{Name: name, Note: note, tokens: toks, URL: url}
		if err := h.start(ctx, c, args); err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		h.contestants = append(h.contestants, c)
		if name == "epicme" {
			if err := h.writeTools(ctx, c); err != nil {
				return err
			}
		}
	}
	if len(h.contestants) == 0 {
		return errors.New("no contestant to run")
	}
	return nil
}

// writeTools saves the tools of EpicMe's tools/list for the peers (their
// -tools flag), so that every contestant lists the same definitions and
// the tools/list workload encodes the same bytes everywhere.
func (h *peersHarness) writeTools(ctx context.Context, c *contestant) error {
	body, err := mcpPost(ctx, c.URL, c.tokens[0], "tools/list", "", `{}`)
	if err != nil {
		return fmt.Errorf("epicme: tools/list: %w", err)
	}
	var r struct {
		Result struct {
			Tools json.RawMessage `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Result.Tools) == 0 {
		return fmt.Errorf("epicme: tools/list answered %s", truncateBytes(body))
	}
	h.toolsFile = filepath.Join(h.work, "tools.json")
	return os.WriteFile(h.toolsFile, r.Result.Tools, 0o644)
}

func npmVersion(dir, pkg string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return "?"
	}
	var p struct{ Version string }
	_ = json.Unmarshal(b, &p)
	return p.Version
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs the server and waits until it answers: the peers print their
// URL on their first line; EpicMe is polled on /healthz.
func (h *peersHarness) start(ctx context.Context, c *contestant, args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = os.Environ()
	c.stderr = &tailBuffer{max: 4096}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case urls <- u:
				default:
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	deadline := time.After(60 * time.Second)
	for c.URL == "" {
		select {
		case u := <-urls:
			c.URL = u
		case <-c.done:
			return fmt.Errorf("exited: %s", c.stderr)
		case <-deadline:
			return fmt.Errorf("did not print its URL within a minute: %s", c.stderr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	health := strings.TrimSuffix(c.URL, httpserver.MCPPath) + "/healthz"
	for {
		if strings.HasPrefix(c.Name, "epicme") {
			resp, err := http.Get(health)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return nil
				}
			}
		} else if conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(c.URL, httpserver.MCPPath), "http://")); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited: %s", c.stderr)
		case <-deadline:
			return fmt.Errorf("not answering within a minute: %s", c.stderr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (h *peersHarness) stopAll() {
	for _, c := range h.contestants {
		if c.cmd == nil || c.cmd.Process == nil {
			continue
		}
		select {
		case <-c.done:
			continue
		default:
		}
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// check asks every contestant for user 0's entry 1 and tools/list, and
// compares the entries: every server must return the same one.
func (h *peersHarness) check(ctx context.Context) error {
	var want json.RawMessage
	var wantFrom string
	wantTools := 0
	for _, c := range h.contestants {
		tok := ""
		if len(c.tokens) > 0 {
			tok = c.tokens[0] // user 0
		}
		body, err := mcpPost(ctx, c.URL, tok, "tools/call", bench.GetEntry,
			`{"name":"get_entry","arguments":{"id":1}}`)
		if err != nil {
			return fmt.Errorf("%s: get_entry: %w", c.Name, err)
		}
		var r struct {
			Result struct {
				StructuredContent struct {
					Entry map[string]any `json:"entry"`
				} `json:"structuredContent"`
				IsError bool `json:"isError"`
			} `json:"result"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Result.IsError || r.Result.StructuredContent.Entry == nil {
			return fmt.Errorf("%s: get_entry answered %s", c.Name, truncateBytes(body))
		}
		ent := r.Result.StructuredContent.Entry
		// The fields every stack reads from the same row; timestamps are
		// compared too, as text, since each formats them itself.
		got, _ := json.Marshal([]any{ent["id"], ent["title"], ent["content"], ent["mood"], ent["location"],
			ent["weather"], ent["isPrivate"], ent["isFavorite"], ent["createdAt"], ent["tags"]})
		if want == nil {
			want, wantFrom = got, c.Name
		} else if !bytes.Equal(got, want) {
			return fmt.Errorf("%s and %s return different entries:\n%s\n%s", wantFrom, c.Name, truncateBytes(want), truncateBytes(got))
		}
		body, err = mcpPost(ctx, c.URL, tok, "tools/list", "", `{}`)
		var list struct {
			Result struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
			} `json:"result"`
		}
		if err != nil || json.Unmarshal(body, &list) != nil || !bytes.Contains(body, []byte(`"get_entry"`)) {
			return fmt.Errorf("%s: tools/list: %v %s", c.Name, err, truncateBytes(body))
		}
		// Every contestant lists as many tools as the first (EpicMe).
		if n := len(list.Result.Tools); wantTools == 0 {
			wantTools = n
		} else if n != wantTools {
			return fmt.Errorf("%s lists %d tools, %s %d: tools/list would not compare like with like", c.Name, n, wantFrom, wantTools)
		}
		h.say("%-14s answers: entry 1 of user 0 is %q", c.Name, ent["title"])
		time.Sleep(200 * time.Millisecond)
		c.IdleRSS, c.IdleAnon = readRSS(c.cmd.Process.Pid)
	}
	return nil
}

// prime sends one call with each of EpicMe's tokens before measuring, as
// clients would have before (a token is used many times): the verifier's
// first sight of a token checks its signature and is measured on its own,
// by the first-request runs.
func (h *peersHarness) prime(ctx context.Context) error {
	c := h.find("epicme")
	if c == nil {
		return nil
	}
	h.say("one call with each of EpicMe's %d tokens", len(c.tokens))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(c.tokens); i += 8 {
				if _, err := mcpPost(ctx, c.URL, c.tokens[i], "tools/list", "", `{}`); err != nil {
					errs <- fmt.Errorf("epicme: token %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// mcpPost sends one stateless (2026-07-28) request and returns the body of
// a 200 answer.
func mcpPost(ctx context.Context, url, token, method, name, params string) ([]byte, error) {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + bench.ProtocolVersion + `","io.modelcontextprotocol/clientCapabilities":{}}`
	params = strings.TrimSuffix(params, "}")
	if params != "{" {
		params += ","
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":` + params + meta + `}}`
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", bench.ProtocolVersion)
	req.Header.Set("Mcp-Method", method)
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return b, fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncateBytes(b))
	}
	return b, nil
}

func truncateBytes(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// readRSS returns VmRSS and RssAnon of a process in KiB (0 if unreadable).
func readRSS(pid int) (rss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "RssAnon":
			anon = n
		}
	}
	return rss, anon
}

// measure runs the rounds.
func (h *peersHarness) measure(ctx context.Context) error {
	type key struct {
		c        string
		workload string
		conns    int
	}
	byKey := map[key]*peersResult{}
	get := func(c, w string, n int) *peersResult {
		k := key{c, w, n}
		if r := byKey[k]; r != nil {
			return r
		}
		r := &peersResult{Contestant: c, Workload: w, Connections: n}
		byKey[k] = r
		h.results = append(h.results, r)
		return r
	}
	missNext := 0
	for round := range h.o.rounds {
		h.say("round %d of %d", round+1, h.o.rounds)
		for _, n := range h.o.conns {
			for _, w := range []string{bench.GetEntry, bench.ToolsList} {
				// Rotate the order each round and concurrency, so no server
				// always runs first or right after the same neighbour.
				k := len(h.contestants)
				shift := (round + slices.Index(h.o.conns, n)) % k
				for i := range k {
					c := h.contestants[(i+shift)%k]
					res, err := h.run(ctx, c, w, n, c.tokens, h.o.duration, h.o.warmup)
					if err != nil {
						return err
					}
					r := get(c.Name, w, n)
					r.Rounds = append(r.Rounds, res)
				}
			}
			if c := h.find("epicme"); c != nil && !h.o.noExtras {
				// The mixed workload; get_entry with a DPoP proof on every
				// call, right after the bearer runs of the same round; and
				// get_entry on MCP 2025-11-25 sessions, one per token, as
				// most clients call today.
				for _, x := range []struct {
					workload string
					tokens   []string
				}{{bench.Mixed, c.tokens}, {dpopWorkload, h.dpopTokens}, {sessionWorkload, c.tokens}} {
					res, err := h.run(ctx, c, x.workload, n, x.tokens, h.o.duration, h.o.warmup)
					if err != nil {
						return err
					}
					r := get(c.Name, x.workload, n)
					r.Rounds = append(r.Rounds, res)
				}
			}
		}
	}
	// The first-request runs come last: their tokens crowd the verifier's
	// cache, which would turn the other runs' calls into misses too.
	if c := h.find("epicme"); c != nil && len(h.missTokens) > 0 {
		h.say("first request per token")
		per := len(h.missTokens) / (len(h.missConns()) * h.o.rounds)
		for range h.o.rounds {
			for _, n := range h.missConns() {
				toks := h.missTokens[missNext*per : (missNext+1)*per]
				missNext++
				res, err := h.run(ctx, c, "first-request", n, toks, h.o.missDuration, -1)
				if err != nil {
					return err
				}
				r := get(c.Name, "first-request", n)
				r.Rounds = append(r.Rounds, res)
				if res.Calls > int64(len(toks)) {
					r.Repeats += res.Calls - int64(len(toks))
				}
			}
		}
	}
	for _, r := range h.results {
		var cps []float64
		var p50, p99, cpu []time.Duration
		for _, x := range r.Rounds {
			cps = append(cps, x.CallsPerSec)
			cpu = append(cpu, x.CPUPerCall)
			p50 = append(p50, x.P50)
			p99 = append(p99, x.P99)
			r.Errors += x.Errors
		}
		r.CallsPerSec, r.P50, r.P99, r.CPUPerCall = median(cps), median(p50), median(p99), median(cpu)
	}
	return nil
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// dpopWorkload is get_entry by a DPoP client: a token bound to its key,
// and a proof of the key, signed by the load generator, on every call.
const dpopWorkload = "get_entry+dpop"

// sessionWorkload is get_entry on HTTP sessions of MCP 2025-11-25 (one per
// user's token, opened before the run), the revision most clients speak.
const sessionWorkload = "get_entry+session"

// tableWorkloads are the workloads of the report's tables, in order.
var tableWorkloads = []string{bench.GetEntry, dpopWorkload, sessionWorkload, bench.ToolsList, bench.Mixed, "first-request"}

func (h *peersHarness) find(name string) *contestant {
	for _, c := range h.contestants {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// run is one load run; under the largest concurrency it samples the
// server's resident memory.
func (h *peersHarness) run(ctx context.Context, c *contestant, workload string, conns int, tokens []string, d, warmup time.Duration) (*peersRound, error) {
	o := bench.RunOptions{
		URL:            c.URL,
		Workload:       workload,
		Connections:    conns,
		Duration:       d,
		Warmup:         warmup,
		EntriesPerUser: h.o.entries,
		Tokens:         tokens,
	}
	if c.Name == "epicme-noauth" {
		o.Users = h.o.users
	}
	if workload == "first-request" {
		o.Workload = bench.GetEntry
		o.Warmup = -1
	}
	if workload == dpopWorkload {
		o.Workload, o.DPoP = bench.GetEntry, h.dpopKey
	}
	if workload == sessionWorkload {
		o.Workload, o.Session = bench.GetEntry, bench.SessionVersion
	}
	if warmup == 0 {
		o.Warmup = -1
	}
	var peak, peakAnon atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if conns == slices.Max(h.o.conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					rss, anon := readRSS(c.cmd.Process.Pid)
					if rss > peak.Load() {
						peak.Store(rss)
					}
					if anon > peakAnon.Load() {
						peakAnon.Store(anon)
					}
				}
			}
		}()
	}
	// The server's CPU time is read when the warm-up ends and after the
	// run, so it covers the measured calls.
	cpu0 := make(chan time.Duration, 1)
	go func() {
		if o.Warmup > 0 {
			select {
			case <-time.After(o.Warmup):
			case <-ctx.Done():
			}
		}
		cpu0 <- processCPU(c.cmd.Process.Pid)
	}()
	res, err := bench.Run(ctx, o)
	cpu1 := processCPU(c.cmd.Process.Pid)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	round := &peersRound{Result: res}
	if used := cpu1 - <-cpu0; res.Calls > 0 && used > 0 {
		round.CPUPerCall = used / time.Duration(res.Calls)
	}
	res.Workload = workload
	c.LoadRSS = max(c.LoadRSS, peak.Load())
	c.LoadAnon = max(c.LoadAnon, peakAnon.Load())
	select {
	case <-c.done:
		return nil, fmt.Errorf("%s exited during the %s run: %s", c.Name, workload, c.stderr)
	default:
	}
	line := fmt.Sprintf("  %-14s %-13s conns=%-3d %8.0f calls/s  p50=%7.2fms p99=%7.2fms  cpu/call=%4.0fµs", c.Name, workload, conns,
		res.CallsPerSec, ms(res.P50), ms(res.P99), float64(round.CPUPerCall)/float64(time.Microsecond))
	if res.Errors > 0 {
		line += fmt.Sprintf("  errors=%d (%s)", res.Errors, res.FirstError)
	}
	h.say("%s", line)
	return round, nil
}

// processCPU returns the user and system CPU time a process has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s), or 0.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis, where field 3 (state) comes first.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// peersReport is what results.json holds.
type peersReport struct {
	Machine     machineInfo    `json:"machine"`
	Command     string         `json:"command"`
	Users       int            `json:"users"`
	Entries     int            `json:"entriesPerUser"`
	Rounds      int            `json:"rounds"`
	Duration    time.Duration  `json:"duration"`
	Warmup      time.Duration  `json:"warmup"`
	Contestants []*contestant  `json:"contestants"`
	Results     []*peersResult `json:"results"`
}

type machineInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	Node      string `json:"node,omitempty"`
	Time      string `json:"time"`
}

func thisMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Time: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	return m
}

// report prints the table and writes results.json and chart.png.
func (h *peersHarness) report(w io.Writer) error {
	rep := peersReport{
		Machine: thisMachine(), Command: "epicme-bench peers " + strings.Join(os.Args[min(3, len(os.Args)):], " "),
		Users: h.o.users, Entries: h.o.entries, Rounds: h.o.rounds, Duration: h.o.duration, Warmup: h.o.warmup,
		Contestants: h.contestants, Results: h.results,
	}
	fmt.Fprintf(w, "\n%d CPUs (%s), %s; %d users x %d entries; median of %d rounds of %s\n",
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion, h.o.users, h.o.entries, h.o.rounds, h.o.duration)
	fmt.Fprint(w, h.table())

	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.o.out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(h.o.out, "chart.png"))
	if err != nil {
		return err
	}
	if err := h.chart(rep.Machine).WritePNG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwrote %s and %s\n", filepath.Join(h.o.out, "results.json"), filepath.Join(h.o.out, "chart.png"))

	var failed []string
	for _, c := range h.contestants {
		for _, wl := range []string{bench.GetEntry, bench.ToolsList} {
			for _, n := range h.o.conns {
				r := h.result(c.Name, wl, n)
				if r == nil || r.Errors > 0 || r.CallsPerSec == 0 {
					failed = append(failed, fmt.Sprintf("%s %s at %d", c.Name, wl, n))
				}
			}
		}
	}
	for _, r := range h.results {
		if r.Errors > 0 && !slices.Contains(failed, r.Contestant) {
			failed = append(failed, fmt.Sprintf("%s %s at %d", r.Contestant, r.Workload, r.Connections))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("calls failed or none were made: %s", strings.Join(failed, "; "))
	}
	return nil
}

func (h *peersHarness) result(c, workload string, n int) *peersResult {
	for _, r := range h.results {
		if r.Contestant == c && r.Workload == workload && r.Connections == n {
			return r
		}
	}
	return nil
}

// table formats the results as Markdown tables: one per workload, a row
// per contestant, a column group per concurrency, and the ratio of each
// contestant's throughput to the first contestant's.
func (h *peersHarness) table() string {
	var b strings.Builder
	base := h.contestants[0].Name
	fmt.Fprintf(&b, "\nIn brackets: %s's calls/s divided by this server's (above 1: %s is faster).\n", base, base)
	for _, wl := range tableWorkloads {
		var rows []*contestant
		for _, c := range h.contestants {
			if h.result(c.Name, wl, h.o.conns[0]) != nil || slices.ContainsFunc(h.o.conns, func(n int) bool { return h.result(c.Name, wl, n) != nil }) {
				rows = append(rows, c)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n\n| server |", wl)
		for _, n := range h.o.conns {
			fmt.Fprintf(&b, " %d conn calls/s | p50 | p99 |", n)
		}
		b.WriteString("\n|---|")
		for range h.o.conns {
			b.WriteString("---:|---:|---:|")
		}
		b.WriteString("\n")
		for _, c := range rows {
			fmt.Fprintf(&b, "| %s |", c.Name)
			for _, n := range h.o.conns {
				r := h.result(c.Name, wl, n)
				if r == nil {
					b.WriteString(" | | |")
					continue
				}
				cell := fmt.Sprintf("%.0f", r.CallsPerSec)
				if br := h.result(base, wl, n); br != nil && c.Name != base && br.CallsPerSec > 0 && wl != "first-request" && wl != bench.Mixed {
					cell += fmt.Sprintf(" (%.2f)", br.CallsPerSec/r.CallsPerSec)
				}
				if r.Errors > 0 {
					cell += fmt.Sprintf(" [%d errors]", r.Errors)
				}
				if r.Repeats > 0 {
					cell += fmt.Sprintf(" [%d repeated tokens]", r.Repeats)
				}
				fmt.Fprintf(&b, " %s | %.2f ms | %.2f ms |", cell, ms(r.P50), ms(r.P99))
			}
			b.WriteString("\n")
		}
	}
	for _, n := range h.o.conns {
		d, g := h.result("epicme", dpopWorkload, n), h.result("epicme", bench.GetEntry, n)
		if d != nil && g != nil && g.CallsPerSec > 0 {
			fmt.Fprintf(&b, "\nepicme with DPoP / with bearer tokens, get_entry at %d conn: %.2f (the load generator signs each proof, on the same cores)\n", n, d.CallsPerSec/g.CallsPerSec)
		}
		if s, bare := h.result("epicme", sessionWorkload, n), h.result("bare", bench.GetEntry, n); s != nil && bare != nil && bare.CallsPerSec > 0 {
			fmt.Fprintf(&b, "\nepicme on 2025-11-25 sessions / bare (stateless), get_entry at %d conn: %.2f\n", n, s.CallsPerSec/bare.CallsPerSec)
		}
	}
	b.WriteString("\nserver CPU time per call (µs; user and system, from /proc; the load generator's is not counted)\n\n| server | workload |")
	for _, n := range h.o.conns {
		fmt.Fprintf(&b, " %d conn |", n)
	}
	b.WriteString("\n|---|---|")
	for range h.o.conns {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, wl := range tableWorkloads {
		for _, c := range h.contestants {
			if !slices.ContainsFunc(h.o.conns, func(n int) bool { return h.result(c.Name, wl, n) != nil }) {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s |", c.Name, wl)
			for _, n := range h.o.conns {
				if r := h.result(c.Name, wl, n); r != nil {
					fmt.Fprintf(&b, " %.0f |", float64(r.CPUPerCall)/float64(time.Microsecond))
				} else {
					b.WriteString(" |")
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nresident memory (VmRSS; in brackets the anonymous part, without the mapped database)\n\n| server | idle | under the heaviest load |\n|---|---:|---:|\n")
	for _, c := range h.contestants {
		fmt.Fprintf(&b, "| %s | %.1f MB (%.1f) | %.1f MB (%.1f) |\n", c.Name,
			float64(c.IdleRSS)/1024, float64(c.IdleAnon)/1024, float64(c.LoadRSS)/1024, float64(c.LoadAnon)/1024)
	}
	return b.String()
}

// chart draws throughput, p50 and p99 per concurrency for get_entry and
// tools/list.
func (h *peersHarness) chart(m machineInfo) *chart.Chart {
	c := &chart.Chart{
		Title:    "epicme-bench peers: median of " + strconv.Itoa(h.o.rounds) + " rounds, " + strconv.Itoa(h.o.users) + " users",
		Subtitle: fmt.Sprintf("%d CPUs, %s, %s; load generator on the same machine", m.CPUs, m.CPUModel, m.GoVersion),
	}
	for _, ct := range h.contestants {
		c.Series = append(c.Series, ct.Name)
	}
	var groups []string
	for _, n := range h.o.conns {
		groups = append(groups, fmt.Sprintf("%d conn", n))
	}
	for _, wl := range []string{bench.GetEntry, bench.ToolsList} {
		for _, metric := range []string{"calls/s", "p50 ms", "p99 ms"} {
			p := chart.Panel{Title: wl + " " + metric, Groups: groups, Format: chart.Thousands}
			if metric != "calls/s" {
				p.Format = chart.Millis
			}
			for _, ct := range h.contestants {
				var vs []float64
				for _, n := range h.o.conns {
					r := h.result(ct.Name, wl, n)
					switch {
					case r == nil:
						vs = append(vs, math.NaN())
					case metric == "calls/s":
						vs = append(vs, r.CallsPerSec)
					case metric == "p50 ms":
						vs = append(vs, ms(r.P50))
					default:
						vs = append(vs, ms(r.P99))
					}
				}
				p.Values = append(p.Values, vs)
			}
			c.Panels = append(c.Panels, p)
		}
	}
	return c
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// nodeRequired reports whether EPICME_TEST_REQUIRE (set by CI) lists node
// or all: then a missing TypeScript peer is an error, not a skip.
func nodeRequired() bool {
	for _, s := range strings.Split(os.Getenv("EPICME_TEST_REQUIRE"), ",") {
		if s = strings.TrimSpace(s); s == "node" || s == "all" {
			return true
		}
	}
	return false
}
