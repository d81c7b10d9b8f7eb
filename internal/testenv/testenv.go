// Package testenv holds what tests share about time and the world outside
// the process: what a test does when a service it needs is not there, how
// it waits for another process or a real socket to catch up (Eventually),
// and the settable clock it gives the code under test instead (Clock).
//
// When a service a test needs is not there, a plain "go test ./..." skips
// the test with a message saying how to enable it; CI, which is meant to
// provide the services, lists them in EPICME_TEST_REQUIRE (e.g.
// "postgres,chromium,node"), and then the same tests fail instead, so that
// a missing service cannot pass as green.
package testenv

import (
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// Eventually calls check every 10 ms until it returns nil, and fails tb
// with check's last error once within has passed. It is for waiting on
// what a test cannot drive with a fake clock (another process, a database,
// a real socket); within is a bound on a hang, not a timing assertion, so
// it is generous. Time that only the code under test measures is faked
// instead (testing/synctest, or the injected clocks of the packages).
func Eventually(tb testing.TB, within time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still not so after %v: %v", within, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Clock is a settable clock for the code under test (its Now is what the
// packages take as an injected clock), moved only by Advance. It is safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads now until advanced.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
