package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
)

func clientEnv(stdout *bytes.Buffer) env {
	return env{stdin: strings.NewReader(""), stdout: stdout, stderr: stdout, getenv: func(string) string { return "" }}
}

// TestClientAddListRemove runs epicme client add, list and remove on
// SQLite in the data directory.
func TestClientAddListRemove(t *testing.T) {
	dir := t.TempDir()
	clientCommands(t, dir, nil, func(secret string) bool {
		for _, f := range []string{"epicme.db", "epicme.db-wal"} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			if bytes.Contains(b, []byte(secret)) {
				t.Logf("%s holds the secret", f)
				return true
			}
		}
		return false
	})
}

// TestClientAddListRemoveOnPostgres runs the same commands with
// --database-url on a fresh PostgreSQL database (skipped without
// EPICME_TEST_POSTGRES_URL).
func TestClientAddListRemoveOnPostgres(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	dir := t.TempDir()
	clientCommands(t, dir, []string{"--database-url", dbURL}, func(secret string) bool {
		db, err := postgres.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM oauth_clients c WHERE c::text LIKE '%' || $1 || '%'`, secret).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var clients int
		if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM oauth_clients`).Scan(&clients); err != nil || clients == 0 {
			t.Fatalf("the client was not stored in PostgreSQL (%d clients, %v)", clients, err)
		}
		return n > 0
	})
	// Nothing went to SQLite in the data directory.
	if _, err := os.Stat(filepath.Join(dir, "epicme.db")); err == nil {
		t.Fatal("a SQLite database was created next to --database-url")
	}
}

// clientCommands runs epicme client add, list and remove with the data
// directory dir and the database arguments dbArgs; inClear reports whether
// the database holds a client secret as it was printed.
func clientCommands(t *testing.T, dir string, dbArgs []string, inClear func(secret string) bool) {
	ctx := context.Background()
	var out bytes.Buffer
	// The database flags go right after the subcommand, before any
	// argument that ends the flags.
	client := func(ctx context.Context, args []string, e env) error {
		return runClient(ctx, append(append([]string{args[0]}, dbArgs...), args[1:]...), e)
	}
	err := client(ctx, []string{"add", "--data-dir", dir, "--name", "Laptop app", "--confidential",
		"--redirect-uri", "http://127.0.0.1/cb", "--redirect-uri", "https://app.example/cb"}, clientEnv(&out))
	if err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(out.String())
	secret := regexp.MustCompile(`client_secret:\s+(\S+)`).FindStringSubmatch(out.String())
	if id == nil || secret == nil || len(secret[1]) < 40 {
		t.Fatalf("add printed:\n%s", out.String())
	}
	// The key-encryption key was created private to the owner.
	st, err := os.Stat(filepath.Join(dir, kekFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", kekFile, st.Mode(), err)
	}
	// The secret is not stored in clear.
	if inClear(secret[1]) {
		t.Fatal("the database holds the client secret in clear")
	}
	out.Reset()
	if err := client(ctx, []string{"add", "--data-dir", dir, "--name", "Introspector", "--resource-server", "--public-url", "https://journal.example"}, clientEnv(&out)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "https://journal.example/mcp") {
		t.Fatalf("resource server add printed:\n%s", out.String())
	}
	out.Reset()
	if err := client(ctx, []string{"list", "--data-dir", dir}, clientEnv(&out)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id[1]) || !strings.Contains(out.String(), "confidential") || !strings.Contains(out.String(), "resource-server") {
		t.Fatalf("list printed:\n%s", out.String())
	}
	out.Reset()
	if err := client(ctx, []string{"remove", "--data-dir", dir, id[1]}, clientEnv(&out)); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	out.Reset()
	client(ctx, []string{"list", "--data-dir", dir}, clientEnv(&out))
	if strings.Contains(out.String(), id[1]) {
		t.Fatalf("removed client still listed:\n%s", out.String())
	}
	if err := client(ctx, []string{"remove", "--data-dir", dir, id[1]}, clientEnv(&out)); err == nil {
		t.Fatal("removing an unknown client must fail")
	}
	for _, bad := range [][]string{
		{"add", "--data-dir", dir, "--redirect-uri", "http://127.0.0.1/cb"},
		{"add", "--data-dir", dir, "--name", "x"},
		{"add", "--data-dir", dir, "--name", "x", "--redirect-uri", "http://app.example/cb"},
		{"add", "--data-dir", dir, "--name", "x", "--public", "--confidential", "--redirect-uri", "http://127.0.0.1/cb"},
	} {
		if err := client(ctx, bad, clientEnv(&out)); err == nil {
			t.Errorf("%v should fail", bad)
		}
	}
}
