// Package interop checks EpicMe against software written by others: a real
// external OAuth 2.1 authorization server (oidc-provider, from npm) and the
// TypeScript MCP clients (@modelcontextprotocol/sdk 1.x speaking 2025-11-25,
// @modelcontextprotocol/client 2.x speaking 2026-07-28).
//
// The package has no code of its own; its tests start the Node programs in
// this directory and an EpicMe server, and drive them over loopback HTTP.
// They need the Node dependencies pinned by package-lock.json:
//
//	npm ci --prefix interop
//	go test ./interop/...
//
// Without node_modules the tests skip and say how to enable them.
package interop
