package testenv

import (
	"testing"
)

// recorder is a testing.TB that records whether it was skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestMissingSkipsUnlessRequired(t *testing.T) {
	for _, tc := range []struct {
		require string
		fail    bool
	}{
		{"", false},
		{"chromium,node", false},
		{"chromium, postgres", true},
		{"postgres", true},
		{"all", true},
	} {
		t.Setenv(EnvRequire, tc.require)
		r := &recorder{TB: t}
		Missing(r, Postgres, "set EPICME_TEST_POSTGRES_URL")
		if r.failed != tc.fail || r.skipped == tc.fail {
			t.Errorf("%s=%q: failed %v, skipped %v; want failed %v", EnvRequire, tc.require, r.failed, r.skipped, tc.fail)
		}
	}
}
