package mcpserver

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Stored sessions: several Servers on one SQLite store, as instances
// behind a load balancer without sticky sessions (or one instance across a
// restart), each on its own loopback HTTP server.

// cluster is a set of Servers sharing one store.
type cluster struct {
	db         *sqlite.DB
	alice, bob *epicme.User
	servers    []*Server
	urls       []string
	https      []*httptest.Server
	bus        *loopbackPeers
	// relayTimeout is the servers' RelayTimeout (0: the default).
	relayTimeout time.Duration
	// samplingTimeout is the servers' SamplingTimeout (0: 10 s).
	samplingTimeout time.Duration
}

// loopbackPeers is Peers within one process: Publish hands the message to
// every Server at once, as PostgreSQL NOTIFY does between processes.
type loopbackPeers struct {
	mu      sync.Mutex
	servers []*Server
	sent    map[string]int   // by kind
	deaf    map[*Server]bool // lost the channel: hears nothing
}

func (p *loopbackPeers) Publish(_ context.Context, msg string) error {
	p.mu.Lock()
	servers := p.servers
	for _, k := range []string{kindEnd, kindResponse, kindUpdated, kindSuggest} {
		if strings.Contains(msg, `"k":"`+k+`"`) {
			p.sent[k]++
		}
	}
	p.mu.Unlock()
	for _, s := range servers {
		p.mu.Lock()
		deaf := p.deaf[s]
		p.mu.Unlock()
		if !deaf {
			s.ReceivePeerMessage(msg)
		}
	}
	return nil
}

func (p *loopbackPeers) count(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[kind]
}

// testAuth puts the Caller named by the test headers on each request.
func testAuth(users map[string]*epicme.User, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := users[r.Header.Get(hdrUser)]; u != nil {
			r = r.WithContext(epicme.NewContextWithCaller(r.Context(), &epicme.Caller{
				User: u, Scopes: epicme.AllScopes, ClientID: r.Header.Get(hdrClient),
			}))
		}
		next.ServeHTTP(w, r)
	})
}

// newCluster starts n Servers on one store, connected by loopbackPeers
// when peers is set.
func newCluster(t *testing.T, n int, peers bool) *cluster {
	t.Helper()
	return newClusterWith(t, n, peers, cluster{})
}

// newClusterWith is newCluster with the servers' timeouts of opts.
func newClusterWith(t *testing.T, n int, peers bool, opts cluster) *cluster {
	t.Helper()
	db, alice, bob := openTestStore(t)
	c := &cluster{db: db, alice: alice, bob: bob, relayTimeout: opts.relayTimeout, samplingTimeout: opts.samplingTimeout}
	if peers {
		c.bus = &loopbackPeers{sent: map[string]int{}, deaf: map[*Server]bool{}}
	}
	for range n {
		c.start(t)
	}
	return c
}

// start adds a Server to the cluster and returns its /mcp URL.
func (c *cluster) start(t *testing.T) string {
	t.Helper()
	opts := Options{Logger: quietLogger(), Secret: testSecret, SamplingTimeout: cmp.Or(c.samplingTimeout, 10*time.Second), RelayTimeout: c.relayTimeout}
	if c.bus != nil {
		opts.Peers = c.bus
	}
	srv, err := New(c.db, contextCallers, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if c.bus != nil {
		c.bus.mu.Lock()
		c.bus.servers = append(c.bus.servers, srv)
		c.bus.mu.Unlock()
		srv.PeersReady()
	}
	users := map[string]*epicme.User{c.alice.ID: c.alice, c.bob.ID: c.bob}
	mux := http.NewServeMux()
	mux.Handle("/mcp", testAuth(users, srv.HTTPHandler()))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	c.servers = append(c.servers, srv)
	c.urls = append(c.urls, ts.URL+"/mcp")
	c.https = append(c.https, ts)
	return ts.URL + "/mcp"
}

// kill stops instance i as a crash would: its connections drop, it hears
// no peer message and answers nothing more.
func (c *cluster) kill(i int) {
	if c.bus != nil {
		c.bus.mu.Lock()
		c.bus.deaf[c.servers[i]] = true
		c.bus.mu.Unlock()
	}
	c.https[i].CloseClientConnections()
	c.https[i].Listener.Close()
}

// rotating is an http.RoundTripper that sends each request to the next
// instance, as a load balancer without sticky sessions does, and counts
// the requests each instance received.
type rotating struct {
	targets []*url.URL
	next    atomic.Uint64
	served  []atomic.Int64
}

func newRotating(t *testing.T, urls []string) *rotating {
	t.Helper()
	r := &rotating{served: make([]atomic.Int64, len(urls))}
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		r.targets = append(r.targets, p)
	}
	return r
}

func (r *rotating) RoundTrip(req *http.Request) (*http.Response, error) {
	i := (r.next.Add(1) - 1) % uint64(len(r.targets))
	r.served[i].Add(1)
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.targets[i].Scheme, r.targets[i].Host
	out.Host = ""
	return http.DefaultTransport.RoundTrip(out)
}

// connectRotating starts a client of version for user whose requests go
// round the instances.
func (c *cluster) connectRotating(t *testing.T, rt http.RoundTripper, version string, user *epicme.User, listen bool, opts ...client.ClientOption) *client.Client {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(map[string]string{hdrUser: user.ID}),
		transport.WithHTTPLogger(quietLogger()),
		transport.WithHTTPBasicClient(&http.Client{Transport: rt}),
	}
	if listen {
		topts = append(topts, transport.WithContinuousListening())
	}
	tr, err := transport.NewStreamableHTTP(c.urls[0], topts...)
	if err != nil {
		t.Fatal(err)
	}
	return startClient(t, tr, version, opts...)
}

// sessionRequest sends a tools/call with a session id to one instance, as
// user, and returns the status.
func sessionRequest(t *testing.T, target, sid string, user *epicme.User, clientID string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_entries","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(hdrUser, user.ID)
	if clientID != "" {
		req.Header.Set(hdrClient, clientID)
	}
	req.Header.Set(headerSessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, v20251125)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRule_Session_ServedByEveryInstance: a session of an older revision
// begun on one instance is served by every instance sharing the store:
// tool calls, resources/read, prompts/get, completion/complete and
// resources/subscribe, with the client's capabilities known to each.
func TestRule_Session_ServedByEveryInstance(t *testing.T) {
	for _, version := range []string{v20250326, v20251125} {
		t.Run(version, func(t *testing.T) {
			c := newCluster(t, 3, true)
			rt := newRotating(t, c.urls)
			cl := c.connectRotating(t, rt, version, c.alice, false)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range 3 {
				ok(t, cl, "create_entry", map[string]any{"title": "Day " + string(rune('A'+i)), "content": "walked"})
			}
			out, _ := ok(t, cl, "list_entries", map[string]any{})
			if n := len(path(out, "entries").([]any)); n != 3 {
				t.Fatalf("list_entries gave %d entries, want 3", n)
			}
			for i := range 3 {
				if _, err := readResource(cl, "epicme://entries/1"); err != nil {
					t.Fatalf("resources/read #%d: %v", i, err)
				}
			}
			var sub mcp.SubscribeRequest
			sub.Params.URI = "epicme://entries/2"
			if err := cl.Subscribe(ctx, sub); err != nil {
				t.Fatal(err)
			}
			var pr mcp.GetPromptRequest
			pr.Params.Name = "suggest_tags"
			pr.Params.Arguments = map[string]string{"entryId": "1"}
			if _, err := cl.GetPrompt(ctx, pr); err != nil {
				t.Fatalf("prompts/get: %v", err)
			}
			var cr mcp.CompleteRequest
			cr.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "suggest_tags"}
			cr.Params.Argument.Name, cr.Params.Argument.Value = "entryId", ""
			if _, err := cl.Complete(ctx, cr); err != nil {
				t.Fatalf("completion/complete: %v", err)
			}
			for i := range rt.served {
				if rt.served[i].Load() < 3 {
					t.Fatalf("instance %d served %d requests; the test did not rotate", i, rt.served[i].Load())
				}
			}
			sess, err := c.db.GetSession(ctx, cl.GetSessionId(), time.Now().Add(-time.Hour))
			if err != nil || sess.ProtocolVersion != version || strings.Join(sess.Subscriptions, ",") != "epicme://entries/2" {
				t.Fatalf("stored session = %+v, %v", sess, err)
			}
		})
	}
}

// TestRule_Session_BoundToUserAndClientOnEveryInstance: a session id is
// not a credential (MCP security best practices, "Session Hijacking"):
// another user, or another client of the same user, gets 404 from every
// instance, as an unknown id does, so nobody learns the id exists.
func TestRule_Session_BoundToUserAndClientOnEveryInstance(t *testing.T) {
	c := newCluster(t, 3, true)
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, false)
	sid := cl.GetSessionId()
	for i, u := range c.urls {
		if got := sessionRequest(t, u, sid, c.bob, ""); got != http.StatusNotFound {
			t.Errorf("instance %d: another user's request = %d, want 404", i, got)
		}
		if got := sessionRequest(t, u, sid, c.alice, "another-app"); got != http.StatusNotFound {
			t.Errorf("instance %d: another client's request = %d, want 404", i, got)
		}
		if got := sessionRequest(t, u, sid, c.alice, ""); got != http.StatusOK {
			t.Errorf("instance %d: the owner's request = %d, want 200", i, got)
		}
		if got := sessionRequest(t, u, sid+"0", c.alice, ""); got != http.StatusNotFound {
			t.Errorf("instance %d: unknown session = %d, want 404", i, got)
		}
	}
}

// TestRule_Session_DeleteEndsItOnEveryInstance: a DELETE on one instance
// ends the session on all (MCP basic/transports: then 404), including
// instances that had it in memory and one holding its GET stream.
func TestRule_Session_DeleteEndsItOnEveryInstance(t *testing.T) {
	c := newCluster(t, 3, true)
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, true)
	sid := cl.GetSessionId()
	for i, u := range c.urls {
		if got := sessionRequest(t, u, sid, c.alice, ""); got != http.StatusOK {
			t.Fatalf("instance %d before DELETE = %d", i, got)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, c.urls[1], nil)
	req.Header.Set(hdrUser, c.bob.ID)
	req.Header.Set(headerSessionID, sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's DELETE = %d, want 404", resp.StatusCode)
	}
	req.Header.Set(hdrUser, c.alice.ID)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", resp.StatusCode)
	}
	for i, u := range c.urls {
		if got := sessionRequest(t, u, sid, c.alice, ""); got != http.StatusNotFound {
			t.Errorf("instance %d after DELETE = %d, want 404", i, got)
		}
	}
	if c.bus.count(kindEnd) != 1 {
		t.Errorf("%d end notices, want 1", c.bus.count(kindEnd))
	}
	eventually(t, "the GET stream and mcp-go's sessions to end", func() bool {
		for _, s := range c.servers {
			if _, registered, active, _ := s.sessions.localState(epicme.SessionKey(sid)); active || registered != nil {
				return false
			}
		}
		return true
	})
}

// TestRule_Session_EndHonouredWhilePeersAreLost: an instance that lost the
// peer channel (and so would miss an "end" notice) reads sessions from the
// store on every request, so a session ended elsewhere is refused at once.
func TestRule_Session_EndHonouredWhilePeersAreLost(t *testing.T) {
	c := newCluster(t, 2, true)
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, false)
	sid := cl.GetSessionId()
	for range 2 {
		if got := sessionRequest(t, c.urls[1], sid, c.alice, ""); got != http.StatusOK {
			t.Fatalf("before = %d", got)
		}
	}
	c.bus.mu.Lock()
	c.bus.deaf[c.servers[1]] = true
	c.bus.mu.Unlock()
	c.servers[1].PeersLost()
	if got := sessionRequest(t, c.urls[1], sid, c.alice, ""); got != http.StatusOK {
		t.Fatalf("while lost = %d", got)
	}
	req, _ := http.NewRequest(http.MethodDelete, c.urls[0], nil)
	req.Header.Set(hdrUser, c.alice.ID)
	req.Header.Set(headerSessionID, sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := sessionRequest(t, c.urls[1], sid, c.alice, ""); got != http.StatusNotFound {
		t.Fatalf("an instance that missed the end notice = %d, want 404", got)
	}
}

// TestRule_Session_SurvivesRestart: with the session in the store, an
// instance started after the one that began it (one SQLite instance
// restarted) serves it.
func TestRule_Session_SurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, false)
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, false)
	ok(t, cl, "create_entry", map[string]any{"title": "Before", "content": "the restart"})
	sid := cl.GetSessionId()
	c.servers[0].Close()
	next := c.start(t)
	if got := sessionRequest(t, next, sid, c.alice, ""); got != http.StatusOK {
		t.Fatalf("after the restart = %d, want 200", got)
	}
	if got := sessionRequest(t, next, sid, c.bob, ""); got != http.StatusNotFound {
		t.Fatalf("another user after the restart = %d, want 404", got)
	}
}

// TestRule_Session_IdleSessionIsGone: a session idle for longer than
// SessionIdleTTL gets 404 on every instance, and is deleted from the store.
func TestRule_Session_IdleSessionIsGone(t *testing.T) {
	c := newCluster(t, 2, true)
	ctx := context.Background()
	sess := &epicme.MCPSession{ID: newSessionID(), UserID: c.alice.ID, ProtocolVersion: v20251125,
		Capabilities: []byte("{}"), CreatedAt: time.Now().Add(-2 * DefaultSessionIdleTTL)}
	if err := c.db.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	for i, u := range c.urls {
		if got := sessionRequest(t, u, sess.ID, c.alice, ""); got != http.StatusNotFound {
			t.Errorf("instance %d: idle session = %d, want 404", i, got)
		}
	}
}

// TestElicitationAnsweredOnAnotherInstance: delete_entry asks for
// confirmation (elicitation, MCP client/elicitation) on the SSE stream of
// the tool call; the client's answer arrives at another instance, which
// passes it to the one waiting. The capability declared at initialize on
// one instance is known to the instance that serves the call.
func TestElicitationAnsweredOnAnotherInstance(t *testing.T) {
	c := newCluster(t, 3, true)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		confirmer *confirmer
		deleted   bool
	}{
		{"accepted", &confirmer{action: mcp.ElicitationResponseActionAccept, confirmed: true}, true},
		{"declined", &confirmer{action: mcp.ElicitationResponseActionDecline}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, false, client.WithElicitationHandler(tc.confirmer))
			out, _ := ok(t, cl, "create_entry", map[string]any{"title": "Drop me", "content": "y"})
			id := int64(path(out, "entry", "id").(float64))
			before := c.bus.count(kindResponse)
			res := call(t, cl, "delete_entry", map[string]any{"id": id})
			if tc.confirmer.asked.Load() != 1 {
				t.Fatalf("asked %d times, want 1", tc.confirmer.asked.Load())
			}
			if c.bus.count(kindResponse) == before {
				t.Fatal("the answer was not passed between instances; the test did not exercise routing")
			}
			_, err := c.db.GetEntry(ctx, c.alice.ID, id)
			if gone := epicme.ErrorCode(err) == epicme.ENOTFOUND; gone != tc.deleted {
				t.Fatalf("entry deleted = %v, want %v (result %v)", gone, tc.deleted, texts(res))
			}
		})
	}
}

// TestSamplingOnAnotherInstancesStream: create_entry on one instance asks
// for tag suggestions (MCP client/sampling) on the session's GET stream,
// held by another instance; the model's answer comes back through a third.
func TestSamplingOnAnotherInstancesStream(t *testing.T) {
	c := newCluster(t, 3, true)
	ctx := context.Background()
	model := &suggester{answer: `[{"name": "mountains"}]`}
	rt := newRotating(t, c.urls)
	cl := c.connectRotating(t, rt, v20251125, c.alice, true, client.WithSamplingHandler(model))
	eventually(t, "the GET stream to open", func() bool {
		for _, s := range c.servers {
			if _, registered, _, streams := s.sessions.localState(epicme.SessionKey(cl.GetSessionId())); streams && registered != nil {
				return true
			}
		}
		return false
	})
	for i := range 3 {
		ok(t, cl, "create_entry", map[string]any{"title": "Summit " + string(rune('A'+i)), "content": "We climbed."})
	}
	eventually(t, "suggested tags on every entry", func() bool {
		for id := int64(1); id <= 3; id++ {
			en, err := c.db.GetEntry(ctx, c.alice.ID, id)
			if err != nil || len(en.Tags) != 1 || en.Tags[0].Name != "mountains" {
				return false
			}
		}
		return true
	})
	if model.calls.Load() != 3 {
		t.Errorf("model asked %d times, want 3", model.calls.Load())
	}
	if c.bus.count(kindSuggest) == 0 {
		t.Error("no suggestion was passed to the instance holding the stream; the test did not exercise routing")
	}
}

// TestResourceUpdatedOnAnotherInstance: a session subscribed on one
// instance hears notifications/resources/updated, on its GET stream held
// by another, for a change made through a third.
func TestResourceUpdatedOnAnotherInstance(t *testing.T) {
	c := newCluster(t, 3, true)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	updates := make(chan string, 16)
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, true)
	cl.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			updates <- uri
		}
	})
	ok(t, cl, "create_entry", map[string]any{"title": "Watched", "content": "w"})
	// The client opens its GET stream in the background; an update made
	// before any instance holds it has nowhere to go. Wait for it (a slow
	// CI machine can take a while), then every update must arrive.
	key := epicme.SessionKey(cl.GetSessionId())
	for held := false; !held; {
		for _, srv := range c.servers {
			if _, _, _, streams := srv.sessions.localState(key); streams {
				held = true
			}
		}
		if !held {
			select {
			case <-ctx.Done():
				t.Fatal("no instance holds the client's GET stream")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	var sub mcp.SubscribeRequest
	sub.Params.URI = "epicme://entries/1"
	if err := cl.Subscribe(ctx, sub); err != nil {
		t.Fatal(err)
	}
	// Another user's change is not announced; the owner's, made on
	// whichever instance, is.
	other := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.bob, false)
	ok(t, other, "create_entry", map[string]any{"title": "Bob's", "content": "b"})
	ok(t, other, "update_entry", map[string]any{"id": 1, "title": "Bob's too"})
	for i := range 3 {
		ok(t, cl, "update_entry", map[string]any{"id": 1, "title": "Watched " + string(rune('A'+i))})
		select {
		case uri := <-updates:
			if uri != "epicme://entries/1" {
				t.Fatalf("updated %q", uri)
			}
		case <-ctx.Done():
			t.Fatalf("update %d: no resources/updated notification", i)
		}
	}
}

// TestRelayedAnswerWhenTheInstanceHoldingTheRequestStopped: the instance
// holding a pending elicitation stops (its connections drop) before the
// user answers. The client sees the call's stream close; its answer,
// arriving at another instance, is passed on, no instance confirms it, and
// the client gets 503 saying the request is lost, never 202; nothing was
// deleted.
func TestRelayedAnswerWhenTheInstanceHoldingTheRequestStopped(t *testing.T) {
	c := newClusterWith(t, 2, true, cluster{relayTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	// A session whose client can answer elicitations, begun on instance 0.
	tr, err := transport.NewStreamableHTTP(c.urls[0], transport.WithHTTPHeaders(map[string]string{hdrUser: c.alice.ID}), transport.WithHTTPLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	cl := startClient(t, tr, v20251125, client.WithElicitationHandler(&confirmer{action: mcp.ElicitationResponseActionAccept, confirmed: true}))
	out, _ := ok(t, cl, "create_entry", map[string]any{"title": "Keep me", "content": "y"})
	id := int64(path(out, "entry", "id").(float64))
	sid := cl.GetSessionId()

	post := func(target, body string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(hdrUser, c.alice.ID)
		req.Header.Set(headerSessionID, sid)
		req.Header.Set(mcp.HeaderProtocolVersion, v20251125)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// The call goes to instance 0, which asks on the call's stream.
	call := post(c.urls[0], fmt.Sprintf(`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"delete_entry","arguments":{"id":%d}}}`, id))
	defer call.Body.Close()
	sc := bufio.NewScanner(call.Body)
	var ask struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(data), &ask) == nil && ask.Method == "elicitation/create" {
			break
		}
	}
	if ask.Method != "elicitation/create" {
		t.Fatalf("no elicitation on the call's stream (%v)", sc.Err())
	}
	// Instance 0 stops; the call's stream closes.
	c.kill(0)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"id":41`) {
			t.Fatalf("the call was answered although its instance stopped: %s", sc.Text())
		}
	}
	// The answer reaches instance 1, which passes it on; nobody confirms.
	answer := post(c.urls[1], fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"action":"accept","content":{"confirmed":true}}}`, ask.ID))
	body, _ := io.ReadAll(answer.Body)
	answer.Body.Close()
	if answer.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no server instance confirmed") {
		t.Fatalf("the answer got %d %s; want 503 saying no instance confirmed it", answer.StatusCode, body)
	}
	if c.bus.count(kindResponse) == 0 {
		t.Fatal("the answer was not passed between instances")
	}
	if _, err := c.db.GetEntry(ctx, c.alice.ID, id); err != nil {
		t.Fatalf("the entry should still be there: %v", err)
	}
}

// TestSamplingWaitsForAStreamOnAnotherInstance: a create_entry that
// overtakes the client's GET stream leaves its suggestion waiting on every
// instance; the instance the stream then reaches asks it, and a second
// stream opened on another instance within the wait is not asked again.
func TestSamplingWaitsForAStreamOnAnotherInstance(t *testing.T) {
	// The requests read here are never answered: give up on them soon.
	c := newClusterWith(t, 3, true, cluster{samplingTimeout: 200 * time.Millisecond})
	cl := c.connectRotating(t, newRotating(t, c.urls), v20251125, c.alice, false,
		client.WithSamplingHandler(&suggester{answer: "[]"}))
	ok(t, cl, "create_entry", map[string]any{"title": "Summit", "content": "We climbed to the top."})
	if c.bus.count(kindSuggest) == 0 {
		t.Fatal("the suggestion was not passed to the other instances; the test does not exercise them")
	}

	// samplingRequests reads the GET stream of the session on instance i
	// and sends each sampling request's data line.
	samplingRequests := func(i int) <-chan string {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.urls[i], nil)
		req.Header.Set(hdrUser, c.alice.ID)
		req.Header.Set("Mcp-Session-Id", cl.GetSessionId())
		req.Header.Set(mcp.HeaderProtocolVersion, v20251125)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET stream on instance %d: %v %v", i, resp, err)
		}
		out := make(chan string, 4)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), `"method":"sampling/createMessage"`) {
					out <- sc.Text()
				}
			}
		}()
		return out
	}
	select {
	case got := <-samplingRequests(1):
		if !strings.Contains(got, "We climbed to the top.") {
			t.Fatalf("the sampling request is not about the entry: %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sampling request on the stream opened after create_entry")
	}
	select {
	case got := <-samplingRequests(2):
		t.Fatalf("the suggestion was asked again on a second stream: %s", got)
	case <-time.After(streamRegistrationWait + 500*time.Millisecond):
	}
}
