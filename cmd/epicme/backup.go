package main

import (
	"context"
	"fmt"
)

const backupAbout = `Copy the SQLite database of the data directory to --out while EpicMe keeps
serving: the copy is one consistent snapshot (SQLite's VACUUM INTO), holds
the journal, accounts and the authorization server's data, and is readable
by its owner only. Restore by stopping EpicMe and putting the copy in place
of epicme.db.

The copy does not hold keys.kek or secret.key: back those up once, apart
from the database (the signing keys in the database are sealed with
keys.kek). For PostgreSQL use pg_dump instead.`

func runBackup(ctx context.Context, args []string, e env) error {
	var (
		data dataFlags
		out  string
	)
	fs := newFlagSet("backup", backupAbout, e)
	data.register(fs)
	fs.StringVar(&out, "out", "", "`file` to write the copy to; it must not exist (required)")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if out == "" {
		return usagef("give --out FILE: where to write the copy")
	}
	if e.getenv("EPICME_DATABASE_URL") != "" {
		return usagef("EPICME_DATABASE_URL is set: this deployment keeps its data in PostgreSQL; back it up with pg_dump")
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	// Opening a missing database would create an empty one and copy that.
	if freshDatabase(dir) {
		return fmt.Errorf("no database in %s (%s): give the --data-dir EpicMe serves from", dir, databaseFile)
	}
	store, err := openStore(ctx, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Copied %s to %s.\n", store.Path(), out)
	return nil
}
