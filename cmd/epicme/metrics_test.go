package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// TestMetricsCountToolCallsOfEveryRevision serves on SQLite and makes the
// same tool calls as a 2025-11-25 client (a session, through mcp-go) and as
// a 2026-07-28 client (no session; get_entry takes the fast path): /metrics
// counts each after each client, by tool and result, in the exposition
// format a Prometheus scraper reads.
func TestMetricsCountToolCallsOfEveryRevision(t *testing.T) {
	c := newCLI(t)
	s := startServe(t, c, "--dev-insecure-no-auth")
	ctx := context.Background()
	for i, version := range []string{"2025-11-25", "2026-07-28"} {
		cl, err := client.NewStreamableHttpClient(s.url+"/mcp", transport.WithHTTPTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		exerciseJournal(t, ctx, cl, version)
		cl.Close()

		code, body := fetch(t, s.url+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics = %d", code)
		}
		n := strconv.Itoa(i + 1)
		for _, want := range []string{
			"# TYPE epicme_tool_calls_total counter",
			`epicme_tool_calls_total{result="ok",tool="whoami"} ` + n,
			`epicme_tool_calls_total{result="ok",tool="create_entry"} ` + n,
			`epicme_tool_calls_total{result="ok",tool="get_entry"} ` + n,
			"# TYPE epicme_tool_duration_seconds histogram",
			`epicme_tool_duration_seconds_count{tool="get_entry"} ` + n,
			`epicme_auth_decisions_total{result="ok"} `,
			"# TYPE epicme_db_connections_open gauge",
			"# TYPE process_resident_memory_bytes gauge",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("after the %s client, /metrics lacks %q", version, want)
			}
		}
		if t.Failed() {
			t.Fatalf("/metrics:\n%s", body)
		}
	}
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeMetricsAndReadinessOnPostgres serves from PostgreSQL: /metrics
// counts requests and shows the pool, and /readyz answers 503 once the
// database is gone (dropped here, as a lost server would be) while /healthz
// still answers.
func TestServeMetricsAndReadinessOnPostgres(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	c := newCLI(t)
	c.vars["EPICME_DATABASE_URL"] = dbURL
	s := startServe(t, c, "--dev-insecure-no-auth")
	if code, _ := fetch(t, s.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	code, body := fetch(t, s.url+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `epicme_http_requests_total{code="200",route="GET /readyz"} 1`) ||
		!strings.Contains(body, "epicme_db_connections_max ") {
		t.Fatalf("/metrics = %d\n%s", code, body)
	}

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, os.Getenv(pgtest.EnvURL))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := dbURL[strings.LastIndex(dbURL, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, _ := fetch(t, s.url+"/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz is %d with the database gone", code)
		}
		return nil
	})
	if code, _ := fetch(t, s.url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
}
