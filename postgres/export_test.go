package postgres

// MigrationNames returns the file names of the embedded migrations.
func MigrationNames() []string {
	ms, _ := loadMigrations(migrationFS)
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}
