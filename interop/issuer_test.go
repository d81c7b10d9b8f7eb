package interop

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// issuerOptions configure issuer.mjs.
type issuerOptions struct {
	// Resource is the MCP URL that tokens are minted for (required).
	Resource string
	// Format is "jwt" (RFC 9068 access tokens) or "opaque" (introspected).
	Format string
	// Alg signs JWT access tokens: RS256 (default), ES256 or EdDSA.
	Alg string
	// ShortTTL is the access token lifetime, in seconds, of the
	// interop-short client (default 2).
	ShortTTL int
}

// issuer is a running issuer.mjs, described by the JSON line it prints when
// it is ready.
type issuer struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	Resource              string `json:"resource"`
	OtherResource         string `json:"other_resource"`
	Format                string `json:"format"`
	Alg                   string `json:"alg"`
	ShortTTL              int    `json:"short_ttl"`
	RedirectURI           string `json:"redirect_uri"`

	proc                 *process
	ResourceServerClient struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"resource_server_client"`
}

// Users of issuer.mjs and their passwords.
var issuerUsers = map[string]string{
	"alice": "alice-password",
	"bob":   "bob-password",
	"carol": "carol-password",
}

// startIssuer runs issuer.mjs until t ends.
func startIssuer(t *testing.T, opt issuerOptions) *issuer {
	t.Helper()
	node := requireNode(t)
	if opt.Format == "" {
		opt.Format = "jwt"
	}
	if opt.Alg == "" {
		opt.Alg = "RS256"
	}
	if opt.ShortTTL == 0 {
		opt.ShortTTL = 2
	}
	args := []string{"issuer.mjs",
		"--resource", opt.Resource,
		"--format", opt.Format,
		"--alg", opt.Alg,
		"--short-ttl", fmt.Sprint(opt.ShortTTL),
	}
	p := startProcess(t, "issuer.mjs", exec.Command(node, args...))
	line := p.firstLine(t, 20*time.Second)
	var is issuer
	if err := json.Unmarshal([]byte(line), &is); err != nil {
		t.Fatalf("issuer.mjs printed %q, not its JSON description: %v", line, err)
	}
	is.proc = p
	return &is
}
