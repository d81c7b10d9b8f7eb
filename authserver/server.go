// Package authserver is EpicMe's embedded OAuth 2.1 authorization server.
//
// It issues audience-bound JWT access tokens (RFC 9068) signed with ES256
// keys that rotate and are stored encrypted, and refresh tokens that rotate
// with reuse detection. Clients are pre-registered by the operator,
// registered dynamically (RFC 7591) or identified by a Client ID Metadata
// Document. Every authorization uses the code flow with PKCE S256; the
// sign-in and consent pages check real accounts. It also serves metadata
// (RFC 8414), a JWKS (RFC 7517), introspection (RFC 7662) and revocation
// (RFC 7009), and verifies its own tokens in process for the resource
// server when both run in one binary.
//
// Persistent state lives behind [Store]; the sqlite package implements it.
//
// [OAuth 2.1]: https://datatracker.ietf.org/doc/draft-ietf-oauth-v2-1/
package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/ratelimit"
)

// Paths of the endpoints, relative to the issuer.
const (
	MetadataPath      = "/.well-known/oauth-authorization-server"
	JWKSPath          = "/oauth/jwks"
	AuthorizePath     = "/oauth/authorize"
	SignInPath        = "/oauth/authorize/sign-in"
	ConsentPath       = "/oauth/authorize/consent"
	TokenPath         = "/oauth/token"
	RegistrationPath  = "/oauth/register"
	IntrospectionPath = "/oauth/introspect"
	RevocationPath    = "/oauth/revoke"
)

// Paths of the pages a person uses outside an authorization.
const (
	SignUpPath          = "/oauth/sign-up"
	SignOutPath         = "/oauth/sign-out"
	AccountPath         = "/oauth/account"
	AccountPasswordPath = "/oauth/account/password"
	AccountExportPath   = "/oauth/account/export"
	AccountDeletePath   = "/oauth/account/delete"
	AccountMachinePath  = "/oauth/account/automations"
)

// DefaultRefreshReuseGrace is how long after a rotation a refresh token
// still works for its client by default: long enough for a client that
// refreshes twice at once, or retries a refresh whose answer it lost,
// without the reuse revoking its grant (RFC 9700 §4.14.2).
const DefaultRefreshReuseGrace = 2 * time.Second

// Config configures a Server. Zero durations take the defaults named.
type Config struct {
	// Issuer is EpicMe's public origin, exactly as clients reach it
	// ("https://journal.example.com"): the "iss" of every token and the
	// "issuer" of the metadata (RFC 8414 §2). It must have no path.
	Issuer string
	// Resource is the public URL of the MCP endpoint: the only resource
	// (RFC 8707) tokens are issued for, and their "aud".
	Resource string
	// Scopes are the scopes the server grants (default epicme.AllScopes).
	Scopes []string

	Store Store
	Users epicme.UserService
	// KEK is the key-encryption key (KEKSize bytes): it seals signing keys
	// at rest and keys the hashes of client secrets and the session and
	// CSRF cookies.
	KEK []byte
	// VerifyPassword checks a password against a stored hash (default
	// password.Verify).
	VerifyPassword func(pw, hash string) (bool, error)
	// PasswordParams are the Argon2id parameters of new password hashes
	// (sign-up, change of password) and of the hash checked when an email
	// is unknown (default password.DefaultParams).
	PasswordParams password.Params
	// MaxPasswordChecks caps the password hashes computed at once (default
	// GOMAXPROCS); further sign-ins wait up to ten seconds, then get 503.
	MaxPasswordChecks int
	// AllowSignUp lets people create local accounts from the sign-in page.
	AllowSignUp bool
	// Journal, when set, lets users export their journal from the account
	// page.
	Journal Journal
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// AccessTokenTTL is the lifetime of access tokens (default 15 minutes).
	AccessTokenTTL time.Duration
	// RefreshTokenIdle is how long an unused refresh token lives (default
	// 30 days); each rotation starts the period again.
	RefreshTokenIdle time.Duration
	// CodeTTL is the lifetime of authorization codes (default and maximum
	// 10 minutes).
	CodeTTL time.Duration
	// RefreshReuseGrace is how long after a rotation the old refresh token
	// still works for the same client, so that concurrent refreshes do not
	// revoke the family (default DefaultRefreshReuseGrace; negative for
	// none).
	RefreshReuseGrace time.Duration
	// SessionTTL is how long a sign-in lasts (default 12 hours).
	SessionTTL time.Duration
	// KeyRotation is how long one key signs (default 30 days).
	KeyRotation time.Duration

	// SourceAddress names the network source of a request for rate limits
	// (default: the peer address; behind a reverse proxy, [ForwardedFor]).
	SourceAddress func(*http.Request) string
	// Sources keys the per-source limits (registration, sign-up, metadata
	// document fetches): IPv6 by network prefix, and which sources are
	// exempt. The zero value exempts nothing.
	Sources ratelimit.Sources

	// TokenClientLimiter, when set, limits token requests per client, keyed
	// by client id and charged only once the client has authenticated, so
	// that requests naming a client with a wrong secret cannot spend its
	// budget (they count against their source, whose limit runs before the
	// server). Exempt sources (Sources) are not charged.
	TokenClientLimiter *ratelimit.Limiter
	// DPoPNonces requires server nonces in DPoP proofs (RFC 9449 §8), at
	// the token endpoint and, through [Server.DPoP], wherever else that
	// checker is used.
	DPoPNonces bool

	// Registration limits Dynamic Client Registration.
	Registration RegistrationLimits
	// MetadataDocuments configures Client ID Metadata Documents.
	MetadataDocuments MetadataDocumentOptions
}

// RegistrationLimits bound Dynamic Client Registration (RFC 7591 §5 leaves
// abuse control to the server).
type RegistrationLimits struct {
	// Disabled turns the registration endpoint off.
	Disabled bool
	// PerSource is how many registrations one network source may make per
	// Window (default 20 per hour).
	PerSource int
	Window    time.Duration
	// HeldPerSource is how many clients one source may register within
	// UnusedTTL (default 100; its IPv6 aggregate ratelimit.AggregateFactor
	// times as many): since unused clients are deleted after UnusedTTL, it
	// bounds the clients one network holds, so that no network can fill
	// MaxClients for everyone.
	HeldPerSource int
	// MaxClients caps the number of dynamically registered clients
	// (default 10,000): a backstop against many networks at once.
	MaxClients int
	// UnusedTTL is how long a registered client that never completes a flow
	// is kept (default 24 hours).
	UnusedTTL time.Duration
}

// Server is the authorization server. Create it with New.
type Server struct {
	cfg      Config
	issuer   string
	resource string
	scopes   []string
	store    Store
	users    epicme.UserService
	log      *slog.Logger
	now      func() time.Time

	dpop      *auth.DPoPChecker // DPoP proofs at the token endpoint
	keys      *keyring
	secrets   secretHasher
	cookies   cookieCodec
	revoked   *revocationList
	verified  *verifiedCache
	clients   clientCache
	docs      *metadataFetcher
	verifiers jwtVerifiers // of client assertions and ID-JAGs
	pages     *pages
	secure    bool
	passwords *passwordGate
	backoff   *backoff
	usage     *usageRecorder
}

// Journal is what the account page reads to export a user's journal; the
// journal stores (sqlite, postgres) implement it.
type Journal interface {
	ListEntries(ctx context.Context, userID string, f epicme.EntryFilter) (*epicme.EntryPage, error)
	GetEntry(ctx context.Context, userID string, id int64) (*epicme.Entry, error)
	ListTags(ctx context.Context, userID string) ([]epicme.TagRef, error)
	GetTag(ctx context.Context, userID string, id int64) (*epicme.Tag, error)
}

// New validates cfg, loads (or on first start creates) the signing keys
// and returns a Server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Host == "" ||
		(iss.Path != "" && iss.Path != "/") || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("authserver: issuer %q must be an http(s) origin without path, query or fragment", cfg.Issuer)
	}
	if iss.Scheme == "http" && !isLoopbackHost(iss.Hostname()) {
		return nil, fmt.Errorf("authserver: issuer %q must use https unless it is a loopback address", cfg.Issuer)
	}
	res, err := url.Parse(cfg.Resource)
	if err != nil || res.Scheme == "" || res.Host == "" || res.Fragment != "" {
		return nil, fmt.Errorf("authserver: resource %q must be an absolute URL without fragment", cfg.Resource)
	}
	if cfg.Store == nil || cfg.Users == nil {
		return nil, errors.New("authserver: Store and Users are required")
	}
	if len(cfg.KEK) != KEKSize {
		return nil, fmt.Errorf("authserver: the key-encryption key must be %d bytes", KEKSize)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VerifyPassword == nil {
		cfg.VerifyPassword = func(pw, hash string) (bool, error) {
			ok, _, err := password.Verify(pw, hash)
			return ok, err
		}
	}
	if cfg.PasswordParams == (password.Params{}) {
		cfg.PasswordParams = password.DefaultParams
	}
	if cfg.MaxPasswordChecks <= 0 {
		cfg.MaxPasswordChecks = runtime.GOMAXPROCS(0)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = epicme.AllScopes
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.AccessTokenTTL, 15*time.Minute)
	def(&cfg.RefreshTokenIdle, 30*24*time.Hour)
	def(&cfg.CodeTTL, 10*time.Minute)
	if cfg.CodeTTL > 10*time.Minute {
		cfg.CodeTTL = 10 * time.Minute
	}
	def(&cfg.RefreshReuseGrace, DefaultRefreshReuseGrace)
	if cfg.RefreshReuseGrace < 0 {
		cfg.RefreshReuseGrace = 0
	}
	def(&cfg.SessionTTL, 12*time.Hour)
	def(&cfg.KeyRotation, 30*24*time.Hour)
	rl := &cfg.Registration
	if rl.PerSource == 0 {
		rl.PerSource = 20
	}
	def(&rl.Window, time.Hour)
	if rl.HeldPerSource == 0 {
		rl.HeldPerSource = 100
	}
	if rl.MaxClients == 0 {
		rl.MaxClients = 10000
	}
	def(&rl.UnusedTTL, 24*time.Hour)

	sealer, err := newSealer(cfg.KEK)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		issuer:   strings.TrimSuffix(cfg.Issuer, "/"),
		resource: cfg.Resource,
		scopes:   cfg.Scopes,
		store:    cfg.Store,
		users:    cfg.Users,
		log:      cfg.Logger,
		now:      cfg.Now,
		secrets:  secretHasher{key: subkey(cfg.KEK, "client secrets")},
		secure:   iss.Scheme == "https",
		passwords: &passwordGate{
			slots:  make(chan struct{}, cfg.MaxPasswordChecks),
			verify: cfg.VerifyPassword,
			params: cfg.PasswordParams,
		},
		backoff: newBackoff(),
		clients: newClientCache(),
		usage:   newUsageRecorder(),
	}
	s.cookies = cookieCodec{key: subkey(cfg.KEK, "cookies"), secure: s.secure}
	dpopOpts := auth.DPoPOptions{Now: cfg.Now}
	if cfg.DPoPNonces {
		// Every instance holds the same key-encryption key, so every
		// instance issues and accepts the same nonces.
		dpopOpts.NonceKey = subkey(cfg.KEK, "dpop nonces")
	}
	dpop, err := auth.NewDPoPChecker(dpopOpts)
	if err != nil {
		return nil, err
	}
	s.dpop = dpop
	s.keys = &keyring{
		store:       cfg.Store,
		sealer:      sealer,
		rotateEvery: cfg.KeyRotation,
		// A verifier that cached the key set refetches it on an unknown
		// kid, but one that only refreshes on a timer needs time: publish
		// a day ahead, or a tenth of the rotation period if shorter.
		publishLead: min(24*time.Hour, cfg.KeyRotation/10),
		// Tokens live AccessTokenTTL; keep a margin for clock skew.
		keepAfter: cfg.AccessTokenTTL + 5*time.Minute,
	}
	if err := s.keys.load(ctx); err != nil {
		return nil, fmt.Errorf("authserver: loading signing keys: %w", err)
	}
	if err := s.keys.maintain(ctx, s.now()); err != nil {
		return nil, fmt.Errorf("authserver: preparing signing keys: %w", err)
	}
	s.revoked = newRevocationList(cfg.Store, s.now)
	s.verified = newVerifiedCache(10000)
	if err := s.revoked.sync(ctx); err != nil {
		return nil, fmt.Errorf("authserver: loading revoked tokens: %w", err)
	}
	s.docs = newMetadataFetcher(cfg.MetadataDocuments)
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	return s, nil
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// Handler returns the handler of every endpoint of the authorization
// server. Mount it at the issuer's origin, for the paths this package
// declares (or use [Server.Register]).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle(MetadataPath, cors(onlyMethods(http.HandlerFunc(s.serveMetadata), http.MethodGet, http.MethodHead)))
	mux.Handle(JWKSPath, cors(onlyMethods(http.HandlerFunc(s.serveJWKS), http.MethodGet, http.MethodHead)))
	mux.Handle(AuthorizePath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveAuthorize), http.MethodGet)))
	mux.Handle(SignInPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveSignIn), http.MethodPost)))
	mux.Handle(ConsentPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveConsent), http.MethodPost)))
	mux.Handle(AppsPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveApps), http.MethodGet)))
	mux.Handle(AppsRevokePath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveAppsRevoke), http.MethodPost)))
	mux.Handle(SignUpPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveSignUp), http.MethodGet, http.MethodPost)))
	mux.Handle(SignOutPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveSignOut), http.MethodPost)))
	mux.Handle(AccountPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveAccount), http.MethodGet)))
	mux.Handle(AccountPasswordPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveChangePassword), http.MethodPost)))
	mux.Handle(AccountMachinePath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveAddMachineClient), http.MethodPost)))
	mux.Handle(AccountExportPath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveExport), http.MethodPost)))
	mux.Handle(AccountDeletePath, pageHeaders(onlyMethods(http.HandlerFunc(s.serveDeleteAccount), http.MethodPost)))
	mux.Handle(StylePath, onlyMethods(http.HandlerFunc(s.serveStyle), http.MethodGet, http.MethodHead))
	mux.Handle(TokenPath, cors(onlyMethods(http.HandlerFunc(s.serveToken), http.MethodPost)))
	mux.Handle(RegistrationPath, cors(onlyMethods(http.HandlerFunc(s.serveRegister), http.MethodPost)))
	mux.Handle(IntrospectionPath, onlyMethods(http.HandlerFunc(s.serveIntrospect), http.MethodPost))
	mux.Handle(RevocationPath, cors(onlyMethods(http.HandlerFunc(s.serveRevoke), http.MethodPost)))
}

func onlyMethods(h http.Handler, methods ...string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
}

// Metadata is the authorization server metadata (RFC 8414 §2).
type Metadata struct {
	Issuer                                          string   `json:"issuer"`
	AuthorizationEndpoint                           string   `json:"authorization_endpoint"`
	TokenEndpoint                                   string   `json:"token_endpoint"`
	JWKSURI                                         string   `json:"jwks_uri"`
	RegistrationEndpoint                            string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                                 []string `json:"scopes_supported"`
	ResponseTypesSupported                          []string `json:"response_types_supported"`
	ResponseModesSupported                          []string `json:"response_modes_supported"`
	GrantTypesSupported                             []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported               []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpoint                              string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported          []string `json:"revocation_endpoint_auth_methods_supported"`
	RevocationEndpointAuthSigningAlgValuesSupported []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpoint                           string   `json:"introspection_endpoint"`
	IntrospectionEndpointAuthMethodsSupported       []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported                   []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameterSupported      bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported               bool     `json:"client_id_metadata_document_supported"`
	// DPoPSigningAlgValuesSupported are the algorithms of the DPoP proofs
	// the token endpoint accepts (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

// DPoP returns the server's checker of DPoP proofs, for a resource server
// in the same process to share: the same algorithms, nonces and replay
// cache.
func (s *Server) DPoP() *auth.DPoPChecker { return s.dpop }

// Metadata returns the server's RFC 8414 metadata.
func (s *Server) Metadata() *Metadata {
	m := &Metadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.issuer + AuthorizePath,
		TokenEndpoint:                     s.issuer + TokenPath,
		JWKSURI:                           s.issuer + JWKSPath,
		ScopesSupported:                   s.scopes,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", GrantClientCredentials, GrantJWTBearer},
		TokenEndpointAuthMethodsSupported: []string{AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, AuthNone},
		TokenEndpointAuthSigningAlgValuesSupported:      AssertionAlgorithms,
		RevocationEndpoint:                              s.issuer + RevocationPath,
		RevocationEndpointAuthMethodsSupported:          []string{AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, AuthNone},
		RevocationEndpointAuthSigningAlgValuesSupported: AssertionAlgorithms,
		IntrospectionEndpoint:                           s.issuer + IntrospectionPath,
		IntrospectionEndpointAuthMethodsSupported:       []string{AuthClientSecretBasic, AuthClientSecretPost},
		CodeChallengeMethodsSupported:                   []string{"S256"},
		AuthorizationResponseIssParameterSupported:      true,
		ClientIDMetadataDocumentSupported:               !s.cfg.MetadataDocuments.Disabled,
		DPoPSigningAlgValuesSupported:                   s.dpop.Algorithms(),
	}
	if !s.cfg.Registration.Disabled {
		m.RegistrationEndpoint = s.issuer + RegistrationPath
	}
	return m
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSONRaw(w, s.Metadata())
}

// serveJWKS serves the public keys (RFC 7517 §5), including keys not yet
// signing and keys retired less than a token lifetime ago.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if err := s.keys.maintain(r.Context(), s.now()); err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.keys.jwksJSON())
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.writeOAuthError(w, r, internalErr(err))
}

// sourceOf is the network source of a request, for rate limits and the
// record of who registered a client.
func (s *Server) sourceOf(r *http.Request) string {
	if s.cfg.SourceAddress != nil {
		if a := s.cfg.SourceAddress(r); a != "" {
			return a
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sourceKeys are the keys the per-source limits of a request count under
// (see ratelimit.Sources); limited is false for an exempt source.
func (s *Server) sourceKeys(r *http.Request) (key, aggregate string, limited bool) {
	return s.cfg.Sources.Keys(s.sourceOf(r))
}

// countSource counts one event of what for a source and its aggregate in
// window and reports whether the source stays within limit (its aggregate
// within ratelimit.AggregateFactor times as many).
func (s *Server) countSource(ctx context.Context, what, key, aggregate string, window time.Duration, limit int) (bool, error) {
	n, err := s.store.CountEvent(ctx, what+":"+key, window, s.now())
	if err != nil || n > limit {
		return false, err
	}
	if aggregate == "" {
		return true, nil
	}
	n, err = s.store.CountEvent(ctx, what+":"+aggregate, window, s.now())
	return err == nil && n <= limit*ratelimit.AggregateFactor, err
}

// ForwardedFor returns the address a reverse proxy appended to
// X-Forwarded-For: the last one, the only one the proxy vouches for (the
// others come from the client and may be forged). Use it as
// Config.SourceAddress only behind a proxy that appends it.
func ForwardedFor(r *http.Request) string {
	v := r.Header.Values("X-Forwarded-For")
	if len(v) == 0 {
		return ""
	}
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = strings.TrimSpace(last)
	if _, err := netip.ParseAddr(last); err != nil {
		return ""
	}
	return last
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// sameResource compares resource identifiers as RFC 8707 and the MCP
// specification intend: scheme and host case-insensitively, one trailing
// slash ignored, everything else exact.
func sameResource(a, b string) bool {
	if a == b {
		return true
	}
	return normalizeResource(a) == normalizeResource(b)
}

func normalizeResource(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return strings.TrimSuffix(s, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return strings.TrimSuffix(u.String(), "/")
}

// Maintain deletes expired codes, tokens, revocations and rate-limit
// windows, and dynamically registered clients that never completed a flow,
// every interval (default 10 minutes), and stores when grants were last
// used every minute, until ctx is done. Run it in its own goroutine beside
// the server.
func (s *Server) Maintain(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	uses := time.NewTicker(usageEvery)
	defer uses.Stop()
	s.purge(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-uses.C:
			s.flushUsage(ctx)
		case <-t.C:
			s.purge(ctx)
		}
	}
}

// flushUsage stores the last uses of access tokens seen since the last
// flush.
func (s *Server) flushUsage(ctx context.Context) {
	if err := s.usage.flush(ctx, s.store, s.now()); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "recording when grants were last used", "err", err)
	}
}

func (s *Server) purge(ctx context.Context) {
	now := s.now()
	if err := s.store.PurgeExpired(ctx, now); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "purging expired authorization data", "err", err)
	}
	n, err := s.store.DeleteUnusedDynamicClients(ctx, now.Add(-s.cfg.Registration.UnusedTTL))
	if err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "deleting unused clients", "err", err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "deleted registered clients that never completed a flow", "count", n)
	}
}
