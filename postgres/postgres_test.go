package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
	"github.com/epicme/epicme/storetest"
)

// MustOpenDB opens a fresh database and closes it when the test ends.
func MustOpenDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	return mustOpen(tb, pgtest.NewDatabase(tb))
}

func mustOpen(tb testing.TB, url string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestStoreContract runs the storage contract, each subtest on an empty
// schema of one database made for the suite.
func TestStoreContract(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	storetest.Run(t, func(t *testing.T) epicme.Store { return mustOpen(t, pgtest.NewSchema(t, dbURL)) })
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := mustOpen(t, url)
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "kept", Content: "still here"}); err != nil {
		t.Fatal(err)
	}
	v1, err := db.SchemaVersion(ctx)
	if err != nil || v1 != postgres.LatestSchemaVersion() || v1 < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v1, err, postgres.LatestSchemaVersion())
	}
	db.Close()
	for range 2 {
		db := mustOpen(t, url)
		if v, _ := db.SchemaVersion(ctx); v != v1 {
			t.Fatalf("SchemaVersion after reopen = %d, want %d", v, v1)
		}
		e, err := db.GetEntry(ctx, u.ID, 1)
		if err != nil || e.Title != "kept" {
			t.Fatalf("GetEntry after reopen = %+v, %v", e, err)
		}
		hits, err := db.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "still"})
		if err != nil || len(hits.Results) != 1 {
			t.Fatalf("search after reopen = %+v, %v", hits, err)
		}
		db.Close()
	}
}

// TestInstancesStartingTogetherMigrateOnce opens one new database from many
// pools at once, as instances starting together do: the advisory lock lets
// one apply the migrations and the others find them applied.
func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	const n = 8
	var wg sync.WaitGroup
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = postgres.OpenWithOptions(ctx, url, postgres.Options{MaxConns: 2}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	var applied, distinct int
	if err := dbs[0].Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != distinct || distinct != migrationCount(t) {
		t.Fatalf("schema_migrations has %d rows, %d versions; want each of %d migrations once", applied, distinct, migrationCount(t))
	}
	// Every instance works on the shared schema.
	for i, db := range dbs {
		if _, err := db.EnsureUser(ctx, "https://idp.example", "shared", ""); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
}

func migrationCount(t *testing.T) int {
	t.Helper()
	n := postgres.LatestSchemaVersion()
	if n < 1 {
		t.Fatal("no migrations embedded")
	}
	return len(postgres.MigrationNames())
}

// TestConcurrentWritesKeepTheContract runs the writes whose rules depend on
// serialisation from several instances (pools) at once: per-user ids stay
// dense and unique, linking twice gives one link, a user is created once.
func TestConcurrentWritesKeepTheContract(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	instances := []*postgres.DB{mustOpen(t, url), mustOpen(t, url), mustOpen(t, url)}
	a, err := instances[0].CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := instances[1].CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := instances[2].CreateTag(ctx, a.ID, epicme.NewTag{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}

	const perWorker, workers = 15, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*3)
	for w := range workers {
		db := instances[w%len(instances)]
		user := []*epicme.User{a, b}[w%2]
		wg.Go(func() {
			for i := range perWorker {
				e, err := db.CreateEntry(ctx, user.ID, epicme.NewEntry{Title: fmt.Sprintf("w%d e%d", w, i), Content: "concurrent words"})
				if err != nil {
					errs <- err
					return
				}
				if user == a {
					// Every worker of A links its entry and entry 1 to the
					// same tag: entry 1's link must be made once.
					for _, id := range []int64{e.ID, 1} {
						if _, err := db.AddTagToEntry(ctx, a.ID, id, tag.ID); err != nil {
							errs <- err
							return
						}
					}
				}
				if _, err := db.EnsureUser(ctx, "https://idp.example", fmt.Sprint("racer-", i), ""); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range []*epicme.User{a, b} {
		page, err := instances[0].ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: epicme.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		want := workers / 2 * perWorker
		if len(page.Entries) != want {
			t.Fatalf("user has %d entries, want %d", len(page.Entries), want)
		}
		seen := map[int64]bool{}
		for _, s := range page.Entries {
			if s.ID < 1 || s.ID > int64(want) || seen[s.ID] {
				t.Fatalf("entry id %d repeats or leaves the range 1..%d", s.ID, want)
			}
			seen[s.ID] = true
		}
	}
	// One link per entry of A: ids 1..n, entry 1's link made once.
	for id := int64(1); id <= workers/2*perWorker; id++ {
		et, err := instances[1].AddTagToEntry(ctx, a.ID, id, tag.ID)
		if err != nil {
			t.Fatal(err)
		}
		if et.ID < 1 || et.ID > workers/2*perWorker {
			t.Fatalf("link id %d of entry %d leaves the range: a repeated link took an id", et.ID, id)
		}
	}
	users, err := instances[2].ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2+perWorker {
		t.Fatalf("%d users, want 2 + %d created once each by EnsureUser", len(users), perWorker)
	}
	hits, err := instances[0].SearchEntries(ctx, b.ID, epicme.SearchQuery{Text: "concurrent", Limit: epicme.MaxPageSize})
	if err != nil || len(hits.Results) != workers/2*perWorker {
		t.Fatalf("search = %d hits, %v", len(hits.Results), err)
	}
}

func TestOpenSaysWhatIsWrong(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	cases := []struct {
		name, url string
		want      []string
	}{
		{"NotAURL", "postgres://user:s3cret@[::1", []string{"not valid"}},
		{"NoServer", "postgres://user:s3cret@127.0.0.1:1/x?connect_timeout=2", []string{"cannot reach 127.0.0.1:1/x", "running"}},
		{"NoDatabase", strings.Replace(url, "/epicme_test_", "/missing_", 1), []string{"does not exist", "create it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, err := postgres.Open(ctx, c.url)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "s3cret") {
				t.Fatalf("error %q shows the password", msg)
			}
		})
	}
}

func TestPoolSettingsComeFromTheURLAndOptions(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	show := func(db *postgres.DB, name string) string {
		t.Helper()
		var v string
		if err := db.Pool().QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	db := mustOpen(t, url)
	if got := db.Pool().Config().MaxConns; got < 4 {
		t.Errorf("default MaxConns = %d, want at least 4", got)
	}
	if got := show(db, "statement_timeout"); got != "30s" {
		t.Errorf("default statement_timeout = %s, want 30s", got)
	}
	if got := show(db, "TimeZone"); got != "UTC" {
		t.Errorf("TimeZone = %s, want UTC", got)
	}
	db.Close()

	db = mustOpen(t, url+"&pool_max_conns=3&statement_timeout=1500")
	if got := db.Pool().Config().MaxConns; got != 3 {
		t.Errorf("MaxConns from the URL = %d, want 3", got)
	}
	if got := show(db, "statement_timeout"); got != "1500ms" {
		t.Errorf("statement_timeout from the URL = %s, want 1500ms", got)
	}
	db.Close()

	db, err := postgres.OpenWithOptions(ctx, url+"&pool_max_conns=3", postgres.Options{
		MaxConns: 7, MinConns: 1, StatementTimeout: 2 * time.Second, MaxConnIdleTime: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := db.Pool().Config()
	if cfg.MaxConns != 7 || cfg.MinConns != 1 || cfg.MaxConnIdleTime != time.Minute {
		t.Errorf("pool config = max %d, min %d, idle %v; want the options", cfg.MaxConns, cfg.MinConns, cfg.MaxConnIdleTime)
	}
	if got := show(db, "statement_timeout"); got != "2s" {
		t.Errorf("statement_timeout from the options = %s, want 2s", got)
	}
	// The server enforces it: a longer statement is cancelled.
	if _, err := db.Pool().Exec(ctx, "SELECT pg_sleep(3)"); err == nil || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("a 3s statement under a 2s timeout: %v", err)
	}
}

// TestRecoversWhenTheServerDropsItsConnections ends every session of the
// store's database from the server side, as a restart or a failover does.
// Reads, idempotent writes, and transactions that had not reached COMMIT
// are run again on a fresh connection, so callers do not see the pool's dead
// connections at all.
func TestRecoversWhenTheServerDropsItsConnections(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := mustOpen(t, url)
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	admin := mustOpen(t, url)
	endSessions := func() {
		t.Helper()
		// Busy the pool first, so that several connections are open.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { db.Pool().Exec(ctx, "SELECT pg_sleep(0.05)") })
		}
		wg.Wait()
		var n int
		if err := admin.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'epicme'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			t.Fatalf("ended %d sessions, want several", n)
		}
	}
	steps := []struct {
		name string
		call func() error
	}{
		{"CreateEntry", func() error {
			_, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "kept", Content: "across reconnects"})
			return err
		}},
		{"GetEntry", func() error { _, err := db.GetEntry(ctx, u.ID, 1); return err }},
		{"ListEntries", func() error { _, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{}); return err }},
		{"SearchEntries", func() error {
			_, err := db.SearchEntries(ctx, u.ID, epicme.SearchQuery{Text: "reconnects"})
			return err
		}},
		{"UserByID", func() error { _, err := db.UserByID(ctx, u.ID); return err }},
		{"Ping", func() error { return db.Ping(ctx) }},
		{"EnsureUser", func() error {
			_, err := db.EnsureUser(ctx, "https://idp.example", "new-subject", "")
			return err
		}},
		{"SetPasswordHash", func() error { return db.SetPasswordHash(ctx, u.ID, "hash") }},
	}
	for _, step := range steps {
		endSessions()
		if err := step.call(); err != nil {
			t.Fatalf("%s after the server ended the pool's sessions: %v", step.name, err)
		}
	}
	page, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("entries = %+v, %v; want the one entry, written once", page, err)
	}
}
