// Package mcpserver serves the EpicMe journal over the Model Context Protocol.
//
// It adapts the domain (package epicme) to MCP tools, resources, resource
// templates, completions and a prompt, using github.com/mark3labs/mcp-go, and
// serves them over Streamable HTTP (every protocol revision from 2025-03-26 to
// 2026-07-28 on one endpoint) and over stdio.
//
// Who is calling is decided on every request, never once per session: each
// handler asks the CallerResolver for the Caller of the request's context
// (the HTTP auth middleware puts the verified token there; stdio resolves to
// one local account). What a caller sees in tools/list, prompts/list,
// resources/list and resources/templates/list, and what it may call, follows
// the scopes of its token, from one table (see DefaultScopes).
//
// Confirmation of deletes (elicitation) and tag suggestions (sampling) are
// written as multi round-trip requests (MCP 2026-07-28, SEP-2322); mcp-go
// bridges them to server-initiated requests for clients of earlier
// revisions. The opaque requestState a client echoes back is HMAC-signed
// (see roundTrip).
//
// Streamable HTTP sessions of revisions 2025-03-26..2025-11-25 are kept in
// an epicme.SessionStore, bound to the user and client that opened them, so
// that every instance sharing the store serves them; what needs the
// instance holding a session's stream (a client's answer to an elicitation
// or sampling request, a tag suggestion, a resource notification, the end
// of a session) passes between instances through Peers (see sessions.go and
// peers.go).
//
// Resource update notifications (notifications/resources/updated) go to the
// sessions that subscribed with resources/subscribe: stdio, and Streamable
// HTTP sessions of revisions 2025-03-26..2025-11-25, which receive them on
// their GET stream or on the response stream of the request that made the
// change. Protocol 2026-07-28 has no sessions and no resources/subscribe;
// its clients revalidate with the cache hints of resources/read (ttlMs 0,
// cacheScope private), and are not pushed updates.
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Defaults for Options.
const (
	DefaultSamplingTimeout = 60 * time.Second
	DefaultSessionIdleTTL  = time.Hour
	DefaultRelayTimeout    = 3 * time.Second
	minSecretLen           = 32
)

// serverInstructions tells the model what EpicMe is for.
const serverInstructions = `EpicMe is a journaling app. Users write journal entries about their experiences and review them later.
Use the entry tools to create, read, list, search, update and delete entries, and the tag tools to create and manage tags and to add tags to entries or remove them.
Entries and tags are private to the signed-in user; ids are numbered per user.`

// Options configures a Server. The zero value is usable except for Secret.
type Options struct {
	// Logger receives internal errors in full and operational events.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Secret keys the HMAC that protects multi round-trip requestState
	// (at least 32 bytes). Every instance behind one endpoint must share it.
	Secret []byte
	// Version is reported as the server's version.
	Version string
	// SamplingTimeout bounds how long a background tag suggestion waits for
	// the client's model (default 60 s).
	SamplingTimeout time.Duration
	// SessionIdleTTL ends HTTP sessions (protocol revisions before
	// 2026-07-28) idle for longer than this (default 1 h).
	SessionIdleTTL time.Duration
	// Sessions keeps the HTTP sessions of revisions before 2026-07-28. It
	// defaults to the journal store, which must then implement
	// epicme.SessionStore (both stores do). Instances that share it serve
	// each other's sessions.
	Sessions epicme.SessionStore
	// Peers connects the instances sharing Sessions (see Peers). Without
	// it, a session ended by another instance is refused here within a
	// second (the session cache's lifetime), and elicitation,
	// sampling and resource notifications of a session work only on the
	// instance that holds its stream: run one instance, or give Peers.
	Peers Peers
	// RelayTimeout bounds how long a client's response passed to the other
	// instances waits for the one holding its request to confirm it
	// delivered it (default 3 s); unconfirmed, the client gets 503.
	RelayTimeout time.Duration
	// Scopes says which scopes each tool call, resource read and prompt
	// needs (default DefaultScopes()). Hand Server.RequiredScopes to the
	// HTTP auth layer so that its challenges follow the same table.
	Scopes auth.ScopeMap
	// DisableFastPath sends every request through mcp-go, including the
	// read-only 2026-07-28 tool calls the adapter otherwise answers itself
	// (see fastpath.go). For tests that compare the two.
	DisableFastPath bool
}

// Server is the MCP adapter of one journal store.
type Server struct {
	store    epicme.Store
	callers  epicme.CallerResolver
	logger   *slog.Logger
	secret   []byte
	opts     Options
	scopes   auth.ScopeMap
	mcp      *server.MCPServer
	http     *server.StreamableHTTPServer
	sessions *sessionRegistry
	// sessionStore is Options.Sessions, or its default.
	sessionStore epicme.SessionStore
	// localSubs are the subscriptions of sessions not stored (stdio).
	localSubs localSubscriptions
	// instance names this server in peer messages.
	instance string
	stray    atomic.Uint64 // client responses that answered nothing (StrayResponses)
	// acks are the relayed client responses waiting for their delivery to
	// be confirmed, by ack id.
	acks sync.Map // string → chan int
	// stop ends the idle-session purge.
	stop   context.CancelFunc
	closed atomic.Bool
	// background tracks tag suggestions that run after their tool result.
	background chan struct{}
	// fast holds the handlers of fastTools, as registered with mcp-go.
	fast map[string]fastHandler
	// fastServed counts the requests the fast path answered.
	fastServed atomic.Int64
	// toolCalls, when set, counts every tool call (see CountToolCalls).
	toolCalls func(tool string, took time.Duration, failed bool)
	// implementation is the serverInfo put on 2026-07-28 results.
	implementation mcp.Implementation
	// fastMeta is the JSON of the _meta the fast path puts on its results:
	// the serverInfo of implementation.
	fastMeta []byte
}

// New returns the MCP adapter of store. callers decides who each request
// comes from.
func New(store epicme.Store, callers epicme.CallerResolver, opts Options) (*Server, error) {
	if store == nil || callers == nil {
		return nil, errors.New("mcpserver: store and callers are required")
	}
	if len(opts.Secret) < minSecretLen {
		return nil, fmt.Errorf("mcpserver: Secret must be at least %d bytes", minSecretLen)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.SamplingTimeout <= 0 {
		opts.SamplingTimeout = DefaultSamplingTimeout
	}
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = DefaultSessionIdleTTL
	}
	if opts.RelayTimeout <= 0 {
		opts.RelayTimeout = DefaultRelayTimeout
	}
	s := &Server{
		store:      store,
		callers:    callers,
		logger:     opts.Logger,
		secret:     append([]byte(nil), opts.Secret...),
		opts:       opts,
		scopes:     opts.Scopes,
		instance:   newInstanceID(),
		background: make(chan struct{}, 64),
		fast:       map[string]fastHandler{},
		implementation: mcp.Implementation{
			Name:    "epicme",
			Version: opts.Version,
			Title:   "EpicMe Journal",
		},
	}
	if s.scopes == nil {
		s.scopes = DefaultScopes()
	}
	var meta mcp.Meta
	meta.SetServerInfo(s.implementation)
	fastMeta, err := meta.MarshalJSON()
	if err != nil {
		return nil, err
	}
	s.fastMeta = fastMeta
	s.sessionStore = opts.Sessions
	if s.sessionStore == nil {
		ss, ok := store.(epicme.SessionStore)
		if !ok {
			return nil, errors.New("mcpserver: the store keeps no MCP sessions (epicme.SessionStore); give one in Options.Sessions")
		}
		s.sessionStore = ss
	}
	s.sessions = newSessionRegistry(s, s.sessionStore)

	hooks := &server.Hooks{}
	hooks.AddAfterListTools(s.filterTools)
	hooks.AddAfterListPrompts(s.filterPrompts)
	hooks.AddAfterListResources(s.listResources)
	hooks.AddAfterListResourceTemplates(s.filterTemplates)
	hooks.AddAfterSubscribe(s.subscribed)
	hooks.AddAfterUnsubscribe(s.unsubscribed)
	hooks.AddOnRegisterSession(func(_ context.Context, session server.ClientSession) {
		s.sessions.registered(session)
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) {
		s.sessions.unregistered(session)
		s.localSubs.drop(session.SessionID())
	})

	c := completer{s}
	s.mcp = server.NewMCPServer("epicme", opts.Version,
		server.WithTitle("EpicMe Journal"),
		server.WithInstructions(serverInstructions),
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithLogging(),
		server.WithHooks(hooks),
		server.WithPromptCompletionProvider(c),
		server.WithResourceCompletionProvider(c),
		server.WithResourceHandlerMiddleware(s.guardResource),
		server.WithPromptHandlerMiddleware(s.guardPrompt),
		// Lists and reads depend on the token: never share them across
		// authorization contexts (SEP-2549). This is mcp-go's default too;
		// it is stated so that a change of default cannot widen it.
		server.WithCacheHints(0, mcp.CacheScopePrivate),
	)
	s.addTools()
	s.addResources()
	s.addPrompts()
	s.initHTTP()
	var ctx context.Context
	ctx, s.stop = context.WithCancel(context.Background())
	go s.sessions.purge(ctx)
	return s, nil
}

// CountToolCalls has f called after every tool call, with the tool's name,
// its duration and whether it failed (a tool error or a JSON-RPC error).
// Call it before serving.
func (s *Server) CountToolCalls(f func(tool string, took time.Duration, failed bool)) {
	s.toolCalls = f
}

// MCPServer returns the underlying mcp-go server, for in-process use.
func (s *Server) MCPServer() *server.MCPServer { return s.mcp }

// caller returns the caller of the request on ctx.
func (s *Server) caller(ctx context.Context) (*epicme.Caller, error) {
	c, err := s.callers.ResolveCaller(ctx)
	if err != nil {
		if isAppError(err) {
			return nil, err
		}
		return nil, epicme.Internal(err)
	}
	if c == nil || c.User == nil {
		return nil, epicme.Errorf(epicme.EFORBIDDEN, "no signed-in user")
	}
	return c, nil
}

// toolFunc handles a tool call for a caller already checked for the tool's
// scopes, with arguments of the names its input schema declares.
type toolFunc func(ctx context.Context, c *epicme.Caller, req mcp.CallToolRequest, a args) (*mcp.CallToolResult, error)

// addTool registers a tool behind the caller and scope checks. Errors become
// tool results with isError set (a database outage a JSON-RPC error, see
// toolFailure); a panic becomes "internal error".
func (s *Server) addTool(tool mcp.Tool, h toolFunc) {
	name := tool.Name
	// The arguments a tool takes are the properties of its declared input
	// schema: one list, which newArgs holds every call to.
	var schema struct{ Properties map[string]json.RawMessage }
	if err := json.Unmarshal(tool.RawInputSchema, &schema); err != nil {
		panic("mcpserver: the input schema of " + name + ": " + err.Error())
	}
	known := slices.Sorted(maps.Keys(schema.Properties))
	handler := func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		// Every call of every revision passes here (mcp-go and the fast
		// path call this handler); deferred first, it counts after recover.
		if s.toolCalls != nil {
			start := time.Now()
			defer func() { s.toolCalls(name, time.Since(start), err != nil || res == nil || res.IsError) }()
		}
		defer func() {
			if r := recover(); r != nil {
				s.logger.ErrorContext(ctx, "tool panicked", slog.String("tool", name), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				res, err = mcp.NewToolResultError("internal error"), nil
			}
		}()
		c, err := s.caller(ctx)
		if err != nil {
			return s.toolFailure(ctx, name, err)
		}
		need, ok := s.need("tools/call", name)
		if !ok {
			return s.toolError(ctx, name, epicme.Errorf(epicme.EFORBIDDEN, "tool %s is not available", name)), nil
		}
		if missing := c.Scopes.Missing(need...); len(missing) > 0 {
			return s.toolError(ctx, name, forbidden("tool "+name, missing)), nil
		}
		a, err := newArgs(req.Params.Arguments, known...)
		if err != nil {
			return s.toolFailure(ctx, name, err)
		}
		res, err = h(ctx, c, req, a)
		if err != nil {
			return s.toolFailure(ctx, name, err)
		}
		return res, nil
	}
	if fastTools[name] {
		s.fast[name] = handler
	}
	s.mcp.AddTool(tool, handler)
}

// filterTools keeps the tools the caller's scopes allow (tools/list).
func (s *Server) filterTools(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
	c, err := s.caller(ctx)
	kept := res.Tools[:0]
	for _, t := range res.Tools {
		if err == nil && s.allows(c, "tools/call", t.Name) {
			kept = append(kept, t)
		}
	}
	res.Tools = kept
}

// filterPrompts keeps the prompts the caller's scopes allow (prompts/list).
func (s *Server) filterPrompts(ctx context.Context, _ any, _ *mcp.ListPromptsRequest, res *mcp.ListPromptsResult) {
	c, err := s.caller(ctx)
	kept := res.Prompts[:0]
	for _, p := range res.Prompts {
		if err == nil && s.allows(c, "prompts/get", p.Name) {
			kept = append(kept, p)
		}
	}
	res.Prompts = kept
}

// filterTemplates keeps the resource templates the caller's scopes allow.
func (s *Server) filterTemplates(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
	c, err := s.caller(ctx)
	kept := res.ResourceTemplates[:0]
	for _, t := range res.ResourceTemplates {
		if err == nil && s.allows(c, "resources/read", t.URITemplate.Raw()) {
			kept = append(kept, t)
		}
	}
	res.ResourceTemplates = kept
}

// guardResource checks the caller's scopes before any resource handler.
func (s *Server) guardResource(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		c, err := s.caller(ctx)
		if err != nil {
			return nil, s.rpcErr(ctx, req.Params.URI, err)
		}
		need, ok := s.need("resources/read", req.Params.URI)
		if !ok {
			return nil, s.rpcErr(ctx, req.Params.URI, epicme.Errorf(epicme.ENOTFOUND, "Resource %s not found", req.Params.URI))
		}
		if missing := c.Scopes.Missing(need...); len(missing) > 0 {
			return nil, s.rpcErr(ctx, req.Params.URI, forbidden("resource "+req.Params.URI, missing))
		}
		return next(ctx, req)
	}
}

// guardPrompt checks the caller's scopes before any prompt handler.
func (s *Server) guardPrompt(next server.PromptHandlerFunc) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		c, err := s.caller(ctx)
		if err != nil {
			return nil, s.paramsErr(ctx, req.Params.Name, err)
		}
		need, ok := s.need("prompts/get", req.Params.Name)
		if !ok {
			return nil, s.paramsErr(ctx, req.Params.Name, epicme.Invalid("name", "prompt %q not found", req.Params.Name))
		}
		if missing := c.Scopes.Missing(need...); len(missing) > 0 {
			return nil, s.paramsErr(ctx, req.Params.Name, forbidden("prompt "+req.Params.Name, missing))
		}
		return next(ctx, req)
	}
}

// clientCaps returns the capabilities the client declared: per request on
// protocol 2026-07-28 (SEP-2575: a server must not infer them from earlier
// requests), and at initialize on earlier revisions, as stored with the
// session (mcp-go's session object knows them only on the instance where
// the session began).
func clientCaps(ctx context.Context) mcp.ClientCapabilities {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		if info.ClientCapabilities != nil {
			return *info.ClientCapabilities
		}
		return mcp.ClientCapabilities{}
	}
	if caps, ok := storedCaps(ctx); ok {
		return caps
	}
	if session, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return session.GetClientCapabilities()
	}
	return mcp.ClientCapabilities{}
}

// Close ends the HTTP sessions and their idle sweeper, and waits briefly
// for background tag suggestions to finish.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	for i := 0; i < cap(s.background); i++ {
		select {
		case s.background <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}
