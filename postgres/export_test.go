package postgres

import "github.com/epicme/epicme/internal/migration"

// MigrationNames returns the file names of the embedded migrations.
func MigrationNames() []string {
	ms, _ := migration.Load(migrationFS)
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}
