package interop

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// tsClient is a TypeScript MCP client script, the protocol it speaks and
// whether that protocol has sessions (2026-07-28 is stateless).
type tsClient struct {
	script   string
	protocol string
	session  bool
}

var tsClients = []tsClient{
	{"ts-sdk-client.mjs", "2025-11-25", true},
	{"ts-client-v2.mjs", "2026-07-28", false},
}

// clientReport is the JSON line a client script prints.
type clientReport struct {
	Error           string `json:"error"`
	SDK             string `json:"sdk"`
	ProtocolVersion string `json:"protocolVersion"`
	SessionID       bool   `json:"sessionId"`
	Server          struct {
		Name string `json:"name"`
	} `json:"server"`
	Tools   []string `json:"tools"`
	Whoami  whoami   `json:"whoami"`
	Created struct {
		Entry journalEntry `json:"entry"`
	} `json:"created"`
	Fetched struct {
		Entry journalEntry `json:"entry"`
	} `json:"fetched"`
	AuthorizationRequest *authorizationRequest  `json:"authorizationRequest"`
	Authorizations       []authorizationRequest `json:"authorizations"`
	StepUp               *struct {
		FirstScope string `json:"firstScope"`
		FinalScope string `json:"finalScope"`
		Steps      int    `json:"steps"`
	} `json:"stepUp"`
	Requests  []exchange `json:"requests"`
	TokenType string     `json:"tokenType"`
}

// authorizationRequest is what a client sent to the authorization endpoint.
type authorizationRequest struct {
	Endpoint            string `json:"endpoint"`
	ClientID            string `json:"client_id"`
	Resource            string `json:"resource"`
	Scope               string `json:"scope"`
	CodeChallengeMethod string `json:"code_challenge_method"`
}

// exchange is one HTTP request a client made, as it recorded it.
type exchange struct {
	Method    string `json:"method"`
	URL       string `json:"url"`
	Status    int    `json:"status"`
	Challenge string `json:"challenge"`
	Scheme    string `json:"scheme"` // of the Authorization header sent
	DPoP      bool   `json:"dpop"`   // a DPoP proof was sent
}

type journalEntry struct {
	ID      json.Number `json:"id"`
	Title   string      `json:"title"`
	Content string      `json:"content"`
}

// runClient runs a client script against st, with a token when token is not
// empty, else signing in as login through the OAuth flow the client drives.
func runClient(t *testing.T, st *stack, c tsClient, token, login, title string, extra ...string) clientReport {
	t.Helper()
	args := append([]string{"--url", st.mcpURL, "--title", title}, extra...)
	var env []string
	if token != "" {
		env = append(env, "MCP_ACCESS_TOKEN="+token)
	} else {
		args = append(args, "--login", login, "--password", issuerUsers[login])
	}
	out := runNode(t, 60*time.Second, env, c.script, args...)
	var rep clientReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%s printed %q: %v", c.script, out, err)
	}
	return rep
}

// checkScenario checks what every client run must show: the protocol
// version, the journal tools, the user, and an entry written and read back.
func checkScenario(t *testing.T, st *stack, c tsClient, rep clientReport, login, title string) {
	t.Helper()
	if rep.ProtocolVersion != c.protocol {
		t.Errorf("%s negotiated %q, want %s", c.script, rep.ProtocolVersion, c.protocol)
	}
	if rep.SessionID != c.session || rep.Server.Name != "epicme" {
		t.Errorf("%s: session %v (want %v), server %q", c.script, rep.SessionID, c.session, rep.Server.Name)
	}
	for _, tool := range []string{"whoami", "create_entry", "get_entry"} {
		if !slices.Contains(rep.Tools, tool) {
			t.Errorf("%s saw tools %v, without %s", c.script, rep.Tools, tool)
		}
	}
	if rep.Whoami.User.Subject != "user-"+login || rep.Whoami.User.Issuer != st.is.Issuer {
		t.Errorf("%s: whoami %+v, want %s of %s", c.script, rep.Whoami.User, login, st.is.Issuer)
	}
	if rep.Created.Entry.Title != title || rep.Fetched.Entry.ID != rep.Created.Entry.ID || rep.Fetched.Entry.Title != title {
		t.Errorf("%s: created %+v, fetched %+v", c.script, rep.Created.Entry, rep.Fetched.Entry)
	}
}

// testClients runs each TypeScript client against st, with a token and
// without one.
func testClients(t *testing.T, st *stack) {
	for _, c := range tsClients {
		t.Run(c.script+" with a token", func(t *testing.T) {
			tok := st.is.mint(t, tokenRequest{User: "alice", Scopes: allScopes})
			title := "Token entry from " + c.script
			rep := runClient(t, st, c, tok.AccessToken, "", title)
			checkScenario(t, st, c, rep, "alice", title)
		})

		t.Run(c.script+" without a token discovers the issuer and signs in", func(t *testing.T) {
			title := "OAuth entry from " + c.script
			rep := runClient(t, st, c, "", "bob", title)
			checkScenario(t, st, c, rep, "bob", title)

			// The client found its way from the challenge alone.
			if len(rep.Requests) == 0 || rep.Requests[0].URL != st.mcpURL || rep.Requests[0].Status != 401 {
				t.Fatalf("first exchange %+v, want a 401 from %s", rep.Requests, st.mcpURL)
			}
			if !strings.Contains(rep.Requests[0].Challenge, `resource_metadata="`+st.baseURL+`/.well-known/oauth-protected-resource/mcp"`) {
				t.Errorf("first challenge %q lacks the metadata URL", rep.Requests[0].Challenge)
			}
			saw := func(method, url string, status int) bool {
				return slices.ContainsFunc(rep.Requests, func(r exchange) bool {
					return r.Method == method && r.URL == url && r.Status == status
				})
			}
			steps := []struct {
				what, method, url string
				status            int
			}{
				{"protected resource metadata (RFC 9728)", "GET", st.baseURL + "/.well-known/oauth-protected-resource/mcp", 200},
				{"dynamic client registration (RFC 7591)", "POST", st.is.RegistrationEndpoint, 201},
				{"authorization code redeemed", "POST", st.is.TokenEndpoint, 200},
				{"authorized MCP request", "POST", st.mcpURL, 200},
			}
			for _, s := range steps {
				if !saw(s.method, s.url, s.status) {
					t.Errorf("no %s: want %s %s → %d among %+v", s.what, s.method, s.url, s.status, rep.Requests)
				}
			}
			if !saw("GET", st.is.Issuer+"/.well-known/oauth-authorization-server", 200) && !saw("GET", st.is.Issuer+"/.well-known/openid-configuration", 200) {
				t.Errorf("client never fetched the authorization server's metadata: %+v", rep.Requests)
			}
			ar := rep.AuthorizationRequest
			if ar == nil || ar.Endpoint != st.is.AuthorizationEndpoint || ar.Resource != st.mcpURL || ar.CodeChallengeMethod != "S256" {
				t.Errorf("authorization request %+v, want the issuer's endpoint, resource %s and S256", ar, st.mcpURL)
			}
		})
	}

	// Step-up (2026-07-28 client; the 1.x SDK refreshes first, which
	// cannot widen scope): the user first grants only user:read.
	v2 := tsClients[1]
	t.Run(v2.script+" steps up to the scope a tool needs", func(t *testing.T) {
		title := "Step-up entry"
		rep := runClient(t, st, v2, "", "carol", title, "--grant", "user:read", "--step-up")
		checkScenario(t, st, v2, rep, "carol", title)
		if rep.StepUp == nil || rep.StepUp.FirstScope != "user:read" || rep.StepUp.Steps < 1 {
			t.Fatalf("step-up %+v, want a first token with only user:read, then at least one step", rep.StepUp)
		}
		i := slices.IndexFunc(rep.Requests, func(r exchange) bool { return r.Status == 403 })
		if i < 0 {
			t.Fatalf("no 403 among %+v", rep.Requests)
		}
		ch := rep.Requests[i].Challenge
		if !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, "entries:write") {
			t.Errorf("403 challenge %q, want insufficient_scope naming entries:write", ch)
		}
		// Each step-up asks for the granted scopes joined with the
		// challenged ones: create_entry's entries:write, then get_entry's
		// entries:read.
		if len(rep.Authorizations) < 2 || !slices.Contains(strings.Fields(rep.Authorizations[1].Scope), "entries:write") ||
			!slices.Contains(strings.Fields(rep.Authorizations[1].Scope), "user:read") {
			t.Errorf("authorization requests %+v, want a second one asking for entries:write and user:read", rep.Authorizations)
		}
		if !slices.Contains(strings.Fields(rep.StepUp.FinalScope), "entries:write") {
			t.Errorf("scope after step-up %q lacks entries:write", rep.StepUp.FinalScope)
		}
	})
}

// testDPoPClient runs the TypeScript client 2.x with a DpopSession through
// the whole flow against the external issuer (oidc-provider with DPoP on):
// its token requests carry proofs, the issuer binds the token to the key
// (token_type DPoP, cnf.jkt), and EpicMe takes each MCP request only as
// "Authorization: DPoP" with a fresh proof of that key (RFC 9449 §7),
// calling tools as the signed-in user.
func testDPoPClient(t *testing.T, st *stack) {
	c := tsClients[1]
	title := "DPoP entry"
	rep := runClient(t, st, c, "", "carol", title, "--dpop")
	if rep.Error != "" {
		t.Fatalf("%s --dpop: %s", c.script, rep.Error)
	}
	checkScenario(t, st, c, rep, "carol", title)
	if !strings.EqualFold(rep.TokenType, "DPoP") {
		t.Fatalf("token_type %q, want DPoP", rep.TokenType)
	}
	authorized := 0
	for _, r := range rep.Requests {
		if r.URL != st.mcpURL || r.Scheme == "" {
			continue
		}
		authorized++
		if r.Scheme != "DPoP" || !r.DPoP || r.Status >= 400 {
			t.Errorf("an MCP request went out as %q (proof %v) and got %d", r.Scheme, r.DPoP, r.Status)
		}
	}
	if authorized == 0 {
		t.Fatal("no authorized MCP request was recorded")
	}
}

// TestDPoPNoncesWithTheTypeScriptClient: with --dpop-nonces, EpicMe answers
// the TypeScript client 2.4.0's first DPoP request with 401 use_dpop_nonce
// and a DPoP-Nonce header (RFC 9449 §9); the client's DpopSession signs its
// next proofs with the nonce, and the scenario completes.
func TestDPoPNoncesWithTheTypeScriptClient(t *testing.T) {
	st := startStack(t, stackOptions{Verifier: verifierJWT, DPoPNonces: true})
	c := tsClients[1]
	rep := runClient(t, st, c, "", "carol", "DPoP nonce entry", "--dpop")
	if rep.Error != "" {
		t.Fatalf("%s --dpop: %s", c.script, rep.Error)
	}
	checkScenario(t, st, c, rep, "carol", "DPoP nonce entry")
	asked, after := false, 0
	for _, r := range rep.Requests {
		if r.URL != st.mcpURL || r.Scheme != "DPoP" {
			continue
		}
		if r.Status == 401 && strings.Contains(r.Challenge, "use_dpop_nonce") {
			asked = true
		} else if asked && r.Status < 400 {
			after++
		}
	}
	if !asked || after == 0 {
		t.Fatalf("want a use_dpop_nonce challenge, then requests that pass: %+v", rep.Requests)
	}
}
