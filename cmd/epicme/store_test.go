package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestDatabaseURLMustBePostgres(t *testing.T) {
	for _, cmd := range [][]string{{"migrate"}, {"user", "list"}} {
		c := newCLI(t)
		c.vars["EPICME_DATABASE_URL"] = "mysql://epicme:s3cret@127.0.0.1/journal"
		code, _, errOut := c.run("", cmd...)
		if code != 2 || !strings.Contains(errOut, "--database-url must be a postgres:// URL") {
			t.Errorf("%v: exit %d, stderr %q", cmd, code, errOut)
		}
		if strings.Contains(errOut, "s3cret") {
			t.Errorf("%v: stderr shows the password: %q", cmd, errOut)
		}
	}
}

// TestPostgresKeepsTheJournal runs the commands that support PostgreSQL
// against a fresh database: migrate, user add and list, stdio, and serve
// in development mode. Nothing of the journal lands in the data directory.
func TestPostgresKeepsTheJournal(t *testing.T) {
	url := pgtest.NewDatabase(t)
	c := newCLI(t)
	c.vars["EPICME_DATABASE_URL"] = url

	out := c.mustRun("migrate")
	if want := "schema version " + itoa(postgres.LatestSchemaVersion()) + " (postgres 127.0.0.1:5432/epicme_test_"; !strings.HasPrefix(out, want) {
		t.Errorf("migrate printed %q, want %q...", out, want)
	}
	c.mustRun("user", "add", "--email", "me@example.com", "--password", "long enough")
	if out := c.mustRun("user", "list"); !strings.Contains(out, "me@example.com") {
		t.Errorf("user list: %q", out)
	}

	// stdio, as a desktop client launches it.
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		e := c.env("", outW, stderr)
		e.stdin = inR
		done <- run(ctx, []string{"stdio", "--user", "me@example.com"}, e)
		outW.Close()
	}()
	cl := client.NewClient(transport.NewIO(outR, inW, io.NopCloser(strings.NewReader(""))))
	exerciseJournal(t, ctx, cl, "2025-11-25")
	cl.Close()
	inW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("stdio exit %d\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stdio did not stop at end of input")
	}

	// serve in development mode: the journal and /readyz are on PostgreSQL.
	s := startServe(t, c, "--dev-insecure-no-auth")
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %d", resp.StatusCode)
	}
	hc, err := client.NewStreamableHttpClient(s.url+"/mcp", transport.WithHTTPTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	exerciseJournal(t, ctx, hc, "2026-07-28")
	hc.Close()
	if code := s.stop(); code != 0 {
		t.Errorf("serve exit %d\n%s", code, s.stderr)
	}

	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, email := range []string{"me@example.com", defaultDevUser} {
		u, err := db.LocalUserByEmail(ctx, email)
		if err != nil {
			t.Fatalf("%s in PostgreSQL: %v", email, err)
		}
		page, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{})
		if err != nil || len(page.Entries) != 1 {
			t.Errorf("%s has %d entries in PostgreSQL (%v), want 1", email, len(page.Entries), err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dataDir(), databaseFile)); !os.IsNotExist(err) {
		t.Errorf("a SQLite journal was created in the data directory (%v)", err)
	}
}

// TestServeWithAnExternalIssuerKeepsUsersOnPostgres serves with --issuer and
// --database-url: the tokens of the external authorization server map to
// users created in PostgreSQL, each with a journal there.
func TestServeWithAnExternalIssuerKeepsUsersOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	is := newJWTIssuer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newCLI(t)
	c.vars["EPICME_DATABASE_URL"] = url
	s := startServe(t, c, "--addr", addr, "--public-url", "http://"+addr, "--issuer", is.URL)
	resource := s.url + "/mcp"

	ctx := context.Background()
	for _, subject := range []string{"ada", "bob"} {
		cl, err := client.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{
			"Authorization": "Bearer " + is.token(resource, subject, "entries:read entries:write"),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
			t.Fatal(err)
		}
		if res, err := callTool(cl, "create_entry", map[string]any{"title": "by " + subject, "content": "kept in PostgreSQL"}); err != nil || res.IsError {
			t.Fatalf("%s: create_entry: %v %+v", subject, err, res)
		}
		cl.Close()
	}
	s.stop()

	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, subject := range []string{"ada", "bob"} {
		u, err := db.UserByIdentity(ctx, is.URL, subject)
		if err != nil {
			t.Fatalf("user (%s, %s) in PostgreSQL: %v", is.URL, subject, err)
		}
		e, err := db.GetEntry(ctx, u.ID, 1)
		if err != nil || e.Title != "by "+subject {
			t.Fatalf("%s's entry 1 = %+v, %v", subject, e, err)
		}
	}
}

// TestInstancesShareTheJournalOnPostgres runs three serve instances on one
// PostgreSQL database and one data directory (its secret is shared), with
// an external issuer, and moves one user's calls from instance to
// instance: each sees what the others wrote.
func TestInstancesShareTheJournalOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	is := newJWTIssuer(t)
	c := newCLI(t)
	c.vars["EPICME_DATABASE_URL"] = url
	var instances []*serving
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		instances = append(instances, startServe(t, c, "--addr", addr, "--public-url", "http://"+addr, "--issuer", is.URL))
	}
	ctx := context.Background()
	clients := make([]*client.Client, len(instances))
	for i, s := range instances {
		resource := s.url + "/mcp"
		cl, err := client.NewStreamableHttpClient(resource, transport.WithHTTPHeaders(map[string]string{
			"Authorization": "Bearer " + is.token(resource, "ada", "entries:read entries:write tags:read tags:write"),
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = "2026-07-28"
		init.Params.ClientInfo = mcp.Implementation{Name: "rotating-client", Version: "1"}
		if _, err := cl.Initialize(ctx, init); err != nil {
			t.Fatal(err)
		}
		clients[i] = cl
	}
	call := func(i int, tool string, args map[string]any) string {
		t.Helper()
		res, err := callTool(clients[i%len(clients)], tool, args)
		if err != nil || res.IsError {
			t.Fatalf("instance %d %s: %v %+v", i%len(clients), tool, err, res)
		}
		b, _ := json.Marshal(res)
		return string(b)
	}
	for i := range 6 {
		call(i, "create_entry", map[string]any{"title": fmt.Sprint("rotating ", i), "content": "heron by the river"})
	}
	for i := range 6 {
		// Entry i+1 was written by instance i%3; read it on the next one.
		if out := call(i+1, "get_entry", map[string]any{"id": i + 1}); !strings.Contains(out, fmt.Sprint("rotating ", i)) {
			t.Fatalf("entry %d read on instance %d: %s", i+1, (i+1)%3, out)
		}
	}
	for i := range 3 {
		out := call(i, "search_entries", map[string]any{"query": "heron"})
		for n := range 6 {
			if !strings.Contains(out, fmt.Sprint("rotating ", n)) {
				t.Fatalf("search on instance %d misses entry %d: %s", i, n+1, out)
			}
		}
	}
	for _, s := range instances {
		if code := s.stop(); code != 0 {
			t.Errorf("serve exit %d\n%s", code, s.stderr)
		}
	}
}
