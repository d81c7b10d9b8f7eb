package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

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
	if code != http.StatusOK || !strings.Contains(body, `epicme_http_requests_total{route="GET /readyz",code="200"} 1`) ||
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := fetch(t, s.url+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d with the database gone", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := fetch(t, s.url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
}
