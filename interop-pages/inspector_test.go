package pages

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
)

// TestInspectorCLICompletesTheFlowThroughThePages runs the Inspector's
// headless CLI: it calls whoami, which needs a token; it registers itself
// and prints the authorization URL; the driver signs in as the demo user
// and leaves only user:read ticked; whoami answers with the demo user and
// exactly that scope.
func TestInspectorCLICompletesTheFlowThroughThePages(t *testing.T) {
	inspector := tool(t, "mcp-inspector")
	s := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, inspector, "--cli",
		"--server-url", s.url+"/mcp", "--transport", "http",
		"--method", "tools/call", "--tool-name", "whoami",
		"--callback-url", "http://"+freePort(t)+"/oauth/callback")
	// Interactive OAuth without a terminal must be allowed explicitly.
	cmd.Env = append(nodeEnv(t), "MCP_AUTO_OPEN_ENABLED=true")
	cmd.Dir = folder()
	stdout, stderr, err := runDriven(t, cmd, browser.Authorization{
		Email: "demo@epicme.local", Password: s.demoPassword, Scopes: []string{"user:read"}, Name: "inspector",
	})
	if err != nil {
		t.Fatalf("the Inspector failed: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	var res struct {
		StructuredContent struct {
			User   struct{ Email string }
			Scopes []string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("the Inspector's output is not the tool result: %v\n%s", err, stdout)
	}
	if res.StructuredContent.User.Email != "demo@epicme.local" || strings.Join(res.StructuredContent.Scopes, " ") != "user:read" {
		t.Fatalf("whoami through the Inspector: %+v", res.StructuredContent)
	}
}
