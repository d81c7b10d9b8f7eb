// Package auth makes an MCP server's Streamable HTTP endpoint an OAuth 2.1
// protected resource, as the MCP authorization specification asks. It is
// plain net/http and knows nothing of any MCP library or application.
//
// # API at a glance
//
//	v, _ := auth.NewJWTVerifier(auth.JWTOptions{Issuer: iss, Resource: mcpURL})       // RFC 9068
//	v, _ := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{...})              // RFC 7662
//	rs, _ := auth.NewResourceServer(v, auth.Options{
//		ResourceURL:          "https://journal.example.com/mcp",
//		AuthorizationServers: []string{iss},
//		RequiredScopes:       auth.ScopeMap{"tools/call": {"create_entry": {"entries:write"}}}.Required,
//	})
//	rs.Mount(mux, mcpHandler)            // /mcp protected, both RFC 9728 metadata URLs served
//	// or: mux.Handle("/mcp", rs.Protect(mcpHandler)) and rs.MetadataHandler() at rs.MetadataPaths()
//	// or: auth.RequireBearer(v, opts)(mcpHandler)
//
//	ti := auth.TokenInfoFromContext(ctx) // in a tool handler: Issuer, Subject, ClientID, Scopes, Audience, Expiry, Extra
//
// Types and functions: [TokenInfo], [Verifier] (with [ErrInvalidToken] → 401
// and [ErrUnavailable] → 503), [TokenError], [JWTVerifier], [JWTOptions],
// [IntrospectionVerifier], [IntrospectionOptions], [FetchServerMetadata],
// [ResourceServer], [Options], [ScopeMap], [Operation], [ReadOperations],
// [Body], [ReadBody], [ContextWithBody], [BodyFromContext],
// [ParseAuthorization], [Challenge], [WriteChallenge],
// [ProtectedResourceMetadata], [NormalizeResource], [SameResource],
// [ContextWithTokenInfo], [TokenInfoFromContext].
//
// # What a request goes through
//
// [ResourceServer.Protect] documents the order: Origin and CORS preflight,
// tokens outside the header refused, Authorization parsed, token verified,
// MCP-Protocol-Version checked, the JSON-RPC body read once for its
// operations (every message of a batch; Mcp-Method and Mcp-Name validated
// against it, never trusted instead of it; a body two JSON decoders could
// read differently refused), scopes checked per request, the session bound
// to the token's identity, then the MCP handler, which finds the read
// operations with [BodyFromContext] rather than decoding the body again.
// Cap the body before Protect (http.MaxBytesReader): it reads it whole. Answers that
// follow authentication carry Cache-Control: private, since they depend on
// the token (tool lists filtered by scope, for example).
//
// # Challenges (RFC 6750 §3, RFC 9728 §5.1)
//
//   - no credentials: 401, Bearer realm, resource_metadata and scope (what
//     the request needs; when it needs nothing, Options.ChallengeScopes),
//     no error;
//   - bad token: 401 error="invalid_token" with a short description;
//   - missing scope: 403 error="insufficient_scope", scope = every scope the
//     operation needs joined with those already granted, so a client that
//     re-authorizes with it loses nothing;
//   - malformed or repeated Authorization, token in query or form body: 400
//     error="invalid_request".
//
// Every value is quoted and holds only RFC 6750's characters; bodies are
// JSON {error, error_description}.
//
// # Audience and revocation
//
// Both verifiers refuse a token whose audience does not name
// Options.ResourceURL (RFC 8707), comparing after lower-casing scheme and
// host and dropping one trailing slash. How soon a revoked token stops
// working depends on the verifier:
//
//   - [IntrospectionVerifier]: after at most IntrospectionOptions.CacheTTL
//     (default 60 s), the bound on how long an active answer is reused;
//   - [JWTVerifier]: only when the token expires, since it is checked
//     locally; keep JWT access tokens short-lived.
//
// Caches are keyed by the SHA-256 of the token; tokens are never logged.
//
// # Scopes and list filtering
//
// Options.RequiredScopes gates calls (tools/call, resources/read,
// prompts/get, and completion/complete or resources/subscribe by what they
// refer to). It is a function so that the MCP server keeps the one table it
// also decides calls and filters lists with (the package does not filter
// lists, since that needs the MCP library); [ScopeMap] is a ready table
// whose Required method fits.
//
// # Sessions
//
// The first time a Mcp-Session-Id is seen (in the handler's response to
// initialize, or in a request), it is bound to the token's (issuer, subject,
// client id); another identity presenting it gets 404 as for an unknown
// session. Bindings live in a bounded LRU with a sliding idle expiry. A
// handler that binds sessions itself, from a store its instances share,
// sets Options.HandlerBindsSessions, and the resource server binds none.
//
// # With mark3labs/mcp-go
//
//	mcpServer := server.NewMCPServer("journal", "1.0.0")
//	h := server.NewStreamableHTTPServer(mcpServer)
//	rs.Mount(mux, h)
//	// in a tool handler: auth.TokenInfoFromContext(ctx) (mcp-go passes the
//	// request context through to handlers).
//
// # With modelcontextprotocol/go-sdk
//
// go-sdk hands tool handlers its own auth.TokenInfo (req.Extra.TokenInfo),
// filled by its auth.RequireBearerToken middleware, and in stateful mode
// checks that a session keeps the same user. Put this package in front and
// let go-sdk's middleware copy what it verified (Example_goSDK runs this):
//
//	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
//	bridge := sdkauth.RequireBearerToken(func(ctx context.Context, _ string, r *http.Request) (*sdkauth.TokenInfo, error) {
//		ti := auth.TokenInfoFromContext(r.Context())
//		if ti == nil {
//			return nil, sdkauth.ErrInvalidToken
//		}
//		return &sdkauth.TokenInfo{Scopes: ti.Scopes, Expiration: ti.Expiry, UserID: ti.Issuer + " " + ti.Subject}, nil
//	}, nil)
//	rs.Mount(mux, bridge(h))
//
// go-sdk marks list results cacheable as public by default; lists filtered
// per token must be made private.
package auth
