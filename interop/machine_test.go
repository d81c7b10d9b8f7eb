package interop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/epicme/epicme/internal/idptest"
)

// embedded is `epicme serve` with its embedded authorization server, on a
// data directory the test prepared with the epicme commands an operator
// would run.
type embedded struct {
	dir, base, mcpURL string
}

// epicmeCommand runs one epicme command on dir and returns its output.
func epicmeCommand(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(epicmeBinary(t), append(args, "--data-dir", dir)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("epicme %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startEmbedded starts `epicme serve` on dir until t ends.
func startEmbedded(t *testing.T, dir string, flags ...string) *embedded {
	t.Helper()
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(epicmeBinary(t), append([]string{"serve", "--data-dir", dir, "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--public-url", base}, flags...)...)
	p := startProcess(t, "epicme serve", cmd)
	st := &stack{mcpURL: base + "/mcp", baseURL: base, epicme: p}
	st.waitReady(t)
	return &embedded{dir: dir, base: base, mcpURL: base + "/mcp"}
}

var clientIDLine = regexp.MustCompile(`client_id:\s+(\S+)`)
var clientSecretLine = regexp.MustCompile(`client_secret:\s+(\S+)`)

// machineReport is what ts-client-v2.mjs prints for a machine client.
type machineReport struct {
	clientReport
	Scope        string `json:"scope"`
	RefreshToken bool   `json:"refreshToken"`
	Outside      *struct {
		Refused bool   `json:"refused"`
		Text    string `json:"text"`
		Error   string `json:"error"`
	} `json:"outside"`
}

// TestMachineClientsWithTheTypeScriptClient: the official TypeScript client
// 2.4.0's ClientCredentialsProvider (client_secret_basic) and
// PrivateKeyJwtProvider (an RFC 7523 assertion signed by a key made in
// Node's WebCrypto, verified here by the JWKS the operator registered) get
// tokens from EpicMe's embedded authorization server by the client
// credentials grant, act for the user the operator named, write and read
// that user's journal, get no refresh token, and are refused a tool their
// scopes do not cover.
func TestMachineClientsWithTheTypeScriptClient(t *testing.T) {
	requireNode(t)
	dir := t.TempDir()
	epicmeCommand(t, dir, "a long enough password\n", "user", "add", "--email", "owner@example.com")
	const scope = "user:read entries:read entries:write"

	out := epicmeCommand(t, dir, "", "client", "add", "--name", "Nightly backup", "--confidential", "--acts-as", "owner@example.com", "--scope", scope)
	secretID, secret := clientIDLine.FindStringSubmatch(out), clientSecretLine.FindStringSubmatch(out)
	if secretID == nil || secret == nil {
		t.Fatalf("client add printed no id or secret:\n%s", out)
	}

	// A P-256 key whose private half goes to the Node client as PKCS #8 and
	// whose public half the operator registers as a JWKS.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, Algorithm: "ES256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	out = epicmeCommand(t, dir, "", "client", "add", "--name", "Summariser", "--acts-as", "owner@example.com", "--scope", scope, "--jwks-file", jwksFile)
	keyID := clientIDLine.FindStringSubmatch(out)
	if keyID == nil || clientSecretLine.MatchString(out) {
		t.Fatalf("client add --jwks-file should print an id and no secret:\n%s", out)
	}

	srv := startEmbedded(t, dir)
	for name, creds := range map[string][]string{
		"ClientCredentialsProvider": {"--client-id", secretID[1], "--client-secret", secret[1]},
		"PrivateKeyJwtProvider":     {"--client-id", keyID[1], "--private-key", keyFile, "--alg", "ES256"},
	} {
		t.Run(name, func(t *testing.T) {
			title := "Entry from " + name
			args := append([]string{"--url", srv.mcpURL, "--title", title, "--issuer", srv.base, "--scope", scope, "--outside-tool", "list_tags"}, creds...)
			raw := runNode(t, 60*time.Second, nil, "ts-client-v2.mjs", args...)
			var rep machineReport
			if err := json.Unmarshal([]byte(raw), &rep); err != nil {
				t.Fatalf("ts-client-v2.mjs printed %q: %v", raw, err)
			}
			if rep.Whoami.User.Email != "owner@example.com" {
				t.Errorf("whoami = %+v, want the user the client acts for", rep.Whoami.User)
			}
			if rep.Created.Entry.Title != title || rep.Fetched.Entry.ID != rep.Created.Entry.ID {
				t.Errorf("created %+v, fetched %+v", rep.Created.Entry, rep.Fetched.Entry)
			}
			if rep.RefreshToken || rep.Scope != scope || rep.TokenType != "Bearer" {
				t.Errorf("token: refresh %v, scope %q, type %q; want no refresh token, %q, Bearer", rep.RefreshToken, rep.Scope, rep.TokenType, scope)
			}
			if rep.Outside == nil || !rep.Outside.Refused {
				t.Errorf("list_tags (tags:read, outside the client's scopes) was not refused: %+v", rep.Outside)
			}
			sawToken, saw403 := false, false
			for _, x := range rep.Requests {
				sawToken = sawToken || (strings.HasSuffix(x.URL, "/oauth/token") && x.Status == 200)
				saw403 = saw403 || (x.Status == 403 && strings.Contains(x.Challenge, "insufficient_scope"))
			}
			if !sawToken || !saw403 {
				t.Errorf("want a token from /oauth/token and a 403 insufficient_scope for list_tags: %+v", rep.Requests)
			}
		})
	}
}

// TestEnterpriseManagedAuthorizationWithTheTypeScriptClient: the official
// TypeScript client 2.4.0's CrossAppAccessProvider, for an employee signed
// in at an enterprise IdP (internal/idptest, which mints ID-JAGs by RFC 8693
// token exchange), gets an ID-JAG for EpicMe from the IdP and an access
// token from EpicMe's embedded authorization server by the jwt-bearer grant,
// with no consent screen; the token acts for the IdP's employee (a new user,
// not the local account with the same email), within the scopes the
// operator allowed the IdP, with no refresh token.
func TestEnterpriseManagedAuthorizationWithTheTypeScriptClient(t *testing.T) {
	requireNode(t)
	idp := idptest.New(t)
	dir := t.TempDir()
	epicmeCommand(t, dir, "a long enough password\n", "user", "add", "--email", "emp@corp.example")
	out := epicmeCommand(t, dir, "", "client", "add", "--name", "Corp chat", "--confidential", "--redirect-uri", "https://chat.corp.example/callback")
	id, secret := clientIDLine.FindStringSubmatch(out), clientSecretLine.FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("client add printed no id or secret:\n%s", out)
	}
	const scope = "user:read entries:read entries:write"
	epicmeCommand(t, dir, "", "idp", "add", "--issuer", idp.Issuer, "--client", id[1], "--scope", scope)
	idp.Apps["corp-chat"] = idptest.App{Secret: "idp-secret", ASClientID: id[1]}

	// The IdP runs on loopback: in development mode the guarded fetcher
	// may fetch its metadata and keys there.
	srv := startEmbedded(t, dir, "--dev-allow-private-metadata-documents")
	title := "Entry from CrossAppAccessProvider"
	raw := runNode(t, 60*time.Second, nil, "ts-client-v2.mjs", "--url", srv.mcpURL, "--title", title, "--issuer", srv.base,
		"--client-id", id[1], "--client-secret", secret[1], "--idp", idp.Issuer,
		"--id-token", idp.IDToken("employee-42", "emp@corp.example", "corp-chat"),
		"--idp-client-id", "corp-chat", "--idp-client-secret", "idp-secret", "--outside-tool", "list_tags")
	var rep machineReport
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		t.Fatalf("ts-client-v2.mjs printed %q: %v", raw, err)
	}
	if rep.Whoami.User.Issuer != idp.Issuer || rep.Whoami.User.Subject != "employee-42" {
		t.Errorf("whoami = %+v, want the IdP's employee-42 (not the local account with the same email)", rep.Whoami.User)
	}
	if rep.Created.Entry.Title != title || rep.Fetched.Entry.ID != rep.Created.Entry.ID {
		t.Errorf("created %+v, fetched %+v", rep.Created.Entry, rep.Fetched.Entry)
	}
	if rep.RefreshToken || rep.TokenType != "Bearer" || rep.Scope != scope {
		t.Errorf("token: refresh %v, type %q, scope %q; want none, Bearer, %q", rep.RefreshToken, rep.TokenType, rep.Scope, scope)
	}
	if rep.Outside == nil || !rep.Outside.Refused {
		t.Errorf("list_tags (outside the IdP's scopes) was not refused: %+v", rep.Outside)
	}
	if idp.Exchanges() == 0 {
		t.Error("the client got no ID-JAG from the IdP")
	}
}
