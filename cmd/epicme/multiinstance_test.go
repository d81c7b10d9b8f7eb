package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// balancer is a reverse proxy in front of the instances, keeping the Host
// the client used. With bySession it routes as docs/deployment.md asks: a
// request carrying an Mcp-Session-Id to the instance a hash of it picks,
// any other to the next instance. Without, every request goes to the next
// instance, as a load balancer without sticky sessions does, so that each
// step of a session lands elsewhere and what instances relay is exercised.
func balancer(t *testing.T, backends []string, bySession bool) *httptest.Server {
	t.Helper()
	var next atomic.Uint64
	var targets []*url.URL
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, u)
	}
	p := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := next.Add(1)
		if id := r.In.Header.Get("Mcp-Session-Id"); bySession && id != "" {
			h := fnv.New64a()
			h.Write([]byte(id))
			i = h.Sum64()
		}
		r.SetURL(targets[i%uint64(len(targets))])
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
	// The proxy reads each request body whole before passing it on. Handed
	// the server's own body, the transport can still be checking it for
	// bytes past its Content-Length when an instance's answer begins (an
	// event stream's headers come early); writing those headers closes the
	// inbound body, the check fails, and the transport drops the connection
	// to the instance mid-answer (go.dev/issue/40747): the client sees its
	// event stream break.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// refusedEverywhere waits until token is refused with 401 by every instance
// and returns how long that took.
func refusedEverywhere(t *testing.T, instances []string, token string) time.Duration {
	t.Helper()
	start := time.Now()
	for _, base := range instances {
		testenv.Eventually(t, 10*time.Second, func() error {
			req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("%s answers %d to a revoked token", base, resp.StatusCode)
			}
			return nil
		})
	}
	return time.Since(start)
}

// accepted reports whether an instance lets token through to /mcp (whatever
// the MCP layer then makes of a bare tools/list).
func accepted(t *testing.T, base, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusServiceUnavailable {
		t.Logf("%s answered %d", base, resp.StatusCode)
		return false
	}
	return true
}

// cluster is three serve instances sharing one new PostgreSQL database
// behind a round-robin proxy (lb), as several instances behind a load
// balancer.
type cluster struct {
	db       *postgres.DB
	backends []string // each instance's base URL
	lb       *httptest.Server
	cli      *cli
	users    map[string]*epicme.User // by email
}

// newCluster creates the database with a local account for each of emails
// (password "a good password") and starts the three instances with flags
// besides --addr and --public-url, behind a balancer that routes sessions
// by their id.
func newCluster(t *testing.T, emails []string, flags ...string) *cluster {
	t.Helper()
	return newClusterRouted(t, true, emails, flags...)
}

// newClusterRouted is newCluster with the balancer's routing chosen.
func newClusterRouted(t *testing.T, bySession bool, emails []string, flags ...string) *cluster {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cl := &cluster{db: db, users: map[string]*epicme.User{}}
	hash, _ := password.HashWith("a good password", password.Params{Memory: 1024, Time: 1, Threads: 1})
	for _, email := range emails {
		u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: email, PasswordHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		cl.users[email] = u
	}
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	for _, a := range addrs {
		cl.backends = append(cl.backends, "http://"+a)
	}
	cl.lb = balancer(t, cl.backends, bySession)
	cl.cli = newCLI(t)
	cl.cli.vars["EPICME_DATABASE_URL"] = dbURL
	for i, a := range addrs {
		sv := startServe(t, cl.cli, append([]string{"--addr", a, "--public-url", cl.lb.URL}, flags...)...)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("instance %d (%s) logged:\n%s", i, a, sv.stderr)
			}
		})
	}
	return cl
}

// TestEmbeddedAuthorizationServerOnSeveralInstances runs three serve
// instances with the embedded authorization server on one PostgreSQL
// database, one data directory (shared keys.kek and secret.key) and one
// public URL, behind a round-robin proxy. A client signs in, consents and
// exchanges its code with each step on another instance; its token works on
// all three; and each kind of revocation made on one instance (RFC 7009, a
// grant revoked by the operator, a refresh token replayed) is refused by
// every instance, the time taken logged. Then the database ends every
// session, as a restart would, and all three recover by themselves.
func TestEmbeddedAuthorizationServerOnSeveralInstances(t *testing.T) {
	ctx := context.Background()
	// No grace for a refresh token used twice, so that the replay below,
	// made at once, is refused; within the default 2 s it would be answered.
	cl := newCluster(t, []string{"me@example.com"}, "--refresh-reuse-grace", "0")
	db, backends, lb, c := cl.db, cl.backends, cl.lb, cl.cli
	resource := lb.URL + "/mcp"

	// RFC 7009 revocation of an access token, sent to instance 0.
	tok := obtainTokens(t, lb.URL, resource, "me@example.com", "a good password")
	for _, b := range backends {
		if !accepted(t, b, tok.access) {
			t.Fatalf("%s refuses a fresh token", b)
		}
	}
	resp, err := http.PostForm(backends[0]+authserver.RevocationPath, url.Values{"token": {tok.access}, "client_id": {tok.clientID}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation: %v %v", resp, err)
	}
	resp.Body.Close()
	t.Logf("RFC 7009 revocation on one instance refused by all three after %v", refusedEverywhere(t, backends[1:], tok.access))

	// The operator revokes the grant with epicme grant revoke.
	tok = obtainTokens(t, lb.URL, resource, "me@example.com", "a good password")
	for _, b := range backends {
		if !accepted(t, b, tok.access) {
			t.Fatalf("%s refuses a fresh token", b)
		}
	}
	c.mustRun("grant", "revoke", "--email", "me@example.com")
	t.Logf("grant revoked by the operator, refused by all three after %v", refusedEverywhere(t, backends, tok.access))

	// A refresh token used twice revokes its grant (OAuth 2.1 §4.3.1).
	tok = obtainTokens(t, lb.URL, resource, "me@example.com", "a good password")
	refresh := func(base string) int {
		resp, err := http.PostForm(base+authserver.TokenPath, url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {tok.refresh}, "client_id": {tok.clientID}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := refresh(backends[0]); code != http.StatusOK {
		t.Fatalf("first refresh: %d", code)
	}
	if code := refresh(backends[1]); code != http.StatusBadRequest {
		t.Fatalf("replayed refresh token: %d, want 400", code)
	}
	t.Logf("refresh token replayed on one instance, its first access token refused by all three after %v", refusedEverywhere(t, backends, tok.access))

	// The database ends every session, as a restart does: each instance
	// reconnects by itself, its revocation listener included.
	var ended int
	if err := db.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&ended); err != nil || ended < 3 {
		t.Fatalf("ended %d sessions (%v), want at least one listener per instance", ended, err)
	}
	db.Pool().Reset()
	tok = obtainTokens(t, lb.URL, resource, "me@example.com", "a good password")
	for _, b := range backends {
		testenv.Eventually(t, 15*time.Second, func() error {
			if !accepted(t, b, tok.access) {
				return fmt.Errorf("%s has not recovered since the database ended its sessions", b)
			}
			return nil
		})
	}
	resp, err = http.PostForm(backends[2]+authserver.RevocationPath, url.Values{"token": {tok.access}, "client_id": {tok.clientID}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	t.Logf("after the database ended every session, a revocation was refused by all three after %v", refusedEverywhere(t, backends, tok.access))

	// Each instance's metrics show its verifier, with the feed live again.
	for _, b := range backends {
		start := time.Now()
		var code int
		var body string
		testenv.Eventually(t, 15*time.Second, func() error {
			if code, body = fetch(t, b+"/metrics"); strings.Contains(body, "\nepicme_revocation_feed_stale 1\n") {
				return fmt.Errorf("%s: the revocation feed is still stale", b)
			}
			return nil
		})
		t.Logf("%s: feed live %v after the check began", b, time.Since(start))
		if code != http.StatusOK || !strings.Contains(body, "\nepicme_revocation_feed_stale 0\n") ||
			!strings.Contains(body, "\nepicme_verifier_cache_misses_total ") || !strings.Contains(body, `epicme_auth_decisions_total{result="invalid_token"}`) {
			t.Fatalf("%s/metrics = %d:\n%s", b, code, body)
		}
	}
}

// TestRateLimitsHoldAcrossInstances runs three serve instances on one
// PostgreSQL database with a per-client limit of a burst of 6 refilled at
// one a minute, trusting X-Forwarded-For. One client sends a request to
// each instance in turn, from an address that is not loopback, each time
// after every instance has synced its limits (their sync counts on
// /metrics): together the three grant the client its 6 requests, not 6
// each, and then every instance refuses it with 429.
func TestRateLimitsHoldAcrossInstances(t *testing.T) {
	cl := newCluster(t, []string{"me@example.com"}, "--trust-forwarded-for",
		"--rate-mcp-client", "1/min,6", "--rate-sync-interval", "50ms")
	backends, lb := cl.backends, cl.lb
	// Through the proxy the source is loopback, which no limit counts.
	tok := obtainTokens(t, lb.URL, lb.URL+"/mcp", "me@example.com", "a good password")

	syncRe := regexp.MustCompile(`\nepicme_ratelimit_syncs_total (\d+)\n`)
	syncs := func(base string) int {
		code, body := fetch(t, base+"/metrics")
		m := syncRe.FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("%s/metrics = %d without epicme_ratelimit_syncs_total:\n%s", base, code, body)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// Two more syncs on an instance: one began after what came before.
	syncedTwice := func(base string) {
		n0 := syncs(base)
		testenv.Eventually(t, 15*time.Second, func() error {
			if n := syncs(base); n < n0+2 {
				return fmt.Errorf("%s has synced its rate limits %d times since, want 2", base, n-n0)
			}
			return nil
		})
	}
	call := func(base string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Authorization", "Bearer "+tok.access)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			t.Fatalf("%s refuses the token", base)
		}
		return resp
	}

	granted := 0
	for round := 0; round < 4; round++ {
		for _, b := range backends {
			if resp := call(b); resp.StatusCode != http.StatusTooManyRequests {
				granted++
			}
			syncedTwice(b) // its count is in the database
			for _, o := range backends {
				syncedTwice(o) // and every instance has read it
			}
		}
	}
	// 6, or 7 if the test took over a minute.
	if granted < 6 || granted > 7 {
		t.Fatalf("three instances granted one client %d requests; its limit is a burst of 6 (18 if each counted alone)", granted)
	}
	for _, b := range backends {
		if resp := call(b); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s after the client's allowance: %d, Retry-After %q", b, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// sessionPost sends a tools/call on session sid to one instance with token
// and returns the status.
func sessionPost(t *testing.T, base, token, sid string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_entries","arguments":{}}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sessionAnswers answers elicitation and sampling requests like a user
// who confirms and a model that suggests one tag.
type sessionAnswers struct {
	asked, sampled atomic.Int32
}

func (a *sessionAnswers) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a.asked.Add(1)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirmed": true}}}, nil
}

func (a *sessionAnswers) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	a.sampled.Add(1)
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.NewTextContent(`[{"name": "mountains"}]`)}, Model: "test-model"}, nil
}

// TestMultiInstanceSessions runs three serve instances on one PostgreSQL
// database, twice: behind a balancer that routes each session by its id
// (the deployment docs/deployment.md describes), and behind a round-robin
// one (no sticky sessions), where each request of a session lands on the
// next instance. A client of protocol 2025-11-25: tool calls and reads work
// everywhere; the delete confirmation (elicitation) is answered; tag
// suggestions (sampling) after every create_entry and resources/updated
// reach the client on its GET stream, whichever instance holds it. The
// session is refused with 404 by every instance to another user, and to
// the same user through another client; a DELETE on one instance ends it
// on all (404).
func TestMultiInstanceSessions(t *testing.T) {
	for _, routed := range []struct {
		name      string
		bySession bool
	}{{"routed-by-session", true}, {"round-robin", false}} {
		t.Run(routed.name, func(t *testing.T) { testMultiInstanceSessions(t, routed.bySession) })
	}
}

func testMultiInstanceSessions(t *testing.T, bySession bool) {
	ctx := context.Background()
	cs := newClusterRouted(t, bySession, []string{"alice@example.com", "bob@example.com"})
	db, backends, lb := cs.db, cs.backends, cs.lb
	alice := cs.users["alice@example.com"]
	resource := lb.URL + "/mcp"
	tok := obtainTokens(t, lb.URL, resource, "alice@example.com", "a good password")
	otherClient := obtainTokens(t, lb.URL, resource, "alice@example.com", "a good password")
	bob := obtainTokens(t, lb.URL, resource, "bob@example.com", "a good password")

	answers := &sessionAnswers{}
	tr, err := transport.NewStreamableHTTP(resource, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.access}),
		transport.WithContinuousListening(), transport.WithHTTPTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125),
		client.WithElicitationHandler(answers), client.WithSamplingHandler(answers))
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	updates := make(chan string, 16)
	cl.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			updates <- uri
		}
	})
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "multi-instance test", Version: "1"}
	if _, err := cl.Initialize(cctx, init); err != nil {
		t.Fatal(err)
	}
	sid := cl.GetSessionId()
	if sid == "" || cl.ProtocolVersion() != mcp.ProtocolVersion20251125 {
		t.Fatalf("session %q, protocol %q", sid, cl.ProtocolVersion())
	}
	callTool := func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		var req mcp.CallToolRequest
		req.Params.Name, req.Params.Arguments = name, args
		res, err := cl.CallTool(cctx, req)
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", name, err, res)
		}
		return res
	}

	// Tool calls and reads, each on the next instance; every create_entry
	// also asks for tag suggestions on the GET stream.
	for _, title := range []string{"Summit", "Ridge", "Valley"} {
		callTool("create_entry", map[string]any{"title": title, "content": "We walked."})
	}
	for i := range 3 {
		callTool("get_entry", map[string]any{"id": i + 1})
		var rr mcp.ReadResourceRequest
		rr.Params.URI = "epicme://entries/1"
		if _, err := cl.ReadResource(cctx, rr); err != nil {
			t.Fatalf("resources/read: %v", err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			if !cond() {
				return errors.New("waiting for " + what)
			}
			return nil
		})
	}
	waitFor("suggested tags on every entry", func() bool {
		for id := int64(1); id <= 3; id++ {
			e, err := db.GetEntry(ctx, alice.ID, id)
			if err != nil || len(e.Tags) != 1 || e.Tags[0].Name != "mountains" {
				return false
			}
		}
		return true
	})

	// Subscribed on one instance, updated through the others.
	var sub mcp.SubscribeRequest
	sub.Params.URI = "epicme://entries/2"
	if err := cl.Subscribe(cctx, sub); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		callTool("update_entry", map[string]any{"id": 2, "title": "Ridge " + strconv.Itoa(i)})
		select {
		case uri := <-updates:
			if uri != "epicme://entries/2" {
				t.Fatalf("updated %q", uri)
			}
		case <-cctx.Done():
			t.Fatalf("update %d: no resources/updated notification", i)
		}
	}

	// The delete confirmation is asked on the tool call's stream and
	// answered through another instance.
	callTool("delete_entry", map[string]any{"id": 3})
	if answers.asked.Load() != 1 {
		t.Fatalf("asked %d times to confirm, want 1", answers.asked.Load())
	}
	if _, err := db.GetEntry(ctx, alice.ID, 3); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		t.Fatalf("entry 3 after a confirmed delete: %v", err)
	}

	// The session id is no credential: refused to others everywhere, by
	// the one binding (the stored session), with the 404 of an unknown
	// session, so nobody learns the id exists; nor can another identity
	// lock the owner out.
	for _, b := range backends {
		for _, other := range []tokens{bob, otherClient} {
			if got := sessionPost(t, b, other.access, sid); got != http.StatusNotFound {
				t.Errorf("%s: another identity on the session = %d, want 404", b, got)
			}
		}
		if got := sessionPost(t, b, tok.access, sid); got != http.StatusOK {
			t.Errorf("%s: the owner = %d, want 200", b, got)
		}
	}

	// Ended on one instance, ended on all.
	req, _ := http.NewRequest(http.MethodDelete, backends[0]+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok.access)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	start := time.Now()
	for _, b := range backends {
		waitFor(b+" to refuse the ended session", func() bool { return sessionPost(t, b, tok.access, sid) == http.StatusNotFound })
	}
	t.Logf("session ended on one instance, 404 on all three after %v", time.Since(start))
}
