package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/epicme/epicme/sqlite"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestNoAcknowledgedWriteIsLostOnSIGKILL runs the real binary, sends a burst
// of create_entry calls from several clients, kills the process with SIGKILL
// in the middle of it, and then opens the database: every entry whose call
// was answered with success must be there. On SQLite a commit is in the WAL
// file before the answer (a killed process loses nothing; synchronous=NORMAL
// only risks the last commits on a power cut); on PostgreSQL it is flushed to
// the server's WAL before COMMIT returns.
func TestNoAcknowledgedWriteIsLostOnSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	bin := filepath.Join(t.TempDir(), "epicme")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("SQLite", func(t *testing.T) {
		dir := t.TempDir()
		acked := killDuringWrites(t, bin, dir, "")
		db, err := sqlite.Open(context.Background(), filepath.Join(dir, "data", databaseFile))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		checkAcked(t, db, acked)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		acked := killDuringWrites(t, bin, t.TempDir(), url)
		db, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		checkAcked(t, db, acked)
	})
}

// killDuringWrites serves with bin in development mode, writes from four
// clients, SIGKILLs the server after 40 answered writes, and returns the
// titles of the entries whose creation was acknowledged.
func killDuringWrites(t *testing.T, bin, dir, databaseURL string) []string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--dev-insecure-no-auth", "--addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = []string{"HOME=" + dir, "EPICME_DATA_DIR=" + filepath.Join(dir, "data")}
	if databaseURL != "" {
		cmd.Env = append(cmd.Env, "EPICME_DATABASE_URL="+databaseURL)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving at (http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-found:
	case <-exited:
		t.Fatal("serve exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	const workers, killAfter = 4, 40
	var (
		mu     sync.Mutex
		acked  []string
		count  atomic.Int64
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	ctx := context.Background()
	// Every client has its session before any writes: on a busy machine the
	// first could otherwise reach the kill while the last is initializing.
	clients := make([]*client.Client, workers)
	for w := range clients {
		cl, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.Start(ctx); err != nil {
			t.Fatal(err)
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = "2025-11-25"
		init.Params.ClientInfo = mcp.Implementation{Name: "kill-test", Version: "1"}
		if _, err := cl.Initialize(ctx, init); err != nil {
			t.Fatal(err)
		}
		clients[w] = cl
	}
	for w, cl := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				title := fmt.Sprintf("burst %d-%d", w, i)
				req := mcp.CallToolRequest{}
				req.Params.Name = "create_entry"
				req.Params.Arguments = map[string]any{"title": title, "content": "written during the kill test"}
				r, err := cl.CallTool(ctx, req)
				if err != nil || r.IsError {
					if killed.Load() {
						return // the server is gone: expected
					}
					t.Errorf("create_entry before the kill: %v %+v", err, r)
					return
				}
				mu.Lock()
				acked = append(acked, title)
				mu.Unlock()
				if count.Add(1) == killAfter {
					killed.Store(true)
					cmd.Process.Kill() // SIGKILL: no shutdown, no flush
				}
			}
		})
	}
	wg.Wait()
	<-exited
	if !killed.Load() {
		t.Fatal("the burst ended before the kill")
	}
	return acked
}

// checkAcked fails unless every acknowledged title is an entry of the
// development user.
func checkAcked(t *testing.T, s epicme.Store, acked []string) {
	t.Helper()
	ctx := context.Background()
	u, err := s.LocalUserByEmail(ctx, defaultDevUser)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	f := epicme.EntryFilter{Limit: epicme.MaxPageSize}
	for {
		page, err := s.ListEntries(ctx, u.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			have[e.Title] = true
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	for _, title := range acked {
		if !have[title] {
			t.Errorf("acknowledged entry %q is missing after SIGKILL", title)
		}
	}
	t.Logf("%d writes acknowledged before the kill, %d entries stored", len(acked), len(have))
}
