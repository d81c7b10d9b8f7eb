package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/ratelimit"
)

// limitFlags are the abuse limits of epicme serve: request rates on /mcp
// and the token endpoint, and how much each user may keep. Registration
// and sign-in have their own limits inside the authorization server (per
// source, and a backoff per account).
type limitFlags struct {
	mcpSource, mcpClient, mcpUser rateFlag
	tokenSource, tokenClient      rateFlag
	authorizeSource               rateFlag
	quota                         epicme.Quota
	// exemptLoopback lets requests from a loopback source through every
	// rate limit; register sets it (see limitedSource).
	exemptLoopback bool
	// sources keys the per-source limits (IPv6 by prefix); the
	// authorization server's flags set it.
	sources ratelimit.Sources
	// syncInterval is how often the rate limits are shared with the other
	// instances, when the database is PostgreSQL (see share).
	syncInterval time.Duration
	// group, once share has found a database to share through, makes the
	// limiters; nil: each instance keeps its own.
	group *ratelimit.Group
	// tokenClientLim is made once by tokenClientLimiter.
	tokenClientLim *ratelimit.Limiter
}

// Defaults: generous for a person and their tools, a wall for a script.
// A burst is a fifth of the minute's allowance.
var (
	defaultMCPSourceRate   = ratelimit.Limit{PerMinute: 1200, Burst: 240}
	defaultMCPClientRate   = ratelimit.Limit{PerMinute: 600, Burst: 120}
	defaultMCPUserRate     = ratelimit.Limit{PerMinute: 600, Burst: 120}
	defaultTokenSourceRate = ratelimit.Limit{PerMinute: 60, Burst: 20}
	defaultTokenClientRate = ratelimit.Limit{PerMinute: 30, Burst: 10}
	// A person loads the authorization page a few times per sign-in; a
	// script loading it over and over would make the server fetch
	// metadata documents from wherever its client_id points.
	defaultAuthorizeSourceRate = ratelimit.Limit{PerMinute: 120, Burst: 30}
)

func (c *limitFlags) register(fs *flagSet) {
	c.exemptLoopback = true
	c.mcpSource = rateFlag(defaultMCPSourceRate)
	c.mcpClient = rateFlag(defaultMCPClientRate)
	c.mcpUser = rateFlag(defaultMCPUserRate)
	rate := func(v *rateFlag, name, env, what string) {
		fs.Var(v, name, what+" (`N/min[,burst]`; 0 for no limit); past it: 429 with Retry-After")
		fs.bindEnv(name, env)
	}
	rate(&c.mcpSource, "rate-mcp-source", "EPICME_RATE_MCP_SOURCE", "requests to /mcp a minute from one network address, counted before authentication")
	rate(&c.mcpClient, "rate-mcp-client", "EPICME_RATE_MCP_CLIENT", "requests to /mcp a minute by one OAuth client, across its users")
	rate(&c.mcpUser, "rate-mcp-user", "EPICME_RATE_MCP_USER", "requests to /mcp a minute for one user, across their clients")
	c.registerToken(fs)
	fs.Int64Var(&c.quota.Entries, "max-entries-per-user", epicme.DefaultMaxEntriesPerUser, "entries one user may keep; past it create_entry is refused")
	fs.bindEnv("max-entries-per-user", "EPICME_MAX_ENTRIES_PER_USER")
	fs.Int64Var(&c.quota.Tags, "max-tags-per-user", epicme.DefaultMaxTagsPerUser, "tags one user may keep; past it create_tag is refused")
	fs.bindEnv("max-tags-per-user", "EPICME_MAX_TAGS_PER_USER")
	fs.Int64Var(&c.quota.Bytes, "max-bytes-per-user", epicme.DefaultMaxBytesPerUser, "`bytes` of entry titles and contents one user may keep")
	fs.bindEnv("max-bytes-per-user", "EPICME_MAX_BYTES_PER_USER")
}

// registerToken registers the token endpoint's limits alone, for epicme
// authserver, which serves no /mcp and keeps no journal.
func (c *limitFlags) registerToken(fs *flagSet) {
	c.exemptLoopback = true
	c.tokenSource = rateFlag(defaultTokenSourceRate)
	c.tokenClient = rateFlag(defaultTokenClientRate)
	fs.Var(&c.tokenSource, "rate-token-source", "token endpoint requests a minute from one network address (`N/min[,burst]`; 0 for no limit)")
	fs.bindEnv("rate-token-source", "EPICME_RATE_TOKEN_SOURCE")
	fs.Var(&c.tokenClient, "rate-token-client", "token endpoint requests a minute by one client, counted once it has authenticated\n(`N/min[,burst]`; 0 for no limit)")
	fs.bindEnv("rate-token-client", "EPICME_RATE_TOKEN_CLIENT")
	fs.DurationVar(&c.syncInterval, "rate-sync-interval", ratelimit.DefaultSyncInterval, "with --database-url, how often the rate limits are shared with the other instances\n(shorter: a smaller overshoot, more writes to the database)")
	fs.bindEnv("rate-sync-interval", "EPICME_RATE_SYNC_INTERVAL")
	c.authorizeSource = rateFlag(defaultAuthorizeSourceRate)
	fs.Var(&c.authorizeSource, "rate-authorize-source", "authorization page loads a minute from one network address, each of which may fetch\na client's metadata document (`N/min[,burst]`; 0 for no limit)")
	fs.bindEnv("rate-authorize-source", "EPICME_RATE_AUTHORIZE_SOURCE")
}

// share makes the rate limits cluster-wide when store is PostgreSQL: every
// instance on the database then draws on one bucket per limit and key,
// synced in the background (ratelimit.Group), so that a request never
// waits for the database. With SQLite (one instance) the limits stay in
// memory. It must run before mcp and endpoints make the limiters; stop
// ends the syncing.
func (c *limitFlags) share(ctx context.Context, store any, logger *slog.Logger) (stop func()) {
	s, ok := store.(ratelimit.Shared)
	if !ok {
		return func() {}
	}
	c.group = ratelimit.NewGroup(s, logger)
	return c.group.Start(ctx, c.syncInterval)
}

// samples reports the sharing of the rate limits for /metrics (nothing
// when they are per instance).
func (c *limitFlags) samples() []httpserver.Sample {
	if c.group == nil {
		return nil
	}
	st := c.group.Stats()
	down := 0.0
	if st.Down {
		down = 1
	}
	return []httpserver.Sample{
		{Name: "epicme_ratelimit_syncs_total", Help: "Syncs of the rate limits with the other instances through the database.", Type: "counter", Value: float64(st.Syncs)},
		{Name: "epicme_ratelimit_sync_failures_total", Help: "Syncs of the rate limits that failed.", Type: "counter", Value: float64(st.Failures)},
		{Name: "epicme_ratelimit_sync_down", Help: "1 while the rate limits cannot be synced and hold per instance.", Type: "gauge", Value: down},
	}
}

// applyQuota hands the quota to the store.
func (c *limitFlags) applyQuota(store any) {
	if qs, ok := store.(epicme.QuotaSetter); ok {
		qs.SetQuota(c.quota)
	}
}

// mcp wraps the authentication middleware of /mcp: the per-address limit
// runs first, so that unauthenticated floods never reach token
// verification; the per-client and per-user limits run after it, keyed by
// what the verified token says.
func (c *limitFlags) mcp(authn func(http.Handler) http.Handler, source func(*http.Request) string) func(http.Handler) http.Handler {
	bySource := c.sourceLimit("mcp-source", c.mcpSource)
	byClient := c.group.New("mcp-client", ratelimit.Limit(c.mcpClient), nil)
	byUser := c.group.New("mcp-user", ratelimit.Limit(c.mcpUser), nil)
	return func(next http.Handler) http.Handler {
		callers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ti := auth.TokenInfoFromContext(r.Context()); ti != nil && c.limited(source(r)) {
				if ok, wait := byClient.Allow(ti.Issuer + " " + ti.ClientID); !ok {
					ratelimit.WriteJSONRPC(w, "this client", byClient.Limit(), wait)
					return
				}
				if ok, wait := byUser.Allow(ti.Issuer + " " + ti.Subject); !ok {
					ratelimit.WriteJSONRPC(w, "this user", byUser.Limit(), wait)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
		inner := authn(callers)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, what, l, wait := bySource.allow(c, source(r)); !ok {
				ratelimit.WriteJSONRPC(w, what, l, wait)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
}

// endpoints limits the token endpoint (RFC 6749 §3.2) by address, before
// the body is read, and the authorization page by address. Other routes
// pass through. The token endpoint's per-client limit is the authorization
// server's (tokenClientLimiter): it charges a client only once it has
// authenticated, which a header seen here does not prove.
func (c *limitFlags) endpoints(source func(*http.Request) string) func(http.Handler) http.Handler {
	bySource := c.sourceLimit("token-source", c.tokenSource)
	pages := c.sourceLimit("authorize-source", c.authorizeSource)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			src := source(r)
			if !c.limited(src) {
				next.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == authserver.AuthorizePath && r.Method == http.MethodGet {
				if ok, what, l, wait := pages.allow(c, src); !ok {
					ratelimit.WritePage(w, what, l, wait)
					return
				}
			}
			if r.URL.Path == authserver.TokenPath && r.Method == http.MethodPost {
				if ok, what, l, wait := bySource.allow(c, src); !ok {
					ratelimit.WriteOAuth(w, what, l, wait)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tokenClientLimiter is the token endpoint's per-client limit, which the
// authorization server applies after client authentication. It must be
// made after share.
func (c *limitFlags) tokenClientLimiter() *ratelimit.Limiter {
	if c.tokenClientLim == nil {
		c.tokenClientLim = c.group.New("token-client", ratelimit.Limit(c.tokenClient), nil)
	}
	return c.tokenClientLim
}

// limited reports whether requests from src are rate-limited. A loopback
// source is this machine: the operator's own tools, tests and benchmarks,
// or a reverse proxy on the same host. Counting the proxy's address would
// put every client behind it in one allowance, so such requests are let
// through; behind a proxy, --trust-forwarded-for makes the limits key on
// the client's own address (see loopbackProxyWarning).
func (c *limitFlags) limited(src string) bool {
	_, _, limited := c.keys(src)
	return limited
}

// keys are the keys src counts under (see ratelimit.Sources).
func (c *limitFlags) keys(src string) (key, aggregate string, limited bool) {
	s := c.sources
	s.ExemptLoopback = c.exemptLoopback
	return s.Keys(src)
}

// sourceLimit is a per-source limit and the limit of its IPv6 aggregate.
type sourceLimit struct{ one, agg *ratelimit.Limiter }

func (c *limitFlags) sourceLimit(name string, l rateFlag) sourceLimit {
	return sourceLimit{
		one: c.group.New(name, ratelimit.Limit(l), nil),
		agg: c.group.New(name+"-aggregate", ratelimit.Aggregate(ratelimit.Limit(l)), nil),
	}
}

// allow takes a token for src from its source's bucket and its
// aggregate's; when refused it names the allowance and its limit.
func (s sourceLimit) allow(c *limitFlags, src string) (ok bool, what string, l ratelimit.Limit, wait time.Duration) {
	key, aggregate, limited := c.keys(src)
	if !limited {
		return true, "", l, 0
	}
	if ok, wait := s.one.Allow(key); !ok {
		return false, "this address", s.one.Limit(), wait
	}
	if aggregate != "" {
		if ok, wait := s.agg.Allow(aggregate); !ok {
			return false, "this network", s.agg.Limit(), wait
		}
	}
	return true, "", l, 0
}

// loopbackProxyWarning is the warning for a server that listens on
// loopback, is reached at an https URL (so through a proxy), and does not
// trust X-Forwarded-For: every request then comes from loopback and no
// rate limit applies.
func loopbackProxyWarning(addr, publicURL string, trustForwardedFor bool) string {
	if trustForwardedFor || !isLoopbackListen(addr) || !strings.HasPrefix(publicURL, "https://") {
		return ""
	}
	return "WARNING: this server listens on loopback behind " + publicURL + " without --trust-forwarded-for:\nevery request seems to come from this machine, so the rate limits do not apply.\nSet --trust-forwarded-for if the proxy appends the client's address to X-Forwarded-For."
}

// sourceAddress names a request's network source for the limits: the peer
// address, or behind a trusted reverse proxy the address it appended to
// X-Forwarded-For.
func sourceAddress(trustForwardedFor bool) func(*http.Request) string {
	return func(r *http.Request) string {
		if trustForwardedFor {
			if a := authserver.ForwardedFor(r); a != "" {
				return a
			}
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
}

// rateFlag is a ratelimit.Limit written N/min[,burst]; a burst left out is
// a fifth of N (at least 1).
type rateFlag ratelimit.Limit

func (f *rateFlag) String() string {
	if f.PerMinute == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/min,%d", f.PerMinute, f.Burst)
}

func (f *rateFlag) Set(s string) error {
	rate, burst, hasBurst := strings.Cut(strings.TrimSpace(s), ",")
	rate = strings.TrimSuffix(strings.TrimSuffix(rate, "/min"), "/m")
	n, err := strconv.Atoi(rate)
	if err != nil || n < 0 {
		return fmt.Errorf("want N/min[,burst] with N a whole number >= 0")
	}
	b := max(1, n/5)
	if hasBurst {
		if b, err = strconv.Atoi(burst); err != nil || b < 1 {
			return fmt.Errorf("the burst after the comma must be a whole number >= 1")
		}
	}
	*f = rateFlag{PerMinute: n, Burst: b}
	return nil
}
