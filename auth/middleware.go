package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a [ResourceServer]. Zero values are sensible defaults
// except where marked required.
type Options struct {
	// ResourceURL is the public URL of the MCP endpoint, exactly as clients
	// use it (scheme, host spelling, port and path): it is the "resource" of
	// the metadata and the audience tokens must carry. Required.
	ResourceURL string
	// ResourceMetadataURL is the absolute URL of the protected resource
	// metadata named in challenges. Default: the RFC 9728 §3.1 URL derived
	// from ResourceURL (origin + /.well-known/oauth-protected-resource +
	// path).
	ResourceMetadataURL string
	// AuthorizationServers are the issuer URLs clients may get tokens from
	// (RFC 9728 §2). At least one is required.
	AuthorizationServers []string
	// ScopesSupported are advertised in the metadata (default: none
	// advertised).
	ScopesSupported []string
	// ResourceName and ResourceDocumentation are shown to users by clients
	// (RFC 9728 §2).
	ResourceName          string
	ResourceDocumentation string
	// Realm is the challenges' realm (default "mcp").
	Realm string
	// RequiredScopes says which scopes an operation needs: method is the
	// JSON-RPC method, name the tool or prompt name or the resource URI (see
	// [Operation]). The MCP server that decides the calls owns the table and
	// hands its lookup here, so the challenge and the call agree; a
	// [ScopeMap]'s Required method fits. Nil: every operation needs only a
	// valid token.
	RequiredScopes func(method, name string) []string
	// ChallengeScopes are named in the scope of a 401 when the request itself
	// needs none (initialize, ping, lists), so that clients ask for a useful
	// token at once. Default: ScopesSupported.
	ChallengeScopes []string
	// AllowedOrigins lists the browser origins that may call the endpoint:
	// exact origins, "scheme://host:*" for any port, or "*". Default: the
	// origin of ResourceURL plus http://localhost:*, http://127.0.0.1:* and
	// http://[::1]:*. Requests without Origin (non-browser clients) are not
	// affected.
	AllowedOrigins []string
	// ProtocolVersions are the MCP-Protocol-Version values accepted (default:
	// 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28).
	ProtocolVersions []string
	// SessionCapacity and SessionIdleTTL bound the memory of session
	// bindings (default 100000 sessions idle at most 24 h).
	SessionCapacity int
	SessionIdleTTL  time.Duration
	// HandlerBindsSessions says that the MCP handler binds each session to
	// the identity that opened it itself (EpicMe's does, in a store every
	// instance shares): the resource server then binds none, so that one
	// place decides. Without it, the resource server binds every session
	// id it sees to the token's identity (see Protect, step 8).
	HandlerBindsSessions bool
	// RetryAfter is sent with 503 when verification is unavailable (default
	// 10 s).
	RetryAfter time.Duration
	// UnavailableLogInterval limits "verification unavailable" log lines to
	// one per interval (default 1 min).
	UnavailableLogInterval time.Duration
	// Logger receives the audit line of every decision at debug level and
	// unavailability at warn level (default slog.Default()). Tokens are never
	// logged.
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// DPoP verifies the proofs of DPoP-bound tokens (RFC 9449 §7). Default:
	// a checker with [DPoPOptions] defaults and Now.
	DPoP *DPoPChecker
	// RequireDPoP refuses bearer tokens: every token must be DPoP-bound
	// and presented with a proof (RFC 9449 §7.1). Without it, bearer
	// clients keep working and DPoP-bound tokens are still checked.
	RequireDPoP bool
}

// DefaultProtocolVersions are the MCP revisions accepted when
// Options.ProtocolVersions is empty.
var DefaultProtocolVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}

// ResourceServer protects an MCP endpoint as an OAuth 2.1 resource server:
// it serves the protected resource metadata (RFC 9728), answers CORS
// preflights, checks the Origin, authenticates every request with a
// [Verifier] (RFC 6750), checks the scopes the JSON-RPC operation needs, binds
// MCP sessions to the token's identity, and hands the verified [TokenInfo] to
// the MCP handler on the request context.
type ResourceServer struct {
	verifier  Verifier
	opts      Options
	resource  *url.URL
	mcpPath   string
	metadata  []byte
	origins   originMatcher
	sessions  *sessionBindings
	logger    *slog.Logger
	challenge string // scopes for a 401 when the request needs none

	unavailMu     sync.Mutex
	unavailLogged time.Time
}

// NewResourceServer checks opts and returns a resource server that verifies
// tokens with v.
func NewResourceServer(v Verifier, opts Options) (*ResourceServer, error) {
	if v == nil {
		return nil, errors.New("auth: a verifier is required")
	}
	u, err := url.Parse(opts.ResourceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("auth: resource URL %q must be an absolute http(s) URL without query or fragment (RFC 9728 §2)", opts.ResourceURL)
	}
	if len(opts.AuthorizationServers) == 0 {
		return nil, errors.New("auth: at least one authorization server is required (RFC 9728 §2)")
	}
	path := strings.TrimSuffix(u.Path, "/")
	if opts.ResourceMetadataURL == "" {
		opts.ResourceMetadataURL = u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + path
	} else if m, err := url.Parse(opts.ResourceMetadataURL); err != nil || m.Scheme == "" || m.Host == "" {
		return nil, fmt.Errorf("auth: resource metadata URL %q must be absolute", opts.ResourceMetadataURL)
	}
	if len(opts.ChallengeScopes) == 0 {
		opts.ChallengeScopes = opts.ScopesSupported
	}
	if opts.Realm == "" {
		opts.Realm = "mcp"
	}
	if len(opts.AllowedOrigins) == 0 {
		opts.AllowedOrigins = defaultOrigins(u)
	}
	if len(opts.ProtocolVersions) == 0 {
		opts.ProtocolVersions = DefaultProtocolVersions
	}
	if opts.SessionCapacity <= 0 {
		opts.SessionCapacity = 100000
	}
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = 24 * time.Hour
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 10 * time.Second
	}
	if opts.UnavailableLogInterval <= 0 {
		opts.UnavailableLogInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DPoP == nil {
		if opts.DPoP, err = NewDPoPChecker(DPoPOptions{Now: opts.Now}); err != nil {
			return nil, err
		}
	}
	md, err := json.Marshal(ProtectedResourceMetadata{
		DPoPSigningAlgValuesSupported: opts.DPoP.Algorithms(),
		DPoPBoundAccessTokensRequired: opts.RequireDPoP,
		Resource:                      opts.ResourceURL,
		AuthorizationServers:          opts.AuthorizationServers,
		ScopesSupported:               opts.ScopesSupported,
		BearerMethodsSupported:        []string{"header"},
		ResourceName:                  opts.ResourceName,
		ResourceDocumentation:         opts.ResourceDocumentation,
	})
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = "/"
	}
	var sessions *sessionBindings
	if !opts.HandlerBindsSessions {
		sessions = newSessionBindings(opts.SessionCapacity, opts.SessionIdleTTL)
	}
	return &ResourceServer{
		verifier:  v,
		opts:      opts,
		resource:  u,
		mcpPath:   path,
		metadata:  md,
		origins:   newOriginMatcher(opts.AllowedOrigins),
		sessions:  sessions,
		logger:    opts.Logger,
		challenge: strings.Join(opts.ChallengeScopes, " "),
	}, nil
}

// RequireBearer returns middleware that protects an MCP handler; see
// [ResourceServer.Protect]. It panics when opts are invalid, like
// regexp.MustCompile; use [NewResourceServer] to get the error instead.
func RequireBearer(v Verifier, opts Options) func(http.Handler) http.Handler {
	rs, err := NewResourceServer(v, opts)
	if err != nil {
		panic(err)
	}
	return rs.Protect
}

// Options returns the options in effect, defaults filled in.
func (rs *ResourceServer) Options() Options { return rs.opts }

// MCPPath is the path of ResourceURL ("/mcp"), where Protect belongs.
func (rs *ResourceServer) MCPPath() string { return rs.mcpPath }

// Mount registers on mux the protected MCP handler at the path of
// ResourceURL and the metadata at both well-known URLs.
func (rs *ResourceServer) Mount(mux *http.ServeMux, mcp http.Handler) {
	mux.Handle(rs.mcpPath, rs.Protect(mcp))
	md := rs.MetadataHandler()
	for _, p := range rs.MetadataPaths() {
		mux.Handle(p, md)
	}
}

// Protect wraps the MCP handler next. For each request, in this order:
//
//  1. a browser Origin outside the allow-list is refused (403); a CORS
//     preflight is answered (204) before any authentication;
//  2. a token in the query string or a form body is refused (400
//     invalid_request, RFC 6750 §2 allows only the header here);
//  3. the Authorization header is parsed: several or a malformed one is 400
//     invalid_request, none is 401 naming the scopes the request needs;
//  4. the token is verified: invalid is 401 invalid_token, verifier
//     unavailable is 503 with Retry-After;
//  5. an unsupported MCP-Protocol-Version is 400;
//  6. the JSON-RPC body (read once; cap it before, with http.MaxBytesReader)
//     is read for its operations, which go on the context for the handler
//     (BodyFromContext); Mcp-Method and Mcp-Name must agree with it (400,
//     -32020);
//  7. an operation the token's scopes do not cover is 403 insufficient_scope
//     naming every scope it needs plus those granted;
//  8. a session id bound to another identity is 404, as for an unknown
//     session (MCP Streamable HTTP: the client starts a new session, and
//     nobody learns that the id exists);
//  9. next runs with the [TokenInfo] on the context; its answer is marked
//     Cache-Control: private.
func (rs *ResourceServer) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.serve(w, r, next)
	})
}

func (rs *ResourceServer) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	d := decision{rs: rs, r: r}
	if !rs.checkOrigin(w, r, &d) {
		return
	}
	if r.Method == http.MethodOptions {
		writePreflight(w, r)
		return
	}
	if r.URL.Query().Has("access_token") {
		d.deny("token in query")
		rs.writeChallenge(w, http.StatusBadRequest, ErrorInvalidRequest, "Send the access token in the Authorization header, not in the query.", "")
		return
	}
	body, ok := rs.readBody(w, r, &d)
	if !ok {
		return
	}
	info, ok := rs.authenticate(w, r, body, &d)
	if !ok {
		return
	}
	if !rs.authorize(w, r, body, info, &d) {
		return
	}
	identity := identityOf(info)
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && rs.sessions != nil {
		if !rs.sessions.check(sid, identity, rs.opts.Now()) {
			d.deny("session belongs to another identity")
			writeJSONRPCError(w, http.StatusNotFound, firstID(body), -32001, "Session not found")
			return
		}
	}
	d.allow()
	w.Header().Set("Cache-Control", "private")
	w.Header().Add("Vary", "Authorization")
	ctx := ContextWithTokenInfo(r.Context(), info)
	if body != nil {
		ctx = ContextWithBody(ctx, body)
	}
	next.ServeHTTP(&sessionWriter{ResponseWriter: w, rs: rs, identity: identity, method: r.Method, requestSID: r.Header.Get("Mcp-Session-Id")}, r.WithContext(ctx))
}

// checkOrigin refuses a browser Origin outside the allow-list and sets the
// CORS headers of one inside it.
func (rs *ResourceServer) checkOrigin(w http.ResponseWriter, r *http.Request, d *decision) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !rs.origins.allows(origin) {
		d.deny("origin not allowed")
		writeErrorBody(w, http.StatusForbidden, "invalid_request", "The Origin "+origin+" may not call this server.")
		return false
	}
	setCORS(w.Header(), origin)
	return true
}

// readBody reads the body of a POST once, for every layer after this one:
// the body is put back for the handler and its JSON-RPC messages go on the
// context (BodyFromContext). The server caps the body before this
// (http.MaxBytesReader); a body over that cap is 413. A form body carrying
// a token is refused (RFC 6750 §2.2 is not offered here).
func (rs *ResourceServer) readBody(w http.ResponseWriter, r *http.Request, d *decision) (*Body, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil, true
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			d.deny("body too large")
			writeErrorBody(w, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
		} else {
			d.deny("body unreadable")
			writeErrorBody(w, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		}
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	if formHasToken(r.Header.Get("Content-Type"), raw) {
		d.deny("token in form body")
		rs.writeChallenge(w, http.StatusBadRequest, ErrorInvalidRequest, "Send the access token in the Authorization header, not in the body.", "")
		return nil, false
	}
	return ReadBody(raw), true
}

// authenticate parses the Authorization header and verifies its token
// (RFC 6750 §2.1, §3.1).
func (rs *ResourceServer) authenticate(w http.ResponseWriter, r *http.Request, body *Body, d *decision) (*TokenInfo, bool) {
	scheme, token, err := parseCredentials(r.Header.Values("Authorization"))
	if err == nil && scheme == "Bearer" && rs.opts.RequireDPoP {
		d.deny("bearer token where DPoP is required")
		rs.writeDPoPChallenge(w, http.StatusUnauthorized, ErrorInvalidToken, "This resource requires a DPoP-bound token (RFC 9449).")
		return nil, false
	}
	if errors.Is(err, ErrNoCredentials) {
		d.deny("no credentials")
		scope := ""
		if body != nil {
			scope = strings.Join(rs.needed(body.Ops), " ")
		}
		if scope == "" {
			scope = rs.challenge
		}
		if rs.opts.RequireDPoP {
			rs.writeDPoPChallenge(w, http.StatusUnauthorized, "", "")
			return nil, false
		}
		WriteChallenge(w, http.StatusUnauthorized, Challenge{Realm: rs.opts.Realm, ResourceMetadata: rs.opts.ResourceMetadataURL, Scope: scope})
		return nil, false
	}
	if err != nil {
		d.deny(err.Error())
		rs.writeChallenge(w, http.StatusBadRequest, ErrorInvalidRequest, capitalize(err.Error())+".", "")
		return nil, false
	}
	info, err := rs.verifier.Verify(r.Context(), token)
	var te *TokenError
	switch {
	case err == nil && info == nil:
		d.deny("verifier returned no token info")
		writeErrorBody(w, http.StatusInternalServerError, "server_error", "internal error")
		return nil, false
	case err == nil:
		if !rs.checkDPoP(w, r, scheme, token, info, d) {
			return nil, false
		}
		d.info = info
		return info, true
	case errors.As(err, &te):
		d.deny(te.Reason)
		rs.writeChallenge(w, http.StatusUnauthorized, ErrorInvalidToken, capitalize(te.Reason)+".", "")
	case errors.Is(err, ErrInvalidToken):
		d.deny("invalid token")
		rs.writeChallenge(w, http.StatusUnauthorized, ErrorInvalidToken, "The access token is invalid or expired.", "")
	default:
		d.deny("verification unavailable")
		rs.logUnavailable(err)
		w.Header().Set("Retry-After", strconv.Itoa(int((rs.opts.RetryAfter+time.Second-1)/time.Second)))
		writeErrorBody(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The access token cannot be checked right now; try again later.")
	}
	return nil, false
}

// authorize checks the protocol version, that Mcp-Method and Mcp-Name agree
// with the body, and that the token's scopes cover every message of it.
func (rs *ResourceServer) authorize(w http.ResponseWriter, r *http.Request, body *Body, info *TokenInfo, d *decision) bool {
	version := r.Header.Get("Mcp-Protocol-Version")
	if version != "" && !slices.Contains(rs.opts.ProtocolVersions, version) {
		d.deny("unsupported protocol version")
		writeErrorBody(w, http.StatusBadRequest, "invalid_request", "Unsupported MCP-Protocol-Version "+version+"; supported: "+strings.Join(rs.opts.ProtocolVersions, ", ")+".")
		return false
	}
	if r.Method != http.MethodPost {
		return true
	}
	if body == nil {
		body = ReadBody(nil)
	}
	if body.Err != nil {
		d.deny(body.Err.Error())
		writeJSONRPCError(w, http.StatusBadRequest, nil, -32700, "Parse error: "+body.Err.Error())
		return false
	}
	d.ops = body.Ops
	if err := checkStandardHeaders(r.Header, version, body.Ops); err != nil {
		d.deny(err.Error())
		writeJSONRPCError(w, http.StatusBadRequest, firstID(body), HeaderMismatchCode, err.Error())
		return false
	}
	if missing := rs.missing(body.Ops, info); len(missing) > 0 {
		scope := strings.Join(union(rs.needed(body.Ops), info.Scopes), " ")
		d.deny("insufficient scope: needs " + strings.Join(missing, " "))
		rs.writeChallenge(w, http.StatusForbidden, ErrorInsufficientScope,
			"This operation needs the scope "+strings.Join(missing, " ")+".", scope)
		return false
	}
	return true
}

// needed is the union of the scopes every operation needs.
func (rs *ResourceServer) needed(ops []Operation) []string {
	var out []string
	for _, op := range ops {
		if rs.opts.RequiredScopes == nil {
			break
		}
		for _, s := range rs.opts.RequiredScopes(op.Method, op.Name) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func (rs *ResourceServer) missing(ops []Operation, info *TokenInfo) []string {
	var out []string
	for _, s := range rs.needed(ops) {
		if !slices.Contains(info.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (rs *ResourceServer) writeChallenge(w http.ResponseWriter, status int, code, description, scope string) {
	WriteChallenge(w, status, Challenge{
		Realm:            rs.opts.Realm,
		ResourceMetadata: rs.opts.ResourceMetadataURL,
		Scope:            scope,
		Error:            code,
		ErrorDescription: description,
	})
}

func (rs *ResourceServer) logUnavailable(err error) {
	now := rs.opts.Now()
	rs.unavailMu.Lock()
	due := rs.unavailLogged.IsZero() || now.Sub(rs.unavailLogged) >= rs.opts.UnavailableLogInterval
	if due {
		rs.unavailLogged = now
	}
	rs.unavailMu.Unlock()
	if due {
		rs.logger.Warn("auth: token verification unavailable; answering 503", "err", err.Error(), "retry_after", rs.opts.RetryAfter)
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// formHasToken reports whether a form-encoded body carries access_token
// (RFC 6750 §2.2), which this resource server does not accept.
func formHasToken(contentType string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	v, err := url.ParseQuery(string(body))
	return err != nil || v.Has("access_token")
}

// HeaderMismatchCode is the JSON-RPC error code for Mcp-Method / Mcp-Name
// headers that disagree with the body (MCP 2026-07-28, SEP-2243).
const HeaderMismatchCode = -32020

// checkStandardHeaders validates Mcp-Method and Mcp-Name against the body.
// From 2026-07-28 they are required on requests; on older revisions they are
// optional, but when present they must still agree, since gateways may act
// on them.
func checkStandardHeaders(h http.Header, version string, ops []Operation) error {
	modern := version >= "2026-07-28"
	hm, hasMethod := h["Mcp-Method"]
	hn, hasName := h["Mcp-Name"]
	if len(hm) > 1 || len(hn) > 1 {
		return errors.New("header mismatch: Mcp-Method and Mcp-Name may appear once")
	}
	for _, op := range ops {
		if op.Method == "" {
			continue
		}
		if !hasMethod {
			if modern {
				return errors.New("header mismatch: Mcp-Method: missing required header")
			}
		} else if hm[0] != op.Method {
			return fmt.Errorf("header mismatch: Mcp-Method: header value %q does not match body value %q", hm[0], op.Method)
		}
		switch op.Method {
		case "tools/call", "resources/read", "prompts/get":
		default:
			continue
		}
		if !hasName {
			if modern {
				return fmt.Errorf("header mismatch: Mcp-Name: missing required header for method %q", op.Method)
			}
			continue
		}
		name, ok := decodeHeaderValue(hn[0])
		if !ok {
			return errors.New("header mismatch: Mcp-Name: invalid Base64 encoding")
		}
		if name != op.Name {
			return fmt.Errorf("header mismatch: Mcp-Name: header value %q does not match body value %q", name, op.Name)
		}
	}
	return nil
}

// decodeHeaderValue undoes SEP-2243's =?base64?...?= wrapping of header
// values that are not plain ASCII.
func decodeHeaderValue(v string) (string, bool) {
	if inner, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if inner, ok = strings.CutSuffix(inner, "?="); ok {
			b, err := base64.StdEncoding.DecodeString(inner)
			if err != nil {
				return "", false
			}
			return string(b), true
		}
	}
	return v, true
}

func firstID(body *Body) json.RawMessage {
	if body == nil {
		return nil
	}
	for _, op := range body.Ops {
		if op.ID != nil {
			return op.ID
		}
	}
	return nil
}

// writeJSONRPCError writes a JSON-RPC 2.0 error response (§5.1).
func writeJSONRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	if id == nil {
		id = json.RawMessage("null")
	}
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// sessionWriter sees the MCP handler's response headers so that a session id
// the handler mints is bound to the identity that started it, and a deleted
// session is forgotten.
type sessionWriter struct {
	http.ResponseWriter
	rs          *ResourceServer
	identity    string
	method      string
	requestSID  string
	wroteHeader bool
}

func (sw *sessionWriter) WriteHeader(status int) {
	if !sw.wroteHeader {
		sw.wroteHeader = true
		h := sw.Header()
		if sessions := sw.rs.sessions; sessions != nil && status < 300 {
			if sid := h.Get("Mcp-Session-Id"); sid != "" {
				sessions.bind(sid, sw.identity, sw.rs.opts.Now())
			}
			if sw.method == http.MethodDelete && sw.requestSID != "" {
				sessions.forget(sw.requestSID)
			}
		}
		// A handler may set its own Cache-Control (no-cache on event
		// streams); whatever it says, the answer depends on the token.
		if cc := h.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
			if cc == "" {
				h.Set("Cache-Control", "private")
			} else {
				h.Set("Cache-Control", cc+", private")
			}
		}
	}
	sw.ResponseWriter.WriteHeader(status)
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	if !sw.wroteHeader {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriter.Write(b)
}

// Flush lets event streams through (http.Flusher).
func (sw *sessionWriter) Flush() {
	if !sw.wroteHeader {
		sw.WriteHeader(http.StatusOK)
	}
	if f, ok := sw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (sw *sessionWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// decision writes the audit line of one request (debug level).
type decision struct {
	rs   *ResourceServer
	r    *http.Request
	info *TokenInfo
	ops  []Operation
}

func (d *decision) allow()             { d.log("allow", "") }
func (d *decision) deny(reason string) { d.log("deny", reason) }
func (d *decision) log(result, reason string) {
	ctx := d.r.Context()
	if !d.rs.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("decision", result), slog.String("method", d.r.Method)}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if d.info != nil {
		attrs = append(attrs, slog.String("issuer", d.info.Issuer), slog.String("subject", d.info.Subject), slog.String("client", d.info.ClientID))
	}
	if len(d.ops) > 0 {
		names := make([]string, len(d.ops))
		for i, op := range d.ops {
			names[i] = op.String()
		}
		attrs = append(attrs, slog.String("operation", strings.Join(names, ", ")))
	}
	d.rs.logger.LogAttrs(ctx, slog.LevelDebug, "auth decision", attrs...)
}

// checkDPoP applies RFC 9449 §7 to a verified token: a DPoP-bound token
// (cnf.jkt) needs the DPoP scheme and a proof by its key; the DPoP scheme
// needs a DPoP-bound token.
func (rs *ResourceServer) checkDPoP(w http.ResponseWriter, r *http.Request, scheme, token string, info *TokenInfo, d *decision) bool {
	jkt := info.ConfirmationJKT()
	if scheme == "Bearer" {
		if jkt == "" {
			return true
		}
		// §7.2: a DPoP-bound token presented as a bearer token is refused.
		d.deny("DPoP-bound token presented as Bearer")
		rs.writeDPoPChallenge(w, http.StatusUnauthorized, ErrorInvalidToken, "This access token is DPoP-bound: present it with the DPoP scheme and a proof.")
		return false
	}
	if jkt == "" {
		d.deny("DPoP scheme with a token that is not DPoP-bound")
		rs.writeDPoPChallenge(w, http.StatusUnauthorized, ErrorInvalidToken, "The access token is not DPoP-bound.")
		return false
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		d.deny("not exactly one DPoP proof")
		rs.writeDPoPChallenge(w, http.StatusUnauthorized, ErrorInvalidDPoPProof, "Send exactly one DPoP header.")
		return false
	}
	// The proof is for the resource URL as clients address it, whatever
	// host a proxy forwarded (RFC 9449 §4.3 check 9).
	target := *rs.resource
	target.Path, target.RawPath = r.URL.Path, r.URL.RawPath
	if n := rs.opts.DPoP.Nonce(); n != "" {
		// §8.2: a fresh nonce with every answer, so a client keeps one
		// that has not expired.
		w.Header().Set("DPoP-Nonce", n)
	}
	if _, err := rs.opts.DPoP.Check(r.Method, &target, proofs[0], token, jkt); err != nil {
		var de *DPoPError
		if !errors.As(err, &de) {
			de = &DPoPError{Code: ErrorInvalidDPoPProof, Reason: "the proof is invalid"}
		}
		d.deny(de.Reason)
		rs.writeDPoPChallenge(w, http.StatusUnauthorized, de.Code, capitalize(de.Reason)+".")
		return false
	}
	return true
}

// writeDPoPChallenge answers with a DPoP challenge (RFC 9449 §7.1) carrying
// the accepted algorithms and, with code, the error.
func (rs *ResourceServer) writeDPoPChallenge(w http.ResponseWriter, status int, code, description string) {
	c := Challenge{Scheme: "DPoP", Algs: strings.Join(rs.opts.DPoP.Algorithms(), " "),
		Realm: rs.opts.Realm, ResourceMetadata: rs.opts.ResourceMetadataURL,
		Error: code, ErrorDescription: description}
	if code == "" {
		w.Header().Add("WWW-Authenticate", c.String())
		w.WriteHeader(status)
		return
	}
	WriteChallenge(w, status, c)
}
