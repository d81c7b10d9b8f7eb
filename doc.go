// Package epicme is the domain of EpicMe, a private multi-user journal served
// over the Model Context Protocol.
//
// It holds the journal's types (users, entries, tags and the links between
// them), their validation rules, the service interfaces that storage packages
// implement, the scopes that gate each operation, the caller carried on a
// request's context, and the one error vocabulary the rest of the program maps
// to tool errors, JSON-RPC errors and HTTP statuses.
//
// It imports no database, no HTTP and no MCP: those live in the sqlite,
// mcpserver, auth and httpserver packages, and cmd/epicme wires them together.
package epicme
