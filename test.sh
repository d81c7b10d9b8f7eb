#!/usr/bin/env bash
# Runs EpicMe's tests: every Go package of the product and of the benchmark
# module (bench/, its own go.mod), then a short load run of the benchmark
# against a tiny fixture, which must answer every call.
#
# Tests that need a service skip with a message saying how to enable it (the
# run ends with a list of them), or fail when EPICME_TEST_REQUIRE lists it
# (.ci/run sets postgres,chromium,node):
#   PostgreSQL   set EPICME_TEST_POSTGRES_URL (.ci/run starts a local server)
#   Node.js      the interop and interop-pages tests; this script runs
#                "npm ci --prefix interop" and "npm ci --prefix interop-pages"
#                when npm is installed and their node_modules are missing
#   Chromium     the browser tests (/usr/bin/chromium or $EPICME_CHROMIUM)
#   Node.js      the TypeScript peer of "epicme-bench peers" runs only after
#                "npm ci --prefix bench/peers/ts" (.ci/run does it)
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

for dir in interop interop-pages; do
	if [ -f "$dir/package-lock.json" ] && [ ! -e "$dir/node_modules" ] && command -v npm >/dev/null 2>&1; then
		step "npm ci --prefix $dir (packages for the $dir tests)"
		if ! npm ci --prefix "$dir" --no-audit --no-fund; then
			echo "npm ci failed (offline?); the $dir tests will skip (or fail under EPICME_TEST_REQUIRE)."
		fi
	fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step "go test ./..."
# go test's own lines as usual, then the skipped tests and how to run them;
# the exit status is go test's (pipefail).
go build -o "$tmp/skipsummary" ./internal/skipsummary
go test -json -timeout "${EPICME_TEST_TIMEOUT:-480s}" ./... | "$tmp/skipsummary"

step "go test ./... in bench/ (the benchmark module)"
go -C bench test -timeout "${EPICME_TEST_TIMEOUT:-480s}" ./...

step "epicme-bench: smoke run on a tiny fixture"
go -C bench build -o "$tmp/epicme-bench" ./cmd/epicme-bench
"$tmp/epicme-bench" fixture --data-dir "$tmp/data" --users 20 --entries 30 --log-level warn
# Exits 1 if any call fails.
"$tmp/epicme-bench" run --data-dir "$tmp/data" --entries 30 --connections 2 --warmup 200ms --duration 1s

step "epicme-bench peers: smoke run (every contestant must answer; ts-sdk only with bench/peers/ts/node_modules)"
# The results go to a directory removed on exit: do not print its path.
(cd bench && "$tmp/epicme-bench" peers --data-dir "$tmp/data" --users 20 --entries 30 --rounds 1 --connections 2 \
	--warmup 100ms --duration 500ms --miss-duration 300ms --out "$tmp/peers" --log-level warn) |
	grep -v '^wrote .*results\.json'

step "all tests passed"
