package main

import (
	"regexp"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// A short soak: tokens expire and are refreshed, clients register, grants
// are revoked and their tokens refused; no unexpected error, the heap does
// not grow, and when the command returns nothing it started is still
// running (goleak).
func TestBenchSoak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := newCLI(t)
	code, out, errOut := c.run("", "bench", "soak", "--duration", "4s", "--access-token-ttl", "1s", "--revoke-every", "25", "--clients", "3")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	m := regexp.MustCompile(`(\d+) calls, (\d+) registrations, (\d+) sign-ins, (\d+) refreshes, (\d+) revocations, (\d+) expected refusals, (\d+) unexpected errors`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no report in %q", out)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	if n(1) == 0 || n(2) < 2 || n(4) == 0 || n(5) == 0 || n(7) != 0 {
		t.Fatalf("report %q: want calls, several registrations, refreshes, revocations and no unexpected error", m[0])
	}
}
