// Package pgtest gives tests a fresh, empty PostgreSQL database of their own.
//
// Tests find the server in the environment variable EPICME_TEST_POSTGRES_URL
// (.ci/run sets it); without it, or when the server does not answer, they
// skip and say how to run them.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the URL of a database on
// the test server; the user must be allowed to create databases.
const EnvURL = "EPICME_TEST_POSTGRES_URL"

// SkipMessage says how to enable the tests that need PostgreSQL.
const SkipMessage = "set " + EnvURL + "=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests (.ci/run does)"

// ErrNoServer is returned by CreateDatabase when EPICME_TEST_POSTGRES_URL is
// unset or its server does not answer.
var ErrNoServer = errors.New(SkipMessage)

// NewDatabase creates an empty database named epicme_test_<random> on the
// server of EPICME_TEST_POSTGRES_URL, drops it when the test ends, and
// returns its URL. It skips the test when the variable is unset or the
// server cannot be reached.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	url, drop, err := CreateDatabase(context.Background())
	if errors.Is(err, ErrNoServer) {
		testenv.Missing(tb, testenv.Postgres, err.Error())
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Error(err)
		}
	})
	return url
}

// CreateDatabase is NewDatabase for fixtures that outlive one test (a
// benchmark's, built once per process): the caller calls drop when done.
func CreateDatabase(ctx context.Context) (dbURL string, drop func() error, err error) {
	admin := os.Getenv(EnvURL)
	if admin == "" {
		return "", nil, ErrNoServer
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("%w (cannot reach the test server: %v)", ErrNoServer, err)
	}
	defer conn.Close(ctx)
	name := "epicme_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("creating test database: %w", err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, admin)
		if err != nil {
			return fmt.Errorf("dropping test database %s: %w", name, err)
		}
		defer conn.Close(ctx)
		// FORCE ends sessions a failed test left open.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping test database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// NewSchema creates an empty schema in the database at dbURL (one from
// NewDatabase), drops it when the test ends, and returns a URL whose
// connections create and find their tables there (search_path). A schema
// costs a few milliseconds where a database costs up to a second, so suites
// that want an empty store per subtest take one database and a schema each.
func NewSchema(tb testing.TB, dbURL string) string {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "s_" + strings.ToLower(rand.Text()[:12])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("creating test schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := connect(ctx, dbURL)
		if err != nil {
			tb.Errorf("dropping test schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("dropping test schema %s: %v", name, err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}
