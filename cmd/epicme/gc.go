package main

import (
	"runtime/debug"
)

// Garbage collector settings for the epicme process, used unless the
// operator sets Go's own GOGC or GOMEMLIMIT variables
// (https://go.dev/doc/gc-guide).
//
// A request allocates a few kilobytes and keeps none of them, while the
// live heap of a serving process is small (about 10 MB), so with Go's
// default GOGC=100 the collector runs many times a second under load: about
// 15% of get_entry's throughput on the benchmark fixture. GOGC=400 lets the
// heap grow to five times what is live before collecting; the soft memory
// limit makes the collector work harder instead should the live heap ever
// grow large, so the process's own memory stays bounded.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 256 << 20 // bytes
)

// tuneGC applies the defaults above where the environment leaves them open.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
