package main

import (
	"context"
	"net/url"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/postgres"
	"github.com/epicme/epicme/sqlite"
)

// databaseFlag is --database-url, for the commands that can keep the journal
// and users on PostgreSQL: serve, stdio, user and migrate. The embedded
// authorization server (serve without --issuer, client, authserver) keeps
// its data in SQLite, so it does not take the flag.
type databaseFlag struct {
	url string
}

func (c *databaseFlag) register(fs *flagSet) {
	fs.StringVar(&c.url, "database-url", "", "`URL` of a PostgreSQL database for the journal and users, e.g.\npostgres://epicme@db.internal:5432/epicme?sslmode=verify-full (pool settings such as\npool_max_conns=8 may be added); default: SQLite in the data directory")
	fs.bindEnv("database-url", "EPICME_DATABASE_URL")
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

// embeddedAuthStore returns the SQLite database that the embedded
// authorization server keeps its clients, grants and keys in, which is the
// journal's own database; on PostgreSQL it refuses rather than run half of
// the server on a second database.
func embeddedAuthStore(store epicme.Store) (*sqlite.DB, error) {
	if db, ok := store.(*sqlite.DB); ok {
		return db, nil
	}
	return nil, usagef("PostgreSQL is supported for the journal only with an external authorization server (--issuer) for now: the embedded authorization server keeps its data in SQLite (leave out --database-url and EPICME_DATABASE_URL to use it)")
}
