package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Workloads the load generator can send. Each is a tools/call of the tool of
// the same name.
const (
	GetEntry      = "get_entry"
	ListEntries   = "list_entries"
	SearchEntries = "search_entries"
)

// Workloads lists every workload, in the order "all" runs them.
var Workloads = []string{GetEntry, ListEntries, SearchEntries}

// Workloads that are not tools/call of one tool, used to compare servers
// (epicme-bench peers) rather than run by "all".
const (
	// ToolsList sends tools/list requests.
	ToolsList = "tools/list"
	// Mixed is a journal's traffic: of every ten calls, seven get_entry,
	// one list_entries, one search_entries and one create_entry (a write).
	Mixed = "mixed"
)

// OtherWorkloads lists the workloads outside Workloads.
var OtherWorkloads = []string{ToolsList, Mixed}

// ProtocolVersion is the MCP revision the load generator speaks: the
// stateless one, where every request stands alone (no initialize, no
// session), so each call is one HTTP round trip.
const ProtocolVersion = "2026-07-28"

// SessionVersion is the revision RunOptions.Session speaks: the one most
// clients use today.
const SessionVersion = "2025-11-25"

// UserHeader names the fixture user (by index) a request is for. Only the
// benchmark's own in-process server reads it (see FixtureAuth); any other
// server ignores it and serves its own idea of the caller.
const UserHeader = "X-Epicme-Bench-User"

// RunOptions configures a load run.
type RunOptions struct {
	// URL is the MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
	URL string
	// Workload is one of Workloads.
	Workload string
	// Connections is the number of keep-alive connections, each with one
	// request in flight at a time (default 8).
	Connections int
	// Warmup runs before measuring; its calls are not counted (default 2 s).
	Warmup time.Duration
	// Duration is how long to measure (default 10 s).
	Duration time.Duration
	// Users spreads calls over fixture users 0..Users-1 through UserHeader
	// (default 1: user 0 only).
	Users int
	// EntriesPerUser bounds the entry ids get_entry asks for (default 100).
	EntriesPerUser int
	// Seed chooses the ids and queries.
	Seed uint64
	// Header is added to every request (an Authorization header, say).
	Header http.Header
	// DPoP, when set, makes every call a DPoP client's: the token goes as
	// "Authorization: DPoP" and each call carries a proof signed for it
	// by this key (RFC 9449 §4, §7), as the load generator sends it; the
	// Tokens must be bound to the key.
	DPoP *DPoPKey
	// Session, when set to a protocol revision before 2026-07-28
	// (SessionVersion), sends every call on an HTTP session of that
	// revision, as most clients do today: before the run, one session is
	// opened per token (initialize, then notifications/initialized), and
	// each call carries its Mcp-Session-Id and no _meta; the sessions are
	// ended (DELETE) when the run is over. Only get_entry, list_entries and
	// search_entries. UserHeader is always 0: a session is its user's.
	Session string
	// Tokens, when set, are bearer tokens sent one per prepared request,
	// in order. A run prepares max(4096, len(Tokens)) requests and walks
	// them once before repeating any, so with more tokens than calls every
	// call carries a token the server has not seen in this run.
	Tokens []string
}

func (o *RunOptions) setDefaults() {
	if o.Connections <= 0 {
		o.Connections = 8
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Users <= 0 {
		o.Users = 1
	}
	if o.EntriesPerUser <= 0 {
		o.EntriesPerUser = 100
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// Result is what a load run measured.
type Result struct {
	Workload    string        `json:"workload"`
	Connections int           `json:"connections"`
	Duration    time.Duration `json:"duration"`
	Calls       int64         `json:"calls"`
	Errors      int64         `json:"errors"`
	CallsPerSec float64       `json:"callsPerSec"`
	P50         time.Duration `json:"p50"`
	P90         time.Duration `json:"p90"`
	P99         time.Duration `json:"p99"`
	Max         time.Duration `json:"max"`
	// FirstError describes the first failed call, if any.
	FirstError string `json:"firstError,omitempty"`
}

// String formats the result as one line.
func (r *Result) String() string {
	s := fmt.Sprintf("%-15s conns=%d calls=%d errors=%d  %.0f calls/s  p50=%s p90=%s p99=%s max=%s",
		r.Workload, r.Connections, r.Calls, r.Errors, r.CallsPerSec,
		fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max))
	if r.FirstError != "" {
		s += "\n  first error: " + r.FirstError
	}
	return s
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// requestPoolSize is how many distinct requests are prepared per run; each
// connection walks the pool from its own offset.
const requestPoolSize = 4096

// Run drives the endpoint with the workload and measures it. Calls are
// HTTP/1.1 POSTs on keep-alive connections, written and parsed by hand so
// that the generator spends little of the CPU it shares with a server on the
// same machine. A call counts as an error when the connection fails, the
// status is not 200, or the JSON-RPC response is an error or a tool error.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	o.setDefaults()
	host, pool, closeSessions, err := prepare(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer closeSessions()
	htu := strings.SplitN(o.URL, "?", 2)[0]

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr string
		errs     int64
		lats     []time.Duration
	)
	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	end := measureFrom.Add(o.Duration)
	for c := range o.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{addr: host, pool: pool, next: c * len(pool) / o.Connections, dpop: o.DPoP, htu: htu}
			defer w.close()
			local := make([]time.Duration, 0, 1<<16)
			var localErrs int64
			var localFirst string
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				err := w.call()
				d := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				local = append(local, d)
				if err != nil {
					localErrs++
					if localFirst == "" {
						localFirst = err.Error()
					}
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += localErrs
			if firstErr == "" {
				firstErr = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(lats)
	r := &Result{
		Workload:    o.Workload,
		Connections: o.Connections,
		Duration:    o.Duration,
		Calls:       int64(len(lats)),
		Errors:      errs,
		CallsPerSec: float64(len(lats)) / o.Duration.Seconds(),
		FirstError:  firstErr,
	}
	if n := len(lats); n > 0 {
		r.P50 = lats[n*50/100]
		r.P90 = lats[n*90/100]
		r.P99 = lats[n*99/100]
		r.Max = lats[n-1]
	}
	return r, nil
}

// prepare checks the options and builds the raw requests of a run; end
// ends the sessions it opened (RunOptions.Session).
func prepare(ctx context.Context, o *RunOptions) (host string, pool []prepared, end func(), err error) {
	end = func() {}
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return "", nil, end, fmt.Errorf("bench: URL %q must be an http:// URL (the load generator speaks plain HTTP/1.1)", o.URL)
	}
	if !slices.Contains(Workloads, o.Workload) && !slices.Contains(OtherWorkloads, o.Workload) {
		return "", nil, end, fmt.Errorf("bench: unknown workload %q (want one of %s)", o.Workload, strings.Join(append(Workloads, OtherWorkloads...), ", "))
	}
	if o.Session != "" && (o.Session >= ProtocolVersion || !slices.Contains(Workloads, o.Workload) || o.DPoP != nil) {
		return "", nil, end, fmt.Errorf("bench: a session run takes a revision before %s and a workload of %s, without DPoP", ProtocolVersion, strings.Join(Workloads, ", "))
	}
	host = u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var sessions map[string]string
	if o.Session != "" {
		if sessions, err = openSessions(ctx, o); err != nil {
			return "", nil, end, err
		}
		end = func() { endSessions(o, sessions) }
	}
	pool, err = buildRequests(u, o, sessions)
	if err != nil {
		end()
	}
	return host, pool, end, err
}

// openSessions opens one session of o.Session per distinct token (one
// without a token when there are none) and returns their ids by token.
func openSessions(ctx context.Context, o *RunOptions) (map[string]string, error) {
	ids := map[string]string{}
	tokens := o.Tokens
	if len(tokens) == 0 {
		tokens = []string{""}
	}
	fail := func(step string, err error) (map[string]string, error) {
		endSessions(o, ids)
		return nil, fmt.Errorf("bench: %s: %w", step, err)
	}
	for _, tok := range tokens {
		if _, ok := ids[tok]; ok {
			continue
		}
		resp, err := sessionRequest(ctx, o, http.MethodPost, tok, "", map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
			"protocolVersion": o.Session, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "epicme-bench", "version": "1"}}})
		switch {
		case err != nil:
			return fail("initialize", err)
		case resp.StatusCode != http.StatusOK:
			return fail("initialize", errors.New("answered "+resp.Status))
		case resp.Header.Get("Mcp-Session-Id") == "":
			return fail("initialize", fmt.Errorf("answered without a session id: does the server keep %s sessions?", o.Session))
		}
		ids[tok] = resp.Header.Get("Mcp-Session-Id")
		resp, err = sessionRequest(ctx, o, http.MethodPost, tok, ids[tok], map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
		if err == nil && resp.StatusCode != http.StatusAccepted {
			err = errors.New("answered " + resp.Status)
		}
		if err != nil {
			return fail("notifications/initialized", err)
		}
	}
	return ids, nil
}

// endSessions ends the sessions openSessions opened (MCP 2025-11-25
// transports, session management: DELETE with the session's id), so that
// later runs do not share the server with them; failures are ignored.
func endSessions(o *RunOptions, ids map[string]string) {
	for tok, sid := range ids {
		sessionRequest(context.Background(), o, http.MethodDelete, tok, sid, nil)
	}
}

// sessionClient opens and ends the sessions of session runs.
var sessionClient = &http.Client{Timeout: 30 * time.Second}

// sessionRequest sends one request of a session's life (its body, if any,
// is msg) with the run's headers, and returns the response, its body read.
func sessionRequest(ctx context.Context, o *RunOptions, method, token, sid string, msg map[string]any) (*http.Response, error) {
	var body io.Reader
	if msg != nil {
		b, _ := json.Marshal(msg)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.URL, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", o.Session)
	req.Header.Set(UserHeader, "0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	for k, v := range o.Header {
		req.Header[k] = v
	}
	resp, err := sessionClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// Caller makes calls of one workload on one keep-alive connection, one at
// a time. It is what each connection of Run does, for callers that drive
// the pace themselves (a testing.B benchmark). It is not safe for concurrent
// use: make one per goroutine.
type Caller struct {
	w   *worker
	end func()
}

// NewCaller prepares a Caller; only URL, Workload, Users, EntriesPerUser,
// Seed, Header, Session, DPoP and Tokens of o matter. offset picks where in the prepared requests
// this caller starts, so that parallel callers send different ones.
func NewCaller(o RunOptions, offset int) (*Caller, error) {
	o.setDefaults()
	host, pool, end, err := prepare(context.Background(), &o)
	if err != nil {
		return nil, err
	}
	return &Caller{&worker{addr: host, pool: pool, next: offset, dpop: o.DPoP, htu: strings.SplitN(o.URL, "?", 2)[0]}, end}, nil
}

// Call makes one call; an error means the call failed (see Run).
func (c *Caller) Call() error { return c.w.call() }

// Close closes the connection.
func (c *Caller) Close() {
	c.w.close()
	c.end()
}

// prepared is one raw HTTP request of a run: with DPoP, the proof header
// goes in at split, and is signed for token.
type prepared struct {
	raw   []byte
	split int
	token string
}

// buildRequests prepares the raw HTTP requests of a run.
func buildRequests(u *url.URL, o *RunOptions, sessions map[string]string) ([]prepared, error) {
	g := newTextGen(o.Seed, 1<<40)
	path := u.RequestURI()
	var extra bytes.Buffer
	if err := o.Header.Write(&extra); err != nil {
		return nil, err
	}
	pool := make([]prepared, max(requestPoolSize, len(o.Tokens)))
	for i := range pool {
		tool := o.Workload
		if tool == Mixed {
			tool = mixedTools[i%len(mixedTools)]
		}
		var args map[string]any
		switch tool {
		case GetEntry:
			args = map[string]any{"id": 1 + g.r.IntN(o.EntriesPerUser)}
		case ListEntries:
			args = map[string]any{"limit": 50}
		case SearchEntries:
			args = map[string]any{"query": g.query(1 + i%2)}
		case createEntry:
			args = map[string]any{"title": g.title(), "content": g.content(700 + g.r.IntN(600))}
		}
		method, params := "tools/call", map[string]any{"name": tool, "arguments": args}
		if tool == ToolsList {
			method, params = "tools/list", map[string]any{}
		}
		body, err := json.Marshal(request(i+1, method, params, o.Session == ""))
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, u.Host)
		b.WriteString("Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n")
		if len(o.Tokens) > 0 {
			pool[i].token = o.Tokens[i%len(o.Tokens)]
		}
		user := g.r.IntN(o.Users)
		switch {
		case o.Session != "":
			// A session is its user's: every call on it acts as that user.
			fmt.Fprintf(&b, "Mcp-Protocol-Version: %s\r\nMcp-Session-Id: %s\r\n", o.Session, sessions[pool[i].token])
			user = 0
		case tool == ToolsList:
			fmt.Fprintf(&b, "Mcp-Protocol-Version: %s\r\nMcp-Method: tools/list\r\n", ProtocolVersion)
		default:
			fmt.Fprintf(&b, "Mcp-Protocol-Version: %s\r\nMcp-Method: tools/call\r\nMcp-Name: %s\r\n", ProtocolVersion, tool)
		}
		fmt.Fprintf(&b, "%s: %d\r\n", UserHeader, user)
		scheme := "Bearer"
		if o.DPoP != nil {
			scheme = "DPoP"
		}
		if pool[i].token != "" {
			fmt.Fprintf(&b, "Authorization: %s %s\r\n", scheme, pool[i].token)
		}
		b.Write(extra.Bytes())
		pool[i].split = b.Len()
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
		b.Write(body)
		pool[i].raw = b.Bytes()
	}
	return pool, nil
}

// request is a JSON-RPC request. A stateless one (2026-07-28) carries the
// protocol version and the client's capabilities in _meta, and the
// Mcp-Method and Mcp-Name headers repeat the method and tool name; on a
// session (2025-11-25) they were given at initialize.
func request(id int, method string, params map[string]any, stateless bool) map[string]any {
	if stateless {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    ProtocolVersion,
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "epicme-bench", "version": "1"},
		}
	}
	return map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params}
}

// createEntry is the write of the mixed workload.
const createEntry = "create_entry"

// mixedTools is the cycle of the mixed workload: 70% reads, 20% lists and
// searches, 10% writes.
var mixedTools = []string{GetEntry, GetEntry, GetEntry, ListEntries, GetEntry, GetEntry, SearchEntries, GetEntry, GetEntry, createEntry}

// worker is one keep-alive connection with one call in flight at a time.
type worker struct {
	addr string
	pool []prepared
	next int
	// dpop signs a proof for htu on every call (RunOptions.DPoP).
	dpop *DPoPKey
	htu  string
	buf  []byte
	conn net.Conn
	r    *bufio.Reader
	body []byte
}

func (w *worker) close() {
	if w.conn != nil {
		w.conn.Close()
	}
}

// call sends the next request of the pool and reads its response. After an
// error the connection is dropped and the next call dials a new one.
func (w *worker) call() error {
	p := w.pool[w.next%len(w.pool)]
	w.next++
	req := p.raw
	if w.dpop != nil {
		proof, err := w.dpop.Proof(w.htu, p.token)
		if err != nil {
			return err
		}
		w.buf = append(append(append(append(w.buf[:0], p.raw[:p.split]...), "DPoP: "...), proof...), "\r\n"...)
		req = append(w.buf, p.raw[p.split:]...)
		w.buf = req
	}
	if w.conn == nil {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			return err
		}
		w.conn = c
		w.r = bufio.NewReaderSize(c, 64<<10)
	}
	closeConn, err := w.roundTrip(req)
	if err != nil || closeConn {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

// roundTrip writes one request and reads its response. closeConn reports
// that the server asked to close the connection.
func (w *worker) roundTrip(req []byte) (closeConn bool, err error) {
	_ = w.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := w.conn.Write(req); err != nil {
		return false, err
	}
	status, length, chunked, closeConn, err := w.readHead()
	if err != nil {
		return false, err
	}
	w.body = w.body[:0]
	switch {
	case chunked:
		err = w.readChunked()
	case length >= 0:
		w.body = slices.Grow(w.body, length)[:length]
		_, err = io.ReadFull(w.r, w.body)
	default:
		err = errors.New("response without a length")
	}
	if err != nil {
		return false, err
	}
	if status != 200 {
		return closeConn, fmt.Errorf("HTTP %d: %s", status, truncate(w.body))
	}
	if bytes.Contains(w.body, []byte(`"isError":true`)) || !bytes.Contains(w.body, []byte(`"result"`)) {
		return closeConn, fmt.Errorf("call failed: %s", truncate(w.body))
	}
	return closeConn, nil
}

// readHead reads the status line and headers.
func (w *worker) readHead() (status, length int, chunked, closeConn bool, err error) {
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, false, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, false, false, fmt.Errorf("bad status line %q", line)
	}
	length = -1
	for {
		line, err = w.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return status, length, chunked, closeConn, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, err = strconv.Atoi(string(v))
			if err != nil {
				return 0, 0, false, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closeConn = bytes.EqualFold(v, []byte("close"))
		}
	}
}

// readChunked reads a chunked body (RFC 9112 §7.1) into w.body.
func (w *worker) readChunked() error {
	for {
		line, err := w.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 32)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				line, err := w.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		off := len(w.body)
		w.body = slices.Grow(w.body, int(n))[:off+int(n)]
		if _, err := io.ReadFull(w.r, w.body[off:]); err != nil {
			return err
		}
		if _, err := w.r.Discard(2); err != nil {
			return err
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
