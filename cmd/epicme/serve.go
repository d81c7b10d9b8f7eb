package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/mcpserver"
)

const serveAbout = `Serve the journal over MCP (Streamable HTTP, protocol revisions 2025-03-26
to 2026-07-28) at <public-url>/mcp, with /healthz and /readyz probes.
Stops gracefully on SIGINT or SIGTERM.

By default an embedded OAuth 2.1 authorization server issues the tokens for
/mcp: users sign in with local accounts (epicme user add), clients register
themselves or are added with epicme client add. --issuer trusts an external
authorization server instead.

/mcp is never served without authentication unless --dev-insecure-no-auth is
given, which is for development on this machine only.`

func runServe(ctx context.Context, args []string, e env) error {
	var (
		data storeFlags
		web  httpFlags
		auth authFlags
		lim  limitFlags
	)
	fs := newFlagSet("serve", serveAbout, e)
	data.register(fs)
	secretKey := secretSource()
	secretKey.register(fs)
	web.register(fs)
	auth.register(fs)
	lim.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if err := validateAddr(web.addr); err != nil {
		return err
	}
	publicURL, err := normalizePublicURL(web.publicURL)
	if err != nil {
		return err
	}
	if auth.devInsecureNoAuth {
		if err := checkDevAddr(web.addr); err != nil {
			return err
		}
	} else if publicURL == "" && !isLoopbackListen(web.addr) {
		return errNeedPublicURL(web.addr)
	}
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return err
	}
	// Listen before touching the data directory: a busy port then changes
	// nothing on disk, and the public URL can name the port bound.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", web.addr)
	if err != nil {
		return listenError(web.addr, err)
	}
	defer ln.Close()
	if publicURL == "" {
		publicURL = defaultPublicURL(web.addr, ln.Addr())
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	secret, err := secretKey.load(dir)
	if err != nil {
		return err
	}
	// Opening applies migrations; on a large journal one can take a minute
	// (0005 rewrites every entry row), so say what is going on.
	slow := time.AfterFunc(3*time.Second, func() {
		logger.Info("still opening the database: migrations on a large journal take up to a few minutes, and a database another process holds locked is waited for")
	})
	store, _, err := openJournal(ctx, data.url, dir)
	slow.Stop()
	if err != nil {
		return err
	}
	defer store.Close()
	lim.applyQuota(store)
	// Runs (deferred) before the store closes.
	defer lim.share(ctx, store, logger)()
	auth.embedded.tokenClient = lim.tokenClientLimiter()
	auth.oauth.secret = secret

	setup, err := buildAuth(ctx, &auth, web.addr, publicURL, dir, store, logger, e)
	if err != nil {
		return err
	}
	peers, listen := mcpPeers(store, logger)
	mcp, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret, Version: version, Peers: peers, Scopes: setup.Scopes})
	if err != nil {
		return err
	}
	defer mcp.Close()
	listen(ctx, mcp)

	if setup.LoopbackOnly {
		if err := checkLoopbackListener(ln); err != nil {
			return err
		}
	}
	if embedded := !auth.oauth.enabled() && !auth.devInsecureNoAuth; embedded {
		// Demo accounts only where nobody else can reach them: listening on
		// loopback and reached there, not through a proxy.
		var notice string
		if isLoopbackListen(web.addr) && isLoopbackURL(publicURL) {
			notice, err = demoSignIn(ctx, store, publicURL)
		} else {
			notice, err = noAccountsNotice(ctx, store, auth.embedded.allowSignUp.or(isLoopbackListen(web.addr)))
		}
		if err != nil {
			return err
		}
		if notice != "" {
			setup.Notice += "\n\n" + notice
		}
		if w := clearTextWarning(web.addr, publicURL); w != "" {
			setup.Warning = strings.TrimSpace(setup.Warning + "\n\n" + w)
		}
	}

	source := sourceAddress(auth.embedded.trustForwardedFor)
	lim.sources = auth.embedded.sources()
	srv, err := httpserver.New(httpserver.Config{
		MCP:    mcp.HTTPHandler(),
		Auth:   lim.mcp(setup.Middleware, source),
		Guard:  lim.endpoints(source),
		Hosts:  publicHosts(publicURL),
		Home:   homePage(&auth, publicURL),
		Ready:  store.Ping,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	if setup.Mount != nil {
		setup.Mount(srv)
	}
	metrics := newMetrics(mcp, store)
	metrics.Extra = func() []httpserver.Sample {
		var s []httpserver.Sample
		if setup.Stats != nil {
			s = setup.Stats()
		}
		s = append(s, httpserver.Sample{Name: "epicme_mcp_stray_responses_total", Help: "Client responses that answered no pending server request.", Type: "counter", Value: float64(mcp.StrayResponses())})
		return append(s, lim.samples()...)
	}
	srv.EnableMetrics(metrics)

	if w := loopbackProxyWarning(web.addr, publicURL, auth.embedded.trustForwardedFor); w != "" {
		setup.Warning = strings.TrimSpace(setup.Warning + "\n\n" + w)
	}
	if setup.Warning != "" {
		fmt.Fprintf(e.stderr, "\n%s\n%s\n%s\n\n", strings.Repeat("!", 72), setup.Warning, strings.Repeat("!", 72))
	}
	printBanner(e, publicURL, dir, setup.Notice)
	logger.Info("serving", "addr", ln.Addr().String(), "public_url", publicURL, "data_dir", dir)
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// printBanner tells the person who started the server where it is and how
// to connect a client. It writes the banner in one Write, so a log line or
// a reader polling stdout never sees half of it.
func printBanner(e env, publicURL, dir, notice string) {
	mcpURL := publicURL + httpserver.MCPPath
	var b strings.Builder
	fmt.Fprintf(&b, `EpicMe %s is serving at %s
  MCP endpoint:  %s
  Health:        %s/healthz   Readiness: %s/readyz
  Data:          %s
`, version, publicURL, mcpURL, publicURL, publicURL, dir)
	if notice != "" {
		fmt.Fprintf(&b, "\n%s\n", notice)
	}
	fmt.Fprintf(&b, `
Connect a client:
  Claude Code:    claude mcp add --transport http epicme %s
  MCP Inspector:  npx @modelcontextprotocol/inspector, transport "Streamable HTTP", URL %s
  VS Code:        add {"servers": {"epicme": {"type": "http", "url": %q}}} to .vscode/mcp.json

Press Ctrl-C to stop.
`, mcpURL, mcpURL, mcpURL)
	io.WriteString(e.stdout, b.String())
}

// errNeedPublicURL refuses a non-loopback --addr without --public-url: the
// issuer and the tokens' audience are the URL clients use, and on another
// machine that is an https URL this process cannot guess.
func errNeedPublicURL(addr string) error {
	return usagef("--addr %s is not a loopback address: clients on other machines reach this server at an https URL it cannot guess; give it with --public-url https://… (see docs/deployment.md)", addr)
}

// listenError says why addr could not be bound, and how to pick another.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("cannot listen on %s: the port is in use (another epicme serve?); choose a free one with --addr, e.g. --addr 127.0.0.1:8081", addr)
	}
	return fmt.Errorf("cannot listen on %s: %w", addr, err)
}

// defaultPublicURL is the URL clients use when --public-url is not given:
// the host as typed in --addr (so "localhost" stays "localhost": the
// issuer, the resource and the printed URL must be one origin, RFC 9728
// §3.3) with the port actually bound (which --addr may leave to the
// system with port 0).
func defaultPublicURL(addr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(bound.String())
	if host == "" {
		host, _, _ = net.SplitHostPort(bound.String())
	}
	return "http://" + net.JoinHostPort(strings.ToLower(host), port)
}

// isLoopbackURL reports whether the host of u is a loopback address.
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && isLoopbackListen(net.JoinHostPort(p.Hostname(), "0"))
}

// clearTextWarning warns when the server listens beyond loopback while its
// public URL is plain http: passwords and tokens then cross the network
// unencrypted.
func clearTextWarning(addr, publicURL string) string {
	if isLoopbackListen(addr) || !strings.HasPrefix(publicURL, "http://") {
		return ""
	}
	return "WARNING: " + addr + " is reachable from other machines, but --public-url " + publicURL + " is plain http:\npasswords and tokens would travel in clear text. Put an https proxy in front and give its URL\nwith --public-url https://… (see docs/deployment.md)."
}

// homePage is the page at /: the MCP URL, and with the embedded
// authorization server the links to sign in and to sign up.
func homePage(auth *authFlags, publicURL string) *httpserver.HomePage {
	p := &httpserver.HomePage{MCPURL: publicURL + httpserver.MCPPath}
	if auth.oauth.enabled() || auth.devInsecureNoAuth {
		return p
	}
	p.Links = []httpserver.Link{
		{Text: "Sign in to your account (password, data export, connected applications)", URL: authserver.AccountPath},
	}
	if auth.embedded.allowSignUp.or(auth.embedded.boundToLoopback) {
		p.Links = append(p.Links, httpserver.Link{Text: "Create an account", URL: authserver.SignUpPath})
	}
	return p
}
