package pages

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
)

// tsEvent is one line of ts-sdk-client.mjs's output: "<what> <JSON>".
type tsEvent struct {
	what string
	json string
}

// tsRun is what the TypeScript client reported.
type tsRun struct {
	events []tsEvent
	stdout string
}

// grants lists the grant types the client asked the token endpoint for,
// in order.
func (r tsRun) grants() []string {
	var gs []string
	for _, e := range r.events {
		if e.what == "token" {
			var v struct {
				Grant string `json:"grant_type"`
			}
			json.Unmarshal([]byte(e.json), &v)
			gs = append(gs, v.Grant)
		}
	}
	return gs
}

// calls returns the structured results of the tool calls named name, in
// order, decoded into new values of T.
func calls[T any](t *testing.T, r tsRun, name string) []T {
	t.Helper()
	var out []T
	for _, e := range r.events {
		if e.what != "call" {
			continue
		}
		var v struct {
			Name   string
			Result json.RawMessage
		}
		if err := json.Unmarshal([]byte(e.json), &v); err != nil {
			t.Fatalf("a call line is not JSON: %v\n%s", err, r.stdout)
		}
		if v.Name != name {
			continue
		}
		var res T
		if err := json.Unmarshal(v.Result, &res); err != nil {
			t.Fatalf("%s's result: %v\n%s", name, err, r.stdout)
		}
		out = append(out, res)
	}
	return out
}

// event returns the JSON of the first line about what, or fails.
func (r tsRun) event(t *testing.T, what string) string {
	t.Helper()
	for _, e := range r.events {
		if e.what == what {
			return e.json
		}
	}
	t.Fatalf("the client reported no %q\n%s", what, r.stdout)
	return ""
}

type whoami struct {
	User   struct{ Email string }
	Scopes []string
}

// runTSClient runs ts-sdk-client.mjs against s with args (mode, then an
// optional client metadata URL) and extra environment, the driver
// completing each authorization of as in turn.
func runTSClient(t *testing.T, s *server, env []string, args []string, as ...browser.Authorization) tsRun {
	t.Helper()
	return runTSScript(t, "ts-sdk-client.mjs", s, env, args, as...)
}

// runTSScript is runTSClient for any of this folder's client scripts that
// print "<what> <JSON>" lines.
func runTSScript(t *testing.T, script string, s *server, env []string, args []string, as ...browser.Authorization) tsRun {
	t.Helper()
	node := tool(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(folder(), script), s.url + "/mcp"}, args...)...)
	cmd.Env = append(nodeEnv(t), env...)
	cmd.Dir = folder()
	stdout, stderr, err := runDriven(t, cmd, as...)
	if err != nil {
		t.Fatalf("the TypeScript client failed: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	r := tsRun{stdout: stdout}
	for _, line := range strings.Split(stdout, "\n") {
		what, j, ok := strings.Cut(line, " ")
		if ok && strings.HasPrefix(j, "{") {
			r.events = append(r.events, tsEvent{what, j})
		}
	}
	return r
}

// narrowed is a sign-in that leaves only user:read and entries:read
// ticked on the consent page.
func narrowed(s *server) browser.Authorization {
	return browser.Authorization{Email: "demo@epicme.local", Password: s.demoPassword, Scopes: []string{"user:read", "entries:read"}, Name: "ts-sdk"}
}

// TestTypeScriptSDKClientCompletesTheFlowThroughThePages runs the
// TypeScript MCP SDK 1.x client (ts-sdk-client.mjs): it discovers the
// embedded authorization server from the 401, registers, prints the
// authorization URL; the driver signs in and narrows the consent to
// user:read and entries:read; the client gets the code on its loopback
// callback and whoami answers with exactly those scopes.
func TestTypeScriptSDKClientCompletesTheFlowThroughThePages(t *testing.T) {
	s := serve(t)
	r := runTSClient(t, s, nil, []string{"plain"}, narrowed(s))
	who := calls[whoami](t, r, "whoami")
	if len(who) != 1 || who[0].User.Email != "demo@epicme.local" || strings.Join(who[0].Scopes, " ") != "user:read entries:read" {
		t.Fatalf("whoami through the TypeScript SDK: %+v\n%s", who, r.stdout)
	}
	if g := strings.Join(r.grants(), " "); g != "authorization_code" {
		t.Fatalf("token requests: %q, want one authorization_code grant", g)
	}
}

// TestTypeScriptSDKClientAtTheLocalhostURLServePrints serves with --addr
// localhost:PORT and gives the TypeScript SDK the URL serve prints. The
// SDK refuses protected resource metadata whose resource is not that URL
// (RFC 9728 §3.3), so printed URL, metadata and issuer must share one
// origin; serve once printed 127.0.0.1 here while the metadata said
// localhost.
func TestTypeScriptSDKClientAtTheLocalhostURLServePrints(t *testing.T) {
	port := freePort(t)[len("127.0.0.1:"):]
	s := serve(t, "--addr", "localhost:"+port)
	if s.url != "http://localhost:"+port {
		t.Fatalf("serve printed %s, want http://localhost:%s", s.url, port)
	}
	r := runTSClient(t, s, nil, []string{"plain"}, narrowed(s))
	who := calls[whoami](t, r, "whoami")
	if len(who) != 1 || who[0].User.Email != "demo@epicme.local" {
		t.Fatalf("whoami through the TypeScript SDK at %s: %+v\n%s", s.url, who, r.stdout)
	}
}

// TestTypeScriptSDKClientStepsUpOnInsufficientScope narrows the consent to
// user:read and entries:read, then has the client call create_entry. The
// server answers 403 insufficient_scope with the scope to ask for. SDK
// 1.32's transport answers that by running its auth() with the challenged
// scope, but auth() refreshes whenever it holds a refresh token, and a
// refresh cannot widen the scope (RFC 6749 §6), so the retry earns the same
// 403 and the transport gives up. The client then does what that leaves to
// the application: it drops its tokens and calls auth() with the
// challenged scope, which sends the user to the authorization server
// again; the driver (still signed in) allows everything asked, and
// create_entry succeeds on the same connection with the wider token.
func TestTypeScriptSDKClientStepsUpOnInsufficientScope(t *testing.T) {
	s := serve(t)
	full := browser.Authorization{Email: "demo@epicme.local", Password: s.demoPassword, Name: "ts-sdk-step-up"}
	r := runTSClient(t, s, nil, []string{"step-up"}, narrowed(s), full)

	var failure struct{ Code int }
	json.Unmarshal([]byte(r.event(t, "error")), &failure)
	if failure.Code != 403 {
		t.Fatalf("create_entry before the step-up: %+v, want the SDK to give up with 403\n%s", failure, r.stdout)
	}
	var challenge struct{ Scope string }
	json.Unmarshal([]byte(r.event(t, "challenge")), &challenge)
	if !strings.Contains(" "+challenge.Scope+" ", " entries:write ") || !strings.Contains(" "+challenge.Scope+" ", " entries:read ") {
		t.Fatalf("the 403 challenge's scope is %q; it must name entries:write and keep what was granted", challenge.Scope)
	}
	// The code, the SDK's refresh at the 403 (same scope), the code of the
	// step-up.
	if g := strings.Join(r.grants(), " "); g != "authorization_code refresh_token authorization_code" {
		t.Fatalf("token requests: %q", g)
	}
	created := calls[struct {
		Entry struct {
			ID    any
			Title string
		}
	}](t, r, "create_entry")
	if len(created) != 1 || created[0].Entry.Title != "Stepped up" {
		t.Fatalf("create_entry after the step-up: %+v\n%s", created, r.stdout)
	}
	who := calls[whoami](t, r, "whoami")
	if len(who) != 2 || strings.Join(who[0].Scopes, " ") != "user:read entries:read" {
		t.Fatalf("whoami before the step-up: %+v", who)
	}
	if !strings.Contains(" "+strings.Join(who[1].Scopes, " ")+" ", " entries:write ") {
		t.Fatalf("whoami after the step-up has no entries:write: %+v", who[1])
	}
}

// TestTypeScriptSDKClientRefreshesAfterExpiry serves with access tokens
// that live 3 seconds. The client calls whoami, waits past the token's
// expires_in and calls again: the expired token earns a 401 invalid_token,
// the SDK redeems its refresh token (RFC 6749 §6) without the user, and
// resends; whoami answers the same user and scopes.
func TestTypeScriptSDKClientRefreshesAfterExpiry(t *testing.T) {
	s := serve(t, "--access-token-ttl", "3s")
	r := runTSClient(t, s, nil, []string{"expiry"}, narrowed(s))
	if g := strings.Join(r.grants(), " "); g != "authorization_code refresh_token" {
		t.Fatalf("token requests: %q, want the code and then one refresh\n%s", g, r.stdout)
	}
	who := calls[whoami](t, r, "whoami")
	if len(who) != 2 {
		t.Fatalf("whoami calls: %+v\n%s", who, r.stdout)
	}
	for i, w := range who {
		if w.User.Email != "demo@epicme.local" || strings.Join(w.Scopes, " ") != "user:read entries:read" {
			t.Fatalf("whoami %d: %+v", i, w)
		}
	}
}

// TestTypeScriptSDKClientUsesAClientIDMetadataDocument gives the client a
// clientMetadataUrl: an https URL on a local TLS test server serving its
// Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document
// §3), with a loopback redirect URI whose port the server leaves free
// (RFC 8252 §7.3). Since EpicMe's metadata says
// client_id_metadata_document_supported, SDK 1.32 uses the URL as its
// client_id and registers nothing; EpicMe fetches the document (allowed
// from loopback only by the development flag, trusting the test server's
// certificate through SSL_CERT_FILE) and the flow completes.
func TestTypeScriptSDKClientUsesAClientIDMetadataDocument(t *testing.T) {
	var fetched atomic.Int32
	var docURL string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/clients/ts-sdk.json" {
			http.NotFound(w, r)
			return
		}
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  docURL,
			"client_name":                "TypeScript SDK client (metadata document)",
			"redirect_uris":              []string{"http://127.0.0.1/callback"},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	defer ts.Close()
	docURL = ts.URL + "/clients/ts-sdk.json"
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// epicme serve inherits it: Go reads SSL_CERT_FILE for the system roots.
	t.Setenv("SSL_CERT_FILE", ca)
	s := serve(t, "--dev-allow-private-metadata-documents")
	r := runTSClient(t, s, []string{"NODE_EXTRA_CA_CERTS=" + ca}, []string{"plain", docURL}, narrowed(s))

	var client struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal([]byte(r.event(t, "client")), &client)
	if client.ClientID != docURL {
		t.Fatalf("client_id %q, want the metadata document's URL %q\n%s", client.ClientID, docURL, r.stdout)
	}
	for _, e := range r.events {
		if e.what == "register" {
			t.Fatalf("the client registered although it has a metadata document: %s", e.json)
		}
	}
	if fetched.Load() == 0 {
		t.Fatal("EpicMe never fetched the metadata document")
	}
	who := calls[whoami](t, r, "whoami")
	if len(who) != 1 || who[0].User.Email != "demo@epicme.local" || strings.Join(who[0].Scopes, " ") != "user:read entries:read" {
		t.Fatalf("whoami: %+v\n%s", who, r.stdout)
	}
}

// TestTypeScriptClientWithDPoPThroughThePages: the TypeScript client 2.4.0
// with a DpopSession (ts-dpop-client.mjs) signs in through EpicMe's own
// pages and redeems the code with a DPoP proof; the embedded authorization
// server answers token_type DPoP (RFC 9449 §5), and every authorized MCP
// request carries "Authorization: DPoP" with a proof and succeeds, writing
// the user's journal.
func TestTypeScriptClientWithDPoPThroughThePages(t *testing.T) {
	s := serve(t)
	r := runTSScript(t, "ts-dpop-client.mjs", s, nil, nil, browser.Authorization{Email: "demo@epicme.local", Password: s.demoPassword, Name: "ts-dpop"})
	var tok struct {
		Grant     string `json:"grant_type"`
		Status    int    `json:"status"`
		TokenType string `json:"token_type"`
		DPoP      bool   `json:"dpop"`
	}
	if err := json.Unmarshal([]byte(r.event(t, "token")), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Grant != "authorization_code" || tok.Status != 200 || tok.TokenType != "DPoP" || !tok.DPoP {
		t.Fatalf("the code was redeemed as %+v; want a DPoP proof and token_type DPoP\n%s", tok, r.stdout)
	}
	authorized := 0
	for _, e := range r.events {
		if e.what != "mcp" {
			continue
		}
		var m struct {
			Scheme string
			DPoP   bool
			Status int
		}
		json.Unmarshal([]byte(e.json), &m)
		if m.Scheme == "" {
			continue
		}
		authorized++
		if m.Scheme != "DPoP" || !m.DPoP || m.Status >= 400 {
			t.Errorf("an MCP request went out as %+v", m)
		}
	}
	if authorized == 0 {
		t.Fatalf("no authorized MCP request\n%s", r.stdout)
	}
	who := calls[whoami](t, r, "whoami")
	if len(who) != 1 || who[0].User.Email != "demo@epicme.local" {
		t.Fatalf("whoami: %+v\n%s", who, r.stdout)
	}
	if created := calls[map[string]any](t, r, "create_entry"); len(created) != 1 {
		t.Fatalf("create_entry: %+v\n%s", created, r.stdout)
	}
}
