package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/internal/testenv"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/postgres/pgtest"
)

// gatedFeed passes events to a RevocationFeed and holds the listener in
// Lost until the test lets it reconnect, so that a test can act inside the
// gap.
type gatedFeed struct {
	*authserver.RevocationFeed
	lost   chan struct{}
	resume chan struct{}
	ready  chan struct{}
}

func (f *gatedFeed) Lost(err error) {
	f.RevocationFeed.Lost(err)
	f.lost <- struct{}{}
	<-f.resume
}

func (f *gatedFeed) Ready(ctx context.Context) error {
	err := f.RevocationFeed.Ready(ctx)
	if err == nil {
		f.ready <- struct{}{}
	}
	return err
}

func wait(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

// TestRevocationsReachAnotherInstance runs two authorization servers on
// separate pools over one database. A revocation made through one reaches
// the other's list by notification; one made while the other's listener is
// down is still refused there (each token is then checked against the
// database) and stays refused after the list is reloaded; and while the
// listener is down and the database cannot be read, tokens are refused as
// unavailable, never accepted from a list that may have missed something.
func TestRevocationsReachAnotherInstance(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.NewDatabase(t)
	dbA, dbB := mustOpen(t, url), mustOpen(t, url)
	kek := make([]byte, authserver.KEKSize)
	rand.Read(kek)
	newServer := func(db *postgres.DB) *authserver.Server {
		s, err := authserver.New(ctx, authserver.Config{Issuer: "https://journal.example.com",
			Resource: "https://journal.example.com/mcp", Store: db, Users: db, KEK: kek, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newServer(dbA), newServer(dbB)
	feed := &gatedFeed{RevocationFeed: b.RevocationFeed(), lost: make(chan struct{}), resume: make(chan struct{}), ready: make(chan struct{})}
	go dbB.ListenRevocations(ctx, feed)
	wait(t, feed.ready, "Ready")

	user, err := dbA.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	issue := func() (string, *authserver.AccessTokenClaims) {
		tok, err := a.IssueAccessToken(ctx, user, "test-client", []string{"entries:read"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.VerifyAccessToken(ctx, tok)
		if err != nil {
			t.Fatalf("the other instance refuses a fresh token: %v", err)
		}
		return tok, c
	}
	revoke := func(c *authserver.AccessTokenClaims) {
		if err := dbA.RevokeAccessToken(ctx, c.JTI, time.Unix(c.Expiry, 0), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(tok string) bool {
		_, err := b.VerifyAccessToken(ctx, tok)
		return errors.Is(err, auth.ErrInvalidToken)
	}

	// By notification.
	tok1, c1 := issue()
	revoke(c1)
	start := time.Now()
	testenv.Eventually(t, 5*time.Second, func() error {
		if !refused(tok1) {
			return errors.New("the revocation has not reached the other instance")
		}
		return nil
	})
	t.Logf("revocation reached the other instance after %v", time.Since(start))

	// Inside a gap of the listener.
	tok2, c2 := issue()
	endListener := func() {
		t.Helper()
		var n int
		if err := dbA.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'epicme-listen'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("ended %d listening sessions (%v), want 1", n, err)
		}
		wait(t, feed.lost, "Lost")
	}
	endListener()
	revoke(c2)
	if !refused(tok2) {
		t.Fatal("a token revoked while the listener was down is accepted")
	}
	feed.resume <- struct{}{}
	wait(t, feed.ready, "Ready after reconnecting")
	if !refused(tok2) {
		t.Fatal("a token revoked while the listener was down is accepted after the reload")
	}

	// Fail closed: listener down and database unreadable.
	tok3, _ := issue()
	endListener()
	dbB.Close()
	if _, err := b.VerifyAccessToken(ctx, tok3); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("with the listener down and no database: %v, want unavailable", err)
	}
	cancel()
	feed.resume <- struct{}{}
}

// BenchmarkRevocationReachesAnotherInstance measures, per operation, a
// revocation committed through one authorization server until a second one
// (its own pool and listener, on the same database) refuses the token: the
// time a revoked token can still be used elsewhere, the write included.
func BenchmarkRevocationReachesAnotherInstance(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.NewDatabase(b)
	dbA, dbB := mustOpen(b, url), mustOpen(b, url)
	kek := make([]byte, authserver.KEKSize)
	rand.Read(kek)
	newServer := func(db *postgres.DB) *authserver.Server {
		s, err := authserver.New(ctx, authserver.Config{Issuer: "https://journal.example.com",
			Resource: "https://journal.example.com/mcp", Store: db, Users: db, KEK: kek, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	a, srvB := newServer(dbA), newServer(dbB)
	feed := &gatedFeed{RevocationFeed: srvB.RevocationFeed(), lost: make(chan struct{}, 1), resume: make(chan struct{}), ready: make(chan struct{}, 1)}
	go dbB.ListenRevocations(ctx, feed)
	select {
	case <-feed.ready:
	case <-time.After(10 * time.Second):
		b.Fatal("no Ready")
	}
	user, err := dbA.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: "a@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tok, err := a.IssueAccessToken(ctx, user, "bench", []string{"entries:read"})
		if err != nil {
			b.Fatal(err)
		}
		c, err := srvB.VerifyAccessToken(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := dbA.RevokeAccessToken(ctx, c.JTI, time.Unix(c.Expiry, 0), time.Now()); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := srvB.VerifyAccessToken(ctx, tok); errors.Is(err, auth.ErrInvalidToken) {
				break
			}
		}
	}
}
