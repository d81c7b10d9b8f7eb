package testenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a testing.TB that records whether it was skipped or failed.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper()     {}
func (r *recorder) Skip(...any) { r.skipped = true }
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed, r.msg = true, fmt.Sprintf(f, a...)
}

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

// Eventually returns once the check holds, and fails with the check's last
// word once the bound has passed; the bubble's clock makes both instant.
func TestEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{TB: t}
		start, calls := time.Now(), 0
		Eventually(r, time.Second, func() error {
			if calls++; time.Since(start) < 300*time.Millisecond {
				return errors.New("not yet")
			}
			return nil
		})
		if r.failed || calls < 2 || time.Since(start) >= time.Second {
			t.Fatalf("a check that holds after 300ms: failed %v, %d calls, returned after %v", r.failed, calls, time.Since(start))
		}

		r, start = &recorder{TB: t}, time.Now()
		n := 0
		Eventually(r, time.Second, func() error { n++; return fmt.Errorf("still %d", n) })
		if !r.failed || !strings.HasSuffix(r.msg, fmt.Sprintf("still %d", n)) || time.Since(start) < time.Second {
			t.Fatalf("a check that never holds: failed %v with %q after %v", r.failed, r.msg, time.Since(start))
		}
	})
}
