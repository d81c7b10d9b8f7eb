package pages

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
)

// TestConformanceAuthorizationServer runs the MCP conformance suite's
// authorization-server scenarios against the embedded authorization server
// of "epicme serve", with a client registered for the suite's callback;
// the driver completes the sign-in at the URL the suite prints. Every check
// must pass.
func TestConformanceAuthorizationServer(t *testing.T) {
	suite := tool(t, "conformance")
	s := serve(t)
	callback := freePort(t)
	port := callback[strings.LastIndexByte(callback, ':')+1:]
	add := exec.Command(s.bin, "client", "add", "--data-dir", s.dataDir, "--name=MCP conformance suite",
		"--redirect-uri", "http://"+callback+"/callback")
	out, err := add.CombinedOutput()
	if err != nil {
		t.Fatalf("epicme client add: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`client_id:\s+(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no client_id in:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite, "authorization", "--url", s.url, "--resource", s.url+"/mcp",
		"--client-id", string(m[1]), "--port", port)
	cmd.Env = nodeEnv(t)
	cmd.Dir = folder()
	stdout, stderr, err := runDriven(t, cmd, browser.Authorization{
		Email: "demo@epicme.local", Password: s.demoPassword, Name: "conformance",
	})
	t.Logf("conformance output:\n%s", stdout)
	if err != nil {
		t.Fatalf("the conformance suite failed: %v\nstderr: %s", err, stderr)
	}
	total := regexp.MustCompile(`Total: (\d+) passed, (\d+) failed`).FindStringSubmatch(stdout)
	if total == nil || total[2] != "0" || total[1] == "0" {
		t.Fatalf("conformance summary %v", total)
	}
	for _, scenario := range []string{"authorization-server-metadata-endpoint", "authorization-code-grant"} {
		if !regexp.MustCompile(`✓ ` + scenario + `: [1-9]\d* passed, 0 failed`).MatchString(stdout) {
			t.Errorf("scenario %s did not pass with at least one check", scenario)
		}
	}
}
