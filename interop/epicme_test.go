package interop

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The EpicMe binary is built once per test run, from this module.
var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func epicmeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "epicme-interop-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "epicme")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/epicme")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/epicme: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// freeLoopbackPort returns a port nothing listens on at the moment. EpicMe's
// public URL must be known before the issuer starts (it is the resource the
// issuer mints tokens for), so the port is chosen here, not by EpicMe.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Verifier kinds of `epicme serve --token-verifier`.
const (
	verifierJWT           = "jwt"
	verifierIntrospection = "introspection"
)

// stack is an issuer and an EpicMe server that trusts it.
type stack struct {
	is      *issuer
	mcpURL  string
	baseURL string
	epicme  *process
}

// stackOptions configure startStack.
type stackOptions struct {
	// Verifier is verifierJWT (the issuer mints JWTs) or
	// verifierIntrospection (it mints opaque tokens).
	Verifier string
	// Alg signs JWT access tokens (default RS256).
	Alg string
	// CacheBound is EpicMe's introspection cache bound, the longest a
	// revoked token keeps working.
	CacheBound time.Duration
	// DPoPNonces turns on EpicMe's DPoP server nonces (--dpop-nonces).
	DPoPNonces bool
}

// startStack starts issuer.mjs and `epicme serve` trusting it, both until t
// ends.
func startStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	requireNode(t)
	bin := epicmeBinary(t)
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	format := "jwt"
	if opt.Verifier == verifierIntrospection {
		format = "opaque"
	}
	is := startIssuer(t, issuerOptions{Resource: base + "/mcp", Format: format, Alg: opt.Alg})

	args := []string{"serve",
		"--data-dir", t.TempDir(),
		"--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--public-url", base,
		"--issuer", is.Issuer,
		"--token-verifier", opt.Verifier,
		"--log-level", "debug",
	}
	if opt.DPoPNonces {
		args = append(args, "--dpop-nonces")
	}
	if opt.Verifier == verifierIntrospection {
		args = append(args,
			"--introspection-url", is.IntrospectionEndpoint,
			"--introspection-client-id", is.ResourceServerClient.ClientID,
		)
		if opt.CacheBound > 0 {
			args = append(args, "--verifier-cache-ttl", opt.CacheBound.String())
		}
	}
	cmd := exec.Command(bin, args...)
	// The secret goes by environment, not argv, so it stays off process lists.
	cmd.Env = append(os.Environ(), "EPICME_INTROSPECTION_CLIENT_SECRET="+is.ResourceServerClient.ClientSecret)
	p := startProcess(t, "epicme serve", cmd)
	s := &stack{is: is, mcpURL: base + "/mcp", baseURL: base, epicme: p}
	s.waitReady(t)
	return s
}

// waitReady polls the protected resource metadata until EpicMe answers.
func (s *stack) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		select {
		case <-s.epicme.done:
			t.Fatalf("epicme serve exited: %v\n%s", s.epicme.cmd.ProcessState, s.epicme.stderr.String())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/.well-known/oauth-protected-resource/mcp", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("epicme serve was not ready within 20s (last: %v)\n%s", err, s.epicme.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
