package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/sqlite"
)

// databaseFlag is --database-url, for every command that reads or writes
// the database: serve, stdio, user, migrate, client, grant and authserver.
// With it the journal, the users and the embedded authorization server's
// clients, grants, keys and limits all live in PostgreSQL.
type databaseFlag struct {
	url string
}

func (c *databaseFlag) register(fs *flagSet) {
	fs.StringVar(&c.url, "database-url", "", "`URL` of a PostgreSQL database for the journal, users and OAuth data, e.g.\npostgres://epicme@db.internal:5432/epicme?sslmode=verify-full (pool settings such as\npool_max_conns=8 may be added); default: SQLite in the data directory")
	fs.bindEnv("database-url", "EPICME_DATABASE_URL")
}

// storeFlags are the flags of the commands that open the database: where
// it is (--data-dir, --database-url) and --log-level.
type storeFlags struct {
	dataFlags
	databaseFlag
}

func (c *storeFlags) register(fs *flagSet) {
	c.dataFlags.register(fs)
	c.databaseFlag.register(fs)
}

// openAdmin opens the database where accounts and the authorization
// server's grants live: PostgreSQL with --database-url, else SQLite in the
// data directory.
func (c *storeFlags) openAdmin(ctx context.Context, e env) (authStore, error) {
	dir, err := resolveDataDir(c.dataDir, e)
	if err != nil {
		return nil, err
	}
	return openAuthStore(ctx, c.url, dir)
}

// journalStore is what commands use of the journal database.
type journalStore interface {
	epicme.Store
	SchemaVersion(ctx context.Context) (int, error)
}

// openJournal opens (and migrates) the journal: PostgreSQL when
// databaseURL is set, else SQLite in the data directory. where names the
// database for messages (a file, or host:port/database, never a password).
func openJournal(ctx context.Context, databaseURL, dir string) (store journalStore, where string, err error) {
	if databaseURL == "" {
		db, err := openStore(ctx, dir)
		if err != nil {
			return nil, "", err
		}
		return db, db.Path(), nil
	}
	// Only the scheme is named back: the URL may hold a password.
	if u, err := url.Parse(databaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, "", usagef("--database-url must be a postgres:// URL (PostgreSQL); leave it out to keep the journal in SQLite under --data-dir")
	}
	db, err := postgres.Open(ctx, databaseURL)
	if err != nil {
		return nil, "", err
	}
	return db, "postgres " + db.Target(), nil
}

// authStore is the database of the embedded authorization server, which is
// the journal's own: SQLite or PostgreSQL.
type authStore interface {
	journalStore
	authserver.Store
	SetUserDisabled(ctx context.Context, userID string, disabled bool) error
}

var (
	_ authStore = (*sqlite.DB)(nil)
	_ authStore = (*postgres.DB)(nil)
)

// embeddedAuthStore returns the journal's database as the authorization
// server's store.
func embeddedAuthStore(store epicme.Store) (authStore, error) {
	if db, ok := store.(authStore); ok {
		return db, nil
	}
	return nil, fmt.Errorf("the database %T cannot keep the authorization server's data", store)
}

// openAuthStore opens the database of a command that works on the
// authorization server's data (client, grant, user admin, authserver).
func openAuthStore(ctx context.Context, databaseURL, dir string) (authStore, error) {
	store, _, err := openJournal(ctx, databaseURL, dir)
	if err != nil {
		return nil, err
	}
	return embeddedAuthStore(store)
}

// listenRevocations keeps the revocation list of as current with the
// revocations other instances sharing a PostgreSQL database make (LISTEN/
// NOTIFY), until ctx is done. On SQLite it does nothing: the list syncs
// with the file at most a second apart.
func listenRevocations(ctx context.Context, store authStore, as *authserver.Server, logger *slog.Logger) {
	pg, ok := store.(*postgres.DB)
	if !ok {
		return
	}
	feed := as.RevocationFeed()
	go func() {
		err := pg.ListenRevocations(ctx, loggedFeed{feed, logger})
		if ctx.Err() == nil {
			logger.Error("listening for revocations stopped", "err", err)
		}
	}()
}

// mcpPeerChannel is the PostgreSQL notification channel on which the
// instances sharing a database pass MCP session work to each other (see
// mcpserver.Peers).
const mcpPeerChannel = "epicme_mcp_peers"

// pgPeers is mcpserver.Peers over PostgreSQL NOTIFY.
type pgPeers struct{ db *postgres.DB }

func (p pgPeers) Publish(ctx context.Context, msg string) error {
	return p.db.Notify(ctx, mcpPeerChannel, msg)
}

// mcpPeers returns the Peers of the MCP server on a PostgreSQL store, and
// the function that starts listening for them once the server exists. On
// SQLite there are none: one instance serves a file.
func mcpPeers(store journalStore, logger *slog.Logger) (mcpserver.Peers, func(context.Context, *mcpserver.Server)) {
	pg, ok := store.(*postgres.DB)
	if !ok {
		return nil, func(context.Context, *mcpserver.Server) {}
	}
	return pgPeers{pg}, func(ctx context.Context, m *mcpserver.Server) {
		go func() {
			err := pg.Listen(ctx, mcpPeerChannel, postgres.Listener{
				Notify: m.ReceivePeerMessage,
				Ready:  m.PeersReady,
				Lost: func(err error) {
					logger.Warn("lost the MCP peer channel: sessions are read from the database on every request until it is back", "err", err)
					m.PeersLost()
				},
			})
			if ctx.Err() == nil {
				logger.Error("listening for MCP peers stopped", "err", err)
			}
		}()
	}
}

// loggedFeed logs the gaps in the revocation feed.
type loggedFeed struct {
	*authserver.RevocationFeed
	log *slog.Logger
}

func (f loggedFeed) Lost(err error) {
	f.log.Warn("lost the revocation feed: tokens are checked against the database one by one until it is back", "err", err)
	f.RevocationFeed.Lost(err)
}

func (f loggedFeed) Ready(ctx context.Context) error {
	err := f.RevocationFeed.Ready(ctx)
	if err == nil {
		f.log.Info("revocation feed ready")
	}
	return err
}
