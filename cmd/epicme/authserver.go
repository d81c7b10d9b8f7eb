package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
	"github.com/epicme/epicme/ratelimit"
)

// kekFile holds the key-encryption key of the embedded authorization
// server: it seals the token-signing keys in the database and keys the
// hashes of client secrets and the sign-in cookies. Losing it signs every
// client out; leaking it with the database leaks the signing keys.
const kekFile = "keys.kek"

// authServerFlags configure the embedded authorization server.
type authServerFlags struct {
	accessTokenTTL      time.Duration
	refreshReuseGrace   reuseGrace
	disableRegistration bool
	devPrivateMetadocs  bool
	disableMetadataDocs bool
	trustForwardedFor   bool
	requireDPoP         bool // --require-dpop of serve, for the resource server
	dpopNonces          bool // --dpop-nonces of serve
	ipv6Prefix          int
	// tokenClient is the token endpoint's per-client limit (limitFlags).
	tokenClient *ratelimit.Limiter
	allowSignUp optionalBool
	// boundToLoopback is whether --addr is a loopback address: sign-up is
	// then on unless --allow-signup=false.
	boundToLoopback bool
	kek             keySource
}

func (c *authServerFlags) register(fs *flagSet) {
	fs.DurationVar(&c.accessTokenTTL, "access-token-ttl", 15*time.Minute, "lifetime of the access tokens the embedded authorization server issues")
	fs.bindEnv("access-token-ttl", "EPICME_ACCESS_TOKEN_TTL")
	fs.Var(&c.refreshReuseGrace, "refresh-reuse-grace", "the `duration` after a refresh token's use in which its client may present it again\n(two refreshes at once, or a retry of one whose answer was lost) while no newer token\nhas been used, the new tokens replacing the earlier answer's; any other reuse revokes\nthe grant. 0 for none, at most "+maxReuseGrace.String())
	fs.bindEnv("refresh-reuse-grace", "EPICME_REFRESH_REUSE_GRACE")
	fs.BoolVar(&c.disableRegistration, "disable-registration", false, "turn off Dynamic Client Registration (RFC 7591); clients then come from\n`epicme client add` or Client ID Metadata Documents")
	fs.bindEnv("disable-registration", "EPICME_DISABLE_REGISTRATION")
	fs.BoolVar(&c.disableMetadataDocs, "disable-client-metadata-documents", false, "refuse clients identified by a Client ID Metadata Document (an https client_id)")
	fs.bindEnv("disable-client-metadata-documents", "EPICME_DISABLE_CLIENT_METADATA_DOCUMENTS")
	fs.IntVar(&c.ipv6Prefix, "ipv6-prefix", ratelimit.DefaultIPv6Prefix, "prefix `bits` of an IPv6 source for the rate limits: one subscriber holds a whole /64;\neach source also counts towards its /48 (8 times the allowance)")
	fs.bindEnv("ipv6-prefix", "EPICME_IPV6_PREFIX")
	fs.BoolVar(&c.trustForwardedFor, "trust-forwarded-for", false, "rate-limit (/mcp, token endpoint, registrations, sign-ins) by the address a reverse\nproxy appends to X-Forwarded-For (set it only behind such a proxy; otherwise clients\ncould pick their own address)")
	fs.bindEnv("trust-forwarded-for", "EPICME_TRUST_FORWARDED_FOR")
	fs.Var(&c.allowSignUp, "allow-signup", "let people create local accounts on the sign-in page (default: on when --addr is\na loopback address, off otherwise)")
	fs.bindEnv("allow-signup", "EPICME_ALLOW_SIGNUP")
	fs.BoolVar(&c.devPrivateMetadocs, "dev-allow-private-metadata-documents", false, "DEVELOPMENT ONLY: fetch Client ID Metadata Documents from loopback and private\naddresses (otherwise refused, so that nobody can make the server fetch from its own network)")
	fs.bindEnv("dev-allow-private-metadata-documents", "EPICME_DEV_ALLOW_PRIVATE_METADATA_DOCUMENTS")
	c.kek = kekSource()
	c.kek.register(fs)
}

// embeddedAuth runs the authorization server inside this process: its
// issuer is the public URL, its tokens are for <public URL>/mcp, and /mcp
// checks them in process, so revocation takes effect at once.
func embeddedAuth(ctx context.Context, c *authServerFlags, publicURL, dir string, store authStore, logger *slog.Logger) (*authSetup, error) {
	kek, err := c.kek.load(dir)
	if err != nil {
		return nil, err
	}
	resource := publicURL + httpserver.MCPPath
	cfg := c.config(publicURL, resource, kek, store, logger)
	// The journal lives in this process's database: the account page can
	// export it. (A split authorization server holds no journal.)
	cfg.Journal = store
	as, err := authserver.New(ctx, cfg)
	if err != nil {
		return nil, c.kek.explain(dir, err)
	}
	go as.Maintain(ctx, 0)
	listenRevocations(ctx, store, as, logger)
	scopes := mcpserver.DefaultScopes()
	rs, err := auth.NewResourceServer(as.Verifier(), auth.Options{
		ResourceURL:           resource,
		AuthorizationServers:  []string{as.Issuer()},
		ScopesSupported:       epicme.AllScopes,
		ResourceName:          "EpicMe Journal",
		ResourceDocumentation: "https://github.com/epicme/epicme#readme",
		Realm:                 "EpicMe",
		RequiredScopes:        scopes.Required,
		Logger:                logger,
		// mcpserver binds sessions to their owner in the session store.
		HandlerBindsSessions: true,
		RequireDPoP:          c.requireDPoP,
		// One checker for the token endpoint and /mcp: the same nonces.
		DPoP: as.DPoP(),
	})
	if err != nil {
		return nil, err
	}
	guard := guardStreams(as.Verifier(), streamRecheck, logger)
	notice := fmt.Sprintf("OAuth: the embedded authorization server %s issues the tokens of %s.\nUsers sign in with local accounts (epicme user add).", as.Issuer(), resource)
	setup := &authSetup{
		Middleware: func(h http.Handler) http.Handler { return rs.Protect(guard(h)) },
		Callers:    authserver.Callers(store, as.Issuer()),
		Scopes:     scopes,
		Mount: func(s *httpserver.Server) {
			as.Register(s.Mux)
			md := rs.MetadataHandler()
			for _, p := range rs.MetadataPaths() {
				s.Handle(p, md)
			}
		},
		Notice: notice,
		Stats:  verifierSamples(as),
	}
	if c.devPrivateMetadocs {
		setup.Warning = "WARNING: --dev-allow-private-metadata-documents lets any client make this server fetch\nURLs on its own network. Never use it outside development."
	}
	return setup, nil
}

// config is the authorization server's configuration from the flags.
func (c *authServerFlags) config(issuer, resource string, kek []byte, store authStore, logger *slog.Logger) authserver.Config {
	cfg := authserver.Config{
		Issuer:            issuer,
		Resource:          resource,
		Store:             store,
		Users:             store,
		KEK:               kek,
		Logger:            logger,
		AccessTokenTTL:    c.accessTokenTTL,
		RefreshReuseGrace: time.Duration(c.refreshReuseGrace),
		Registration:      authserver.RegistrationLimits{Disabled: c.disableRegistration},
		MetadataDocuments: authserver.MetadataDocumentOptions{Disabled: c.disableMetadataDocs, AllowPrivateAddresses: c.devPrivateMetadocs},
		AllowSignUp:       c.allowSignUp.or(c.boundToLoopback),
	}
	if c.trustForwardedFor {
		cfg.SourceAddress = authserver.ForwardedFor
	}
	cfg.Sources = c.sources()
	cfg.TokenClientLimiter = c.tokenClient
	cfg.DPoPNonces = c.dpopNonces
	return cfg
}

// maxReuseGrace bounds --refresh-reuse-grace: within the grace, whoever
// holds a refresh token its client has already used can still use it once.
const maxReuseGrace = time.Minute

// reuseGrace is --refresh-reuse-grace, held as authserver.Config's
// RefreshReuseGrace takes it: zero for the default, negative for none.
type reuseGrace time.Duration

func (g *reuseGrace) String() string {
	switch {
	case g == nil || *g == 0:
		return authserver.DefaultRefreshReuseGrace.String()
	case *g < 0:
		return "none"
	}
	return time.Duration(*g).String()
}

func (g *reuseGrace) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxReuseGrace {
		return fmt.Errorf("want a duration from 0 (none) to %v, such as 2s", maxReuseGrace)
	}
	*g = reuseGrace(d)
	if d == 0 {
		*g = -1
	}
	return nil
}

// sources is how every per-source limit keys a request's address.
func (c *authServerFlags) sources() ratelimit.Sources {
	return ratelimit.Sources{IPv6Prefix: c.ipv6Prefix, ExemptLoopback: true}
}

// keySource is where a key of the data directory comes from: by default
// its file there (created on first use); a --*-file flag or an EPICME_*
// variable give it from outside, as container secrets are, so that every
// instance sharing a database gets the same key without copying files
// around. keys.kek and secret.key are the two such keys.
type keySource struct {
	flag, env, dataFile, what string
	size                      int
	local                     func(dir string) ([]byte, error)

	file   string
	getenv func(string) string
}

// kekSource is the key-encryption key's source: keys.kek, --kek-file or
// EPICME_KEK.
func kekSource() keySource {
	return keySource{flag: "kek-file", env: "EPICME_KEK", dataFile: kekFile, what: "key-encryption key",
		size: authserver.KEKSize, local: loadKEK}
}

// secretSource is the requestState HMAC secret's source: secret.key,
// --secret-file or EPICME_SECRET.
func secretSource() keySource {
	return keySource{flag: "secret-file", env: "EPICME_SECRET", dataFile: secretFile, what: "requestState secret",
		size: secretLen, local: loadSecret}
}

func (k *keySource) register(fs *flagSet) {
	fs.StringVar(&k.file, k.flag, "", fmt.Sprintf("`file` holding the %s (%d bytes, as %s), instead of\n<data-dir>/%s; %s may hold it in base64 instead (base64 < %s).\nEvery instance that shares a database must use the same key",
		k.what, k.size, k.dataFile, k.dataFile, k.env, k.dataFile))
	fs.bindEnv(k.flag, k.env+"_FILE")
	k.getenv = fs.getenv
}

// load returns the key from its flag, else its variable, else the data
// directory.
func (k *keySource) load(dir string) ([]byte, error) {
	if k.file != "" {
		b, err := os.ReadFile(k.file)
		if err != nil {
			return nil, fmt.Errorf("reading --%s: %w", k.flag, err)
		}
		if len(b) != k.size {
			return nil, fmt.Errorf("--%s %s holds %d bytes, want %d (a copy of %s)", k.flag, k.file, len(b), k.size, k.dataFile)
		}
		return b, nil
	}
	if k.getenv != nil {
		if v := strings.TrimSpace(k.getenv(k.env)); v != "" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(b) != k.size {
				return nil, usagef("%s must be the base64 of a %d-byte %s (base64 < %s)", k.env, k.size, k.what, k.dataFile)
			}
			return b, nil
		}
	}
	return k.local(dir)
}

// explain turns an error of authserver.New into what the operator can do
// about it.
func (k *keySource) explain(dir string, err error) error {
	if errors.Is(err, authserver.ErrWrongKEK) {
		from := filepath.Join(dir, kekFile)
		switch {
		case k.file != "":
			from = k.file
		case k.getenv != nil && k.getenv("EPICME_KEK") != "":
			from = "EPICME_KEK"
		}
		return fmt.Errorf("the signing keys in the database were sealed with another key-encryption key than %s: every instance that shares a database must use the same keys.kek; copy it from the first instance, or give it to each with --kek-file FILE or EPICME_KEK (base64)", from)
	}
	return usagef("%v (set --public-url to the https URL clients use)", err)
}

// loadKEK returns the key-encryption key of the data directory, creating it
// (mode 0600) on first use.
func loadKEK(dir string) ([]byte, error) {
	path := filepath.Join(dir, kekFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != authserver.KEKSize {
			return nil, fmt.Errorf("%s holds %d bytes, want %d: restore it from a backup (deleting it signs every client out)", path, len(b), authserver.KEKSize)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the key-encryption key: %w", err)
	}
	b = make([]byte, authserver.KEKSize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// O_EXCL: of two processes starting at once, one writes and the other
	// reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKEK(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the key-encryption key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("writing the key-encryption key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return b, nil
}

const authServerAbout = `Serve only the OAuth 2.1 authorization server, for a split deployment: this
process signs users in and issues tokens for --resource, and a separate
"epicme serve --issuer <this server's public URL>" serves /mcp, verifying the
tokens by JWT (with this server's JWKS) or by introspection (register it with
"epicme client add --resource-server" and give it the id and secret).

The MCP process treats this server as any external issuer: it keeps its
journals under (issuer, subject), where the subject is the id of the local
account that signed in here.`

func runAuthServer(ctx context.Context, args []string, e env) error {
	var (
		data     storeFlags
		web      httpFlags
		as       authServerFlags
		resource string
		lim      limitFlags
	)
	fs := newFlagSet("authserver", authServerAbout, e)
	data.register(fs)
	web.register(fs)
	as.register(fs)
	lim.registerToken(fs)
	fs.StringVar(&resource, "resource", "", "public `URL` of the MCP endpoint the tokens are for, e.g. https://journal.example.com/mcp (required)")
	fs.bindEnv("resource", "EPICME_RESOURCE")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if err := validateAddr(web.addr); err != nil {
		return err
	}
	as.boundToLoopback = isLoopbackListen(web.addr)
	if resource == "" {
		return usagef("--resource is required: the URL of the MCP endpoint whose tokens this server issues")
	}
	publicURL, err := normalizePublicURL(web.publicURL)
	if err != nil {
		return err
	}
	if publicURL == "" {
		host, port, _ := net.SplitHostPort(web.addr)
		if port == "0" || host == "" {
			return usagef("give --public-url: the issuer is the exact URL clients use")
		}
		publicURL = "http://" + web.addr
	}
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	store, err := openAuthStore(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	defer lim.share(ctx, store, logger)()
	as.tokenClient = lim.tokenClientLimiter()
	srv, issuer, err := authServerOnly(ctx, &as, publicURL, resource, dir, store, logger)
	if err != nil {
		return err
	}
	// The token endpoint's rate limits, around the whole server (a refusal
	// is answered before the request id and access log).
	lim.sources = as.sources()
	srv.HTTP.Handler = lim.endpoints(sourceAddress(as.trustForwardedFor))(srv.HTTP.Handler)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", web.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", web.addr, err)
	}
	fmt.Fprintf(e.stdout, "EpicMe %s authorization server %s\n  issues tokens for %s\n  metadata: %s%s\n  Data: %s\n\nServe /mcp with:  epicme serve --issuer %s --public-url <origin of %s>\n",
		version, issuer, resource, issuer, authserver.MetadataPath, dir, issuer, resource)
	logger.Info("serving the authorization server", "addr", ln.Addr().String(), "issuer", issuer, "resource", resource)
	return srv.Serve(ctx, ln)
}

// authServerOnly builds the HTTP server of `epicme authserver`: the
// authorization server's endpoints and the health probes, and no /mcp.
func authServerOnly(ctx context.Context, c *authServerFlags, publicURL, resource, dir string, store authStore, logger *slog.Logger) (*httpserver.Server, string, error) {
	kek, err := c.kek.load(dir)
	if err != nil {
		return nil, "", err
	}
	as, err := authserver.New(ctx, c.config(publicURL, resource, kek, store, logger))
	if err != nil {
		return nil, "", c.kek.explain(dir, err)
	}
	go as.Maintain(ctx, 0)
	listenRevocations(ctx, store, as, logger)
	srv, err := httpserver.New(httpserver.Config{
		// This process serves no MCP endpoint: /mcp is not found here.
		MCP:    http.NotFoundHandler(),
		Auth:   func(h http.Handler) http.Handler { return h },
		Hosts:  publicHosts(publicURL),
		Ready:  store.Ping,
		Logger: logger,
	})
	if err != nil {
		return nil, "", err
	}
	as.Register(srv.Mux)
	return srv, as.Issuer(), nil
}

// publicHosts is the name the HTTP server answers for besides loopback
// names: the host of the public URL (httpserver.Config.Hosts).
func publicHosts(publicURL string) []string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Host}
}
