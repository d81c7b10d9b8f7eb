// Package soak drives an EpicMe server with its embedded authorization
// server the way real OAuth clients do, for the soak test of cmd/epicme:
// registration, sign-in, calls, refreshes and revocations, counted.
package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epicme/epicme/authserver"
)

// SoakOptions configure Soak: a mixed workload against an EpicMe server
// with its embedded authorization server, run as real OAuth clients do.
type SoakOptions struct {
	// URL is the server's public URL; the issuer is URL and the MCP
	// endpoint URL + "/mcp".
	URL string
	// Email and Password sign in on the authorization server's pages.
	Email, Password string
	// Duration is how long to run.
	Duration time.Duration
	// Clients is how many clients run at once (default 4).
	Clients int
	// RevokeEvery is how many calls a client makes before it revokes its
	// grant, checks the access token is refused, and registers anew
	// (default 200).
	RevokeEvery int
	// Scopes are the scopes each client asks for and is granted.
	Scopes []string
}

// SoakReport is what a soak run did and what went wrong.
type SoakReport struct {
	Duration      time.Duration
	Calls         int64 // MCP tool calls answered as expected
	Registrations int64 // clients registered (RFC 7591)
	SignIns       int64 // authorization code flows completed
	Refreshes     int64 // refresh-token grants, after an access token expired
	Revocations   int64 // grants revoked by their client (RFC 7009)
	Refused       int64 // expected refusals: an expired or revoked access token answered 401
	Unexpected    int64 // anything else: errors, wrong statuses, tool errors
	FirstErrors   []string
}

// String is a short summary of the report.
func (r *SoakReport) String() string {
	s := fmt.Sprintf("soak %s: %d calls, %d registrations, %d sign-ins, %d refreshes, %d revocations, %d expected refusals, %d unexpected errors",
		r.Duration.Round(time.Second), r.Calls, r.Registrations, r.SignIns, r.Refreshes, r.Revocations, r.Refused, r.Unexpected)
	for _, e := range r.FirstErrors {
		s += "\n  " + e
	}
	return s
}

// errExpired marks an access token the server no longer accepts (401).
var errExpired = errors.New("access token refused")

// Soak runs opts.Clients clients until opts.Duration has passed or ctx is
// done. Each client registers, signs in and consents through the pages,
// then calls a mixed workload (writes, reads, lists, searches) with its
// access token; when the token expires it refreshes, and every RevokeEvery
// calls, once its tokens have been refreshed at least once, it revokes its
// grant, checks that the old access token is refused, and starts again as a
// newly registered client. Each client sends its own
// X-Forwarded-For address, so a server that trusts it (as behind a proxy)
// sees many sources, as it would in production.
func Soak(ctx context.Context, opts SoakOptions) (*SoakReport, error) {
	if opts.Clients <= 0 {
		opts.Clients = 4
	}
	if opts.RevokeEvery <= 0 {
		opts.RevokeEvery = 200
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	rep := &SoakReport{}
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		if ctx.Err() != nil {
			return // the run is over; a call cut short is not an error
		}
		atomic.AddInt64(&rep.Unexpected, 1)
		mu.Lock()
		if len(rep.FirstErrors) < 10 {
			rep.FirstErrors = append(rep.FirstErrors, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	transport := &http.Transport{MaxIdleConnsPerHost: opts.Clients * 2}
	defer transport.CloseIdleConnections()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range opts.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &soakClient{opts: &opts, rep: rep, fail: fail, transport: transport, worker: i}
			c.run(ctx)
		}()
	}
	wg.Wait()
	rep.Duration = time.Since(start)
	return rep, nil
}

type soakClient struct {
	opts      *SoakOptions
	rep       *SoakReport
	fail      func(string, ...any)
	transport *http.Transport
	worker    int
	source    string

	clientID        string
	access, refresh string
	calls           int
	id              int
	// refreshed: the current grant's tokens have been refreshed at least
	// once, so its revocation also covers a rotated refresh token.
	refreshed bool
}

var soakSources atomic.Int64

const soakRedirect = "http://127.0.0.1:1/callback"

func (c *soakClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		if c.access == "" {
			if err := c.authorize(ctx); err != nil {
				c.fail("authorizing: %v", err)
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
		}
		err := c.call(ctx)
		switch {
		case err == nil:
			atomic.AddInt64(&c.rep.Calls, 1)
			c.calls++
		case errors.Is(err, errExpired):
			atomic.AddInt64(&c.rep.Refused, 1)
			if err := c.refreshTokens(ctx); err != nil {
				c.fail("refreshing: %v", err)
				c.access = ""
			} else {
				c.refreshed = true
			}
			continue
		default:
			c.fail("call: %v", err)
			continue
		}
		// A grant is revoked only after its tokens were refreshed once, so
		// every run exercises both, however fast the calls go.
		if c.calls%c.opts.RevokeEvery == 0 && c.refreshed {
			if err := c.revoke(ctx); err != nil {
				c.fail("revoking: %v", err)
			}
			c.access, c.refresh, c.clientID, c.refreshed = "", "", "", false
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (c *soakClient) do(ctx context.Context, req *http.Request, cl *http.Client) (*http.Response, []byte, error) {
	req = req.WithContext(ctx)
	req.Header.Set("X-Forwarded-For", c.source)
	if cl == nil {
		cl = &http.Client{Transport: c.transport}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (c *soakClient) form(ctx context.Context, cl *http.Client, path string, f url.Values) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(http.MethodPost, c.opts.URL+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(ctx, req, cl)
}

var soakField = regexp.MustCompile(`name="(csrf|request|consent)" value="([^"]*)"`)

func pageFields(body []byte) url.Values {
	f := url.Values{}
	for _, m := range soakField.FindAllSubmatch(body, -1) {
		f.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	return f
}

// authorize registers a new client and runs the authorization code flow
// with PKCE (RFC 7636) through the sign-in and consent pages.
func (c *soakClient) authorize(ctx context.Context) error {
	// A new client comes from a new address (of TEST-NET-2, RFC 5737), so
	// the per-source registration and sign-in limits see many sources.
	n := soakSources.Add(1)
	c.source = fmt.Sprintf("198.51.%d.%d", (n/250)%256, 1+n%250)
	reg, _ := json.Marshal(map[string]any{
		"client_name": "soak", "redirect_uris": []string{soakRedirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"},
	})
	req, _ := http.NewRequest(http.MethodPost, c.opts.URL+authserver.RegistrationPath, bytes.NewReader(reg))
	req.Header.Set("Content-Type", "application/json")
	resp, body, err := c.do(ctx, req, nil)
	if err != nil {
		return err
	}
	var client struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &client) != nil || client.ClientID == "" {
		return fmt.Errorf("registration answered %d: %.200s", resp.StatusCode, body)
	}
	atomic.AddInt64(&c.rep.Registrations, 1)
	c.clientID = client.ClientID

	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.clientID}, "redirect_uri": {soakRedirect}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"scope": {strings.Join(c.opts.Scopes, " ")}, "resource": {c.opts.URL + "/mcp"}}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: c.transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequest(http.MethodGet, c.opts.URL+authserver.AuthorizePath+"?"+q.Encode(), nil)
	resp, body, err = c.do(ctx, req, browser)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("authorize answered %d", resp.StatusCode)
	}
	f := pageFields(body)
	f.Set("email", c.opts.Email)
	f.Set("password", c.opts.Password)
	if resp, body, err = c.form(ctx, browser, authserver.SignInPath, f); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sign-in answered %d", resp.StatusCode)
	}
	f = pageFields(body)
	f.Set("decision", "allow")
	f["scope"] = c.opts.Scopes
	if resp, _, err = c.form(ctx, browser, authserver.ConsentPath, f); err != nil {
		return err
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		return fmt.Errorf("consent answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	atomic.AddInt64(&c.rep.SignIns, 1)
	return c.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {soakRedirect}, "code_verifier": {verifier}})
}

func (c *soakClient) token(ctx context.Context, f url.Values) error {
	f.Set("client_id", c.clientID)
	f.Set("resource", c.opts.URL+"/mcp")
	resp, body, err := c.form(ctx, nil, authserver.TokenPath, f)
	if err != nil {
		return err
	}
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.Access == "" || tok.Refresh == "" {
		return fmt.Errorf("token endpoint answered %d: %.200s", resp.StatusCode, body)
	}
	c.access, c.refresh = tok.Access, tok.Refresh
	return nil
}

func (c *soakClient) refreshTokens(ctx context.Context) error {
	if err := c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}}); err != nil {
		return err
	}
	atomic.AddInt64(&c.rep.Refreshes, 1)
	return nil
}

// revoke revokes the grant through its refresh token (RFC 7009 §2) and
// checks that the access token of the grant is refused at once.
func (c *soakClient) revoke(ctx context.Context) error {
	resp, body, err := c.form(ctx, nil, authserver.RevocationPath, url.Values{"token": {c.refresh}, "token_type_hint": {"refresh_token"}, "client_id": {c.clientID}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation answered %d: %.200s", resp.StatusCode, body)
	}
	atomic.AddInt64(&c.rep.Revocations, 1)
	if err := c.call(ctx); !errors.Is(err, errExpired) {
		return fmt.Errorf("the access token of a revoked grant still worked (%v)", err)
	}
	atomic.AddInt64(&c.rep.Refused, 1)
	return nil
}

// call makes the next call of the mixed cycle with the access token.
func (c *soakClient) call(ctx context.Context) error {
	c.id++
	var tool string
	var args map[string]any
	switch c.id % 10 {
	case 0, 5:
		tool, args = "create_entry", map[string]any{"title": fmt.Sprintf("soak %d", c.id), "content": "a walk by the river, entry " + fmt.Sprint(c.id)}
	case 3:
		tool, args = "list_entries", map[string]any{"limit": 20}
	case 7:
		tool, args = "search_entries", map[string]any{"query": "river walk"}
	default:
		tool, args = "get_entry", map[string]any{"id": 1}
	}
	body, _ := json.Marshal(callRequest(c.id, tool, args))
	req, _ := http.NewRequest(http.MethodPost, c.opts.URL+"/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", protocolVersion)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	req.Header.Set("Authorization", "Bearer "+c.access)
	resp, b, err := c.do(ctx, req, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return errExpired
	}
	var out struct {
		Error  *struct{ Message string } `json:"error"`
		Result *struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Error != nil || out.Result == nil {
		return fmt.Errorf("%s answered %d: %.200s", tool, resp.StatusCode, b)
	}
	// get_entry of entry 1 is "not found" until the first write of the
	// journal lands; that is the only tool error the cycle expects.
	if out.Result.IsError && !(tool == "get_entry" && len(out.Result.Content) > 0 && strings.Contains(out.Result.Content[0].Text, "not found")) {
		return fmt.Errorf("%s: tool error %.200s", tool, b)
	}
	return nil
}

// protocolVersion is the era the soak speaks: stateless, so that every call
// is checked on its own token.
const protocolVersion = "2026-07-28"

// callRequest is a stateless (2026-07-28) tools/call: the protocol version
// and the client's capabilities travel in _meta on every request.
func callRequest(id int, tool string, args map[string]any) map[string]any {
	return map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"method":  "tools/call",
		"params": map[string]any{
			"name":      tool,
			"arguments": args,
			"_meta": map[string]any{
				"io.modelcontextprotocol/protocolVersion":    protocolVersion,
				"io.modelcontextprotocol/clientCapabilities": map[string]any{},
				"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "epicme-soak", "version": "1"},
			},
		},
	}
}
