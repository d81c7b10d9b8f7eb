package main

import (
	"context"
	"fmt"
)

const migrateAbout = `Open the database, apply any migration it lacks, and print its schema version.
Every command applies migrations when it opens the database; this one lets
you do it ahead of a deployment and see the result.`

func runMigrate(ctx context.Context, args []string, e env) error {
	var (
		data storeFlags
	)
	fs := newFlagSet("migrate", migrateAbout, e)
	data.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	store, where, err := openJournal(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "schema version %d (%s)\n", v, where)
	return nil
}
