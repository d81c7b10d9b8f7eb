#!/usr/bin/env bash
# Runs EpicMe's tests: every Go package of the product and of the benchmark
# module (bench/, its own go.mod), then a short load run of the benchmark
# against a tiny fixture, which must answer every call.
#
# Tests that need a service skip with a message saying how to enable it,
# or fail when EPICME_TEST_REQUIRE lists it (.ci/run sets
# postgres,chromium,node):
#   PostgreSQL   set EPICME_TEST_POSTGRES_URL (.ci/run starts a local server)
#   Node.js      the interop tests; this script runs "npm ci --prefix interop"
#                when npm is installed and interop/node_modules is missing
#   Node.js      the TypeScript peer of "epicme-bench peers" runs only after
#                "npm ci --prefix bench/peers/ts" (.ci/run does it)
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

if [ -f interop/package-lock.json ] && [ ! -d interop/node_modules ] && command -v npm >/dev/null 2>&1; then
	step "npm ci --prefix interop (packages for the interop tests)"
	if ! npm ci --prefix interop --no-audit --no-fund; then
		echo "npm ci failed (offline?); the interop tests will skip (or fail under EPICME_TEST_REQUIRE)."
	fi
fi

step "go test ./..."
go test -timeout "${EPICME_TEST_TIMEOUT:-480s}" ./...

step "go test ./... in bench/ (the benchmark module)"
go -C bench test -timeout "${EPICME_TEST_TIMEOUT:-480s}" ./...

step "epicme-bench: smoke run on a tiny fixture"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go -C bench build -o "$tmp/epicme-bench" ./cmd/epicme-bench
"$tmp/epicme-bench" fixture --data-dir "$tmp/data" --users 20 --entries 30 --log-level warn
# Exits 1 if any call fails.
"$tmp/epicme-bench" run --data-dir "$tmp/data" --entries 30 --connections 2 --warmup 200ms --duration 1s

step "epicme-bench peers: smoke run (every contestant must answer; ts-sdk only with bench/peers/ts/node_modules)"
(cd bench && "$tmp/epicme-bench" peers --data-dir "$tmp/data" --users 20 --entries 30 --rounds 1 --connections 2 \
	--warmup 100ms --duration 500ms --miss-duration 300ms --out "$tmp/peers" --log-level warn)

step "all tests passed"
