package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
)

// oauthFlags configure /mcp as a resource server of an external
// authorization server (Keycloak, Auth0, oidc-provider, ...).
type oauthFlags struct {
	issuer                    string
	tokenVerifier             string
	introspectionURL          string
	introspectionClientID     string
	introspectionClientSecret string
	introspectionSecretFile   string
	jwtAllowTypJWT            bool
	verifierCacheTTL          time.Duration
	allowedOrigins            string
	scopeMapFile              string
	requireDPoP               bool
	dpopNonces                bool
	// secret is the data directory's HMAC secret (secret.key), set by
	// serve before the flags are used.
	secret []byte
}

func (c *oauthFlags) register(fs *flagSet) {
	fs.StringVar(&c.issuer, "issuer", "", "issuer `URL` of the external OAuth authorization server whose access tokens /mcp accepts")
	fs.bindEnv("issuer", "EPICME_ISSUER")
	fs.StringVar(&c.tokenVerifier, "token-verifier", "jwt", "how access tokens are checked: `jwt` (RFC 9068, locally with the issuer's keys)\nor introspection (RFC 7662, asking the issuer)")
	fs.bindEnv("token-verifier", "EPICME_TOKEN_VERIFIER")
	fs.StringVar(&c.introspectionURL, "introspection-url", "", "introspection endpoint `URL` (default: from the issuer's metadata)")
	fs.bindEnv("introspection-url", "EPICME_INTROSPECTION_URL")
	fs.StringVar(&c.introspectionClientID, "introspection-client-id", "", "client `id` EpicMe authenticates with at the introspection endpoint")
	fs.bindEnv("introspection-client-id", "EPICME_INTROSPECTION_CLIENT_ID")
	fs.StringVar(&c.introspectionClientSecret, "introspection-client-secret", "", "client `secret` for introspection (prefer the file or the environment variable:\ncommand lines are visible to other users of the machine)")
	fs.bindEnv("introspection-client-secret", "EPICME_INTROSPECTION_CLIENT_SECRET")
	fs.StringVar(&c.introspectionSecretFile, "introspection-client-secret-file", "", "`file` holding the introspection client secret")
	fs.bindEnv("introspection-client-secret-file", "EPICME_INTROSPECTION_CLIENT_SECRET_FILE")
	fs.BoolVar(&c.jwtAllowTypJWT, "jwt-allow-typ-jwt", false, "also accept JWT access tokens whose header typ is \"JWT\" rather than \"at+jwt\"\n(Keycloak, Auth0 without the RFC 9068 profile)")
	fs.bindEnv("jwt-allow-typ-jwt", "EPICME_JWT_ALLOW_TYP_JWT")
	fs.DurationVar(&c.verifierCacheTTL, "verifier-cache-ttl", time.Minute, "longest an introspection answer is reused; a revoked token keeps working\nat most this long (JWTs work until they expire)")
	fs.bindEnv("verifier-cache-ttl", "EPICME_VERIFIER_CACHE_TTL")
	fs.DurationVar(&c.verifierCacheTTL, "introspection-cache-ttl", time.Minute, "the same as --verifier-cache-ttl")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated browser `origins` allowed to call /mcp (\"https://app.example\",\n\"http://localhost:*\" for any port, \"*\"); default: this server's origin and loopback")
	fs.bindEnv("allowed-origins", "EPICME_ALLOWED_ORIGINS")
	fs.StringVar(&c.scopeMapFile, "scope-map", "", "JSON `file` overriding which scopes each operation needs, e.g.\n{\"tools/call\": {\"create_entry\": [\"journal:write\"]}}")
	fs.bindEnv("scope-map", "EPICME_SCOPE_MAP")
	fs.BoolVar(&c.requireDPoP, "require-dpop", false, "accept only DPoP-bound access tokens with a proof of their key (RFC 9449),\nrefusing bearer tokens (the embedded authorization server binds a token to the key of\nthe DPoP proof its token request carries)")
	fs.bindEnv("require-dpop", "EPICME_REQUIRE_DPOP")
	fs.BoolVar(&c.dpopNonces, "dpop-nonces", false, "require server nonces in DPoP proofs (RFC 9449 §8): a client first gets use_dpop_nonce\nand a DPoP-Nonce header, then signs its proofs with it; limits a proof made in advance\nto a few minutes. The nonces are an HMAC under secret.key (with an external issuer) or\nkeys.kek (embedded), so every instance sharing those keys accepts them")
	fs.bindEnv("dpop-nonces", "EPICME_DPOP_NONCES")
}

// dpopChecker is the resource server's DPoP checker: nil for the default,
// or one requiring nonces keyed by c.secret, the secret every instance
// shares.
func (c *oauthFlags) dpopChecker() (*auth.DPoPChecker, error) {
	if !c.dpopNonces {
		return nil, nil
	}
	if len(c.secret) == 0 {
		return nil, errors.New("--dpop-nonces needs the data directory's secret.key (or --secret-file)")
	}
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("epicme dpop nonces"))
	return auth.NewDPoPChecker(auth.DPoPOptions{NonceKey: m.Sum(nil)})
}

// enabled reports whether an external issuer is configured.
func (c *oauthFlags) enabled() bool { return c.issuer != "" }

// loadScopeMap returns the MCP adapter's scope table with the entries of a
// JSON file laid over it (per method, per name). The one table it returns
// goes to the adapter, which decides calls and filters lists with it, and
// to the auth layer, which challenges from it.
func loadScopeMap(path string) (auth.ScopeMap, error) {
	m := mcpserver.DefaultScopes()
	if path == "" {
		return m, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--scope-map: %v", err)
	}
	var over auth.ScopeMap
	if err := json.Unmarshal(data, &over); err != nil {
		return nil, usagef("--scope-map %s must be a JSON object {method: {name: [scopes]}}: %v", path, err)
	}
	for method, names := range over {
		for name, scopes := range names {
			// An empty list would make the adapter refuse the operation
			// (it refuses what it cannot judge) while the auth layer let
			// it through: say so now.
			if len(scopes) == 0 {
				return nil, usagef("--scope-map %s: %s %q names no scope; give at least one", path, method, name)
			}
		}
		if m[method] == nil {
			m[method] = map[string][]string{}
		}
		for name, scopes := range names {
			m[method][name] = scopes
		}
	}
	if err := m.CheckTemplates(); err != nil {
		return nil, usagef("--scope-map %s: %v", path, err)
	}
	return m, nil
}

// externalAuth makes /mcp a resource server of the issuer in c: tokens are
// verified by JWT signature or introspection, bound to <publicURL>/mcp, and
// mapped to local users by (issuer, subject).
func externalAuth(ctx context.Context, c *oauthFlags, publicURL string, store epicme.UserService, logger *slog.Logger, e env) (*authSetup, error) {
	if u, err := url.Parse(c.issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usagef("--issuer %q must be the authorization server's issuer URL, e.g. https://login.example.com/realms/epicme", c.issuer)
	}
	resource := publicURL + httpserver.MCPPath
	scopes, err := loadScopeMap(c.scopeMapFile)
	if err != nil {
		return nil, err
	}
	var verifier auth.Verifier
	var revocation string
	switch c.tokenVerifier {
	case "jwt":
		verifier, err = auth.NewJWTVerifier(auth.JWTOptions{Issuer: c.issuer, Resource: resource, AllowTypJWT: c.jwtAllowTypJWT})
		revocation = "a revoked token keeps working until it expires"
	case "introspection":
		verifier, err = introspectionVerifier(ctx, c, resource, e)
		revocation = fmt.Sprintf("a revoked token stops working within %s", c.verifierCacheTTL)
	default:
		return nil, usagef("--token-verifier %q must be jwt or introspection", c.tokenVerifier)
	}
	if err != nil {
		return nil, err
	}
	opts := auth.Options{
		ResourceURL:          resource,
		AuthorizationServers: []string{c.issuer},
		ScopesSupported:      epicme.AllScopes,
		ResourceName:         "EpicMe Journal",
		Realm:                "EpicMe",
		RequiredScopes:       scopes.Required,
		Logger:               logger,
		// mcpserver binds sessions to their owner in the session store.
		HandlerBindsSessions: true,
		RequireDPoP:          c.requireDPoP,
	}
	if opts.DPoP, err = c.dpopChecker(); err != nil {
		return nil, err
	}
	if c.allowedOrigins != "" {
		for _, o := range strings.Split(c.allowedOrigins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				opts.AllowedOrigins = append(opts.AllowedOrigins, o)
			}
		}
	}
	rs, err := auth.NewResourceServer(verifier, opts)
	if err != nil {
		return nil, usagef("%v", err)
	}
	guard := guardStreams(verifier, streamRecheck, logger)
	return &authSetup{
		Middleware: func(h http.Handler) http.Handler { return rs.Protect(guard(h)) },
		Callers:    authserver.ExternalCallers(store),
		Scopes:     scopes,
		Mount: func(s *httpserver.Server) {
			md := rs.MetadataHandler()
			for _, p := range rs.MetadataPaths() {
				s.Handle(p, md)
			}
		},
		Notice: fmt.Sprintf("OAuth: /mcp accepts access tokens of %s for the resource %s,\nchecked by %s (%s).",
			c.issuer, resource, c.tokenVerifier, revocation),
	}, nil
}

func introspectionVerifier(ctx context.Context, c *oauthFlags, resource string, e env) (auth.Verifier, error) {
	secret := c.introspectionClientSecret
	if c.introspectionSecretFile != "" {
		if secret != "" {
			return nil, usagef("give the introspection client secret once: --introspection-client-secret or --introspection-client-secret-file")
		}
		b, err := os.ReadFile(c.introspectionSecretFile)
		if err != nil {
			return nil, usagef("--introspection-client-secret-file: %v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if c.introspectionClientID == "" || secret == "" {
		return nil, usagef("--token-verifier introspection needs --introspection-client-id and a secret\n(--introspection-client-secret-file or EPICME_INTROSPECTION_CLIENT_SECRET): the issuer must know who asks")
	}
	endpoint := c.introspectionURL
	if endpoint == "" {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		md, err := auth.FetchServerMetadata(tctx, &http.Client{Timeout: 10 * time.Second}, c.issuer)
		if err != nil {
			return nil, fmt.Errorf("finding the introspection endpoint of %s (or give --introspection-url): %w", c.issuer, err)
		}
		if md.IntrospectionEndpoint == "" {
			return nil, usagef("the metadata of %s lists no introspection_endpoint; give --introspection-url", c.issuer)
		}
		endpoint = md.IntrospectionEndpoint
	}
	v, err := auth.NewIntrospectionVerifier(auth.IntrospectionOptions{
		Endpoint: endpoint, ClientID: c.introspectionClientID, ClientSecret: secret,
		Resource: resource, Issuer: c.issuer, CacheTTL: c.verifierCacheTTL,
	})
	if err != nil {
		return nil, usagef("%v", err)
	}
	return v, nil
}
