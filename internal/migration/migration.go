// Package migration reads the numbered SQL files that both stores embed as
// their schema. A file named NNNN_description.sql under migrations/ is
// migration NNNN; migrations apply in numeric order, each once, and a
// released file is never edited. Reading them and deciding which to apply is
// the same for both stores (Run); the transaction, its lock and the SQL
// dialect are each store's own (Tx).
package migration

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string // the file's base name
	SQL     string
}

// Load reads and orders the migrations under migrations/ in fsys. A name
// that is not NNNN_description.sql, or two files with one version, is an
// error.
func Load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_description.sql", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Latest returns the highest version among the migrations in fsys, or 0 when
// they cannot be read.
func Latest(fsys fs.FS) int {
	ms, err := Load(fsys)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Tx is one store's migration transaction, already begun and holding
// whatever lock keeps two processes from migrating at once.
type Tx interface {
	// Applied creates the schema_migrations table when it is missing and
	// returns the versions it records.
	Applied(ctx context.Context) ([]int, error)
	// Apply runs m's SQL and records m in schema_migrations.
	Apply(ctx context.Context, m Migration) error
}

// Run applies, in tx and in order, the migrations in fsys that the database
// lacks. Its errors start with store ("sqlite") and name database; an error
// from tx.Applied is returned as the store wrote it. A database whose schema
// is newer than any migration in fsys is refused: an older program would
// misread it. On error the caller rolls tx back, so the schema stays as it
// was.
func Run(ctx context.Context, fsys fs.FS, tx Tx, store, database string) error {
	ms, err := Load(fsys)
	if err != nil {
		return fmt.Errorf("%s: %w", store, err)
	}
	versions, err := tx.Applied(ctx)
	if err != nil {
		return err
	}
	applied := map[int]bool{}
	latest := 0
	for _, v := range versions {
		applied[v] = true
		latest = max(latest, v)
	}
	if n := len(ms); n > 0 && latest > ms[n-1].Version {
		return fmt.Errorf("%s: database %s has schema version %d, newer than this program knows (%d): run a newer epicme", store, database, latest, ms[n-1].Version)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := tx.Apply(ctx, m); err != nil {
			return fmt.Errorf("%s: migration %s failed, database %s left unchanged: %w", store, m.Name, database, err)
		}
	}
	return nil
}
