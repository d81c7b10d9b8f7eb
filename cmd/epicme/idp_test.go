package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/epicme/epicme"
)

// TestIdPAddListRemove runs epicme idp add, list and remove, and their
// refusals: a missing flag, an http issuer, an unknown client, a machine
// client, and removing twice.
func TestIdPAddListRemove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	run := func(cmd func(context.Context, []string, env) error, args ...string) error {
		out.Reset()
		// The data directory goes right after the subcommand, before any
		// argument that ends the flags.
		return cmd(ctx, append([]string{args[0], "--data-dir", dir}, args[1:]...), clientEnv(&out))
	}
	if err := run(runClient, "add", "--name", "Corp chat", "--confidential", "--redirect-uri", "https://chat.example/cb"); err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(out.String())[1]
	if err := run(runUser, "add", "--email", "owner@example.com", "--password", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if err := run(runClient, "add", "--name", "Backup", "--acts-as", "owner@example.com", "--scope", "entries:read"); err != nil {
		t.Fatal(err)
	}
	machine := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(out.String())[1]

	for name, args := range map[string][]string{
		"no client":      {"add", "--issuer", "https://idp.example.com"},
		"http issuer":    {"add", "--issuer", "http://idp.example.com", "--client", id},
		"unknown client": {"add", "--issuer", "https://idp.example.com", "--client", "nope"},
		"machine client": {"add", "--issuer", "https://idp.example.com", "--client", machine},
		"unknown scope":  {"add", "--issuer", "https://idp.example.com", "--client", id, "--scope", "admin"},
	} {
		if err := run(runIdP, args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := run(runIdP, "add", "--issuer", "https://idp.example.com", "--client", id, "--scope", "entries:read user:read"); err != nil {
		t.Fatal(err)
	}
	if err := run(runIdP, "list"); err != nil || !strings.Contains(out.String(), "https://idp.example.com") || !strings.Contains(out.String(), id) {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	if err := run(runIdP, "remove", "https://idp.example.com"); err != nil || !strings.Contains(out.String(), "revoked") {
		t.Fatalf("remove: %v\n%s", err, out.String())
	}
	if err := run(runIdP, "remove", "https://idp.example.com"); epicme.ErrorCode(err) != epicme.ENOTFOUND || !strings.Contains(epicme.ErrorMessage(err), "epicme idp list") {
		t.Fatalf("removing twice: %v", err)
	}
}
