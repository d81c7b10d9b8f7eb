package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func clientEnv(stdout *bytes.Buffer) env {
	return env{stdin: strings.NewReader(""), stdout: stdout, stderr: stdout, getenv: func(string) string { return "" }}
}

func TestClientAddListRemove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	err := runClient(ctx, []string{"add", "--data-dir", dir, "--name", "Laptop app", "--confidential",
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
	for _, f := range []string{"epicme.db", "epicme.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, []byte(secret[1])) {
			t.Fatalf("%s holds the client secret in clear", f)
		}
	}
	out.Reset()
	if err := runClient(ctx, []string{"add", "--data-dir", dir, "--name", "Introspector", "--resource-server", "--public-url", "https://journal.example"}, clientEnv(&out)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "https://journal.example/mcp") {
		t.Fatalf("resource server add printed:\n%s", out.String())
	}
	out.Reset()
	if err := runClient(ctx, []string{"list", "--data-dir", dir}, clientEnv(&out)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), id[1]) || !strings.Contains(out.String(), "confidential") || !strings.Contains(out.String(), "resource-server") {
		t.Fatalf("list printed:\n%s", out.String())
	}
	out.Reset()
	if err := runClient(ctx, []string{"remove", "--data-dir", dir, id[1]}, clientEnv(&out)); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	out.Reset()
	runClient(ctx, []string{"list", "--data-dir", dir}, clientEnv(&out))
	if strings.Contains(out.String(), id[1]) {
		t.Fatalf("removed client still listed:\n%s", out.String())
	}
	if err := runClient(ctx, []string{"remove", "--data-dir", dir, id[1]}, clientEnv(&out)); err == nil {
		t.Fatal("removing an unknown client must fail")
	}
	for _, bad := range [][]string{
		{"add", "--data-dir", dir, "--redirect-uri", "http://127.0.0.1/cb"},
		{"add", "--data-dir", dir, "--name", "x"},
		{"add", "--data-dir", dir, "--name", "x", "--redirect-uri", "http://app.example/cb"},
		{"add", "--data-dir", dir, "--name", "x", "--public", "--confidential", "--redirect-uri", "http://127.0.0.1/cb"},
	} {
		if err := runClient(ctx, bad, clientEnv(&out)); err == nil {
			t.Errorf("%v should fail", bad)
		}
	}
}
