package pages

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// conformanceCheck is one check of a scenario as the conformance suite
// writes it to <output-dir>/<scenario>-<time>/checks.json.
type conformanceCheck struct {
	ID           string `json:"id"`
	Status       string `json:"status"` // SUCCESS, FAILURE, WARNING, INFO, SKIPPED
	ErrorMessage string `json:"errorMessage"`
	Details      struct {
		Untestable bool `json:"untestable"`
	} `json:"details"`
}

// TestConformanceServer runs the MCP conformance suite's server scenarios
// for the protocol revisions 2025-11-25 (a session per client) and
// 2026-07-28 (stateless) against "epicme serve".
//
// The suite's MCP scenarios know no OAuth, so the server runs in
// development mode (every request acts as one local account); the
// authorization server has its own run (TestConformanceAuthorizationServer)
// and the resource server's checks have theirs (package auth).
//
// Many scenarios call fixture tools, prompts and resources of the suite's
// reference server (test_simple_text, test_prompt_with_image,
// test://static-text, ...) that a journal does not have, or exercise the
// tasks extension, which EpicMe does not serve. The scenarios that apply to
// any server are listed below, and each must pass every check: a check the
// suite itself marks untestable (it needs a fixture tool) is not a failure,
// a SHOULD the suite reports as a warning is logged. The outcome of the
// other scenarios is logged, not judged.
func TestConformanceServer(t *testing.T) {
	suite := nodeTool(t, "conformance")
	s := serve(t, "--dev-insecure-no-auth")
	runs := []struct {
		revision string
		args     []string
		apply    []string
	}{
		{"2025-11-25", []string{"--spec-version", "2025-11-25"}, []string{
			"server-initialize", "server-session-lifecycle", "logging-set-level", "ping",
			"completion-complete", "tools-list", "server-sse-multiple-streams",
			"resources-list", "resources-subscribe", "resources-unsubscribe", "prompts-list",
			"dns-rebinding-protection",
		}},
		{"2026-07-28", []string{"--requirements", "2026-07-28"}, []string{
			"server-stateless", "completion-complete", "tools-list", "server-sse-multiple-streams",
			"resources-list", "sep-2164-resource-not-found", "prompts-list",
			"dns-rebinding-protection", "caching", "http-header-validation",
			"input-required-result-missing-input-response",
			"input-required-result-unsupported-methods",
			"input-required-result-ignore-extra-params",
			"input-required-result-validate-input",
		}},
	}
	for _, run := range runs {
		t.Run(run.revision, func(t *testing.T) {
			out := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			args := append([]string{"server", "--url", s.url + "/mcp", "--timeout", "20000", "-o", out}, run.args...)
			cmd := exec.CommandContext(ctx, suite, args...)
			cmd.Env = nodeEnv(t)
			cmd.Dir = folder()
			// The suite exits non-zero: the fixture scenarios fail.
			printed, _ := cmd.CombinedOutput()
			scenarios := readConformance(t, out)
			if len(scenarios) == 0 {
				t.Fatalf("the conformance suite wrote no results:\n%s", printed)
			}
			for _, name := range run.apply {
				checks, ok := scenarios[name]
				if !ok {
					t.Errorf("scenario %s did not run", name)
					continue
				}
				passed := 0
				for _, c := range checks {
					switch {
					case c.Status == "SUCCESS":
						passed++
					case c.Status == "FAILURE" && !c.Details.Untestable:
						t.Errorf("%s: check %s failed: %s", name, c.ID, c.ErrorMessage)
					case c.Status == "WARNING":
						t.Logf("%s: SHOULD %s not met: %s", name, c.ID, c.ErrorMessage)
					}
				}
				if passed == 0 {
					t.Errorf("%s: no check passed", name)
				}
			}
			var other []string
			for name, checks := range scenarios {
				if !slices.Contains(run.apply, name) {
					other = append(other, name+" "+summary(checks))
				}
			}
			sort.Strings(other)
			t.Logf("scenarios that need the suite's fixtures or the tasks extension:\n  %s", strings.Join(other, "\n  "))
		})
	}
}

// readConformance reads the checks of every scenario the suite wrote to
// dir, by scenario name.
func readConformance(t *testing.T, dir string) map[string][]conformanceCheck {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	if err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`-\d{4}-\d\d-\d\dT[\d-]+Z$`)
	scenarios := map[string][]conformanceCheck{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var checks []conformanceCheck
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := strings.TrimPrefix(stamp.ReplaceAllString(filepath.Base(filepath.Dir(f)), ""), "server-")
		scenarios[name] = checks
	}
	return scenarios
}

// summary counts a scenario's checks by status.
func summary(checks []conformanceCheck) string {
	n := map[string]int{}
	for _, c := range checks {
		n[c.Status]++
	}
	b, _ := json.Marshal(n)
	return string(b)
}
