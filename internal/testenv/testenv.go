// Package testenv decides what a test does when a service it needs is not
// there. A plain "go test ./..." skips such tests with a message saying how
// to enable them; CI, which is meant to provide the services, lists them in
// EPICME_TEST_REQUIRE (e.g. "postgres,chromium,node"), and then the same
// tests fail instead, so that a missing service cannot pass as green.
package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// EnvRequire names the environment variable listing the required services.
const EnvRequire = "EPICME_TEST_REQUIRE"

// The services a test may need.
const (
	Postgres = "postgres" // a PostgreSQL server at EPICME_TEST_POSTGRES_URL
	Chromium = "chromium" // a headless Chromium for the browser tests
	Node     = "node"     // Node.js and the npm packages of interop/ and interop-pages/
)

// Required reports whether EPICME_TEST_REQUIRE lists service (or "all").
func Required(service string) bool {
	list := strings.Split(os.Getenv(EnvRequire), ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	return slices.Contains(list, service) || slices.Contains(list, "all")
}

// Missing is called when service is not there: it fails tb if the service
// is required, and skips it otherwise; msg says how to provide it.
func Missing(tb testing.TB, service, msg string) {
	tb.Helper()
	if Required(service) {
		tb.Fatalf("%s is required (%s=%s) but missing: %s", service, EnvRequire, os.Getenv(EnvRequire), msg)
		return
	}
	tb.Skip(msg)
}
