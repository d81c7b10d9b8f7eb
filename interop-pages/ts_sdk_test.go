package pages

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/browser"
)

// TestTypeScriptSDKClientCompletesTheFlowThroughThePages runs the
// TypeScript MCP SDK 1.x client (ts-sdk-client.mjs): it discovers the
// embedded authorization server from the 401, registers, prints the
// authorization URL; the driver signs in and narrows the consent to
// user:read and entries:read; the client gets the code on its loopback
// callback and whoami answers with exactly those scopes.
func TestTypeScriptSDKClientCompletesTheFlowThroughThePages(t *testing.T) {
	node := tool(t, "node")
	s := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(folder(), "ts-sdk-client.mjs"), s.url+"/mcp")
	cmd.Env = nodeEnv(t)
	cmd.Dir = folder()
	stdout, stderr, err := runDriven(t, cmd, browser.Authorization{
		Email: "demo@epicme.local", Password: s.demoPassword, Scopes: []string{"user:read", "entries:read"}, Name: "ts-sdk",
	})
	if err != nil {
		t.Fatalf("the TypeScript client failed: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var who struct {
		User   struct{ Email string }
		Scopes []string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &who); err != nil {
		t.Fatalf("the client's last line is not whoami's result: %v\n%s", err, stdout)
	}
	if who.User.Email != "demo@epicme.local" || strings.Join(who.Scopes, " ") != "user:read entries:read" {
		t.Fatalf("whoami through the TypeScript SDK: %+v", who)
	}
}
