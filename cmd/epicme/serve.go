package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

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
		data dataFlags
		db   databaseFlag
		web  httpFlags
		auth authFlags
		lim  limitFlags
	)
	fs := newFlagSet("serve", serveAbout, e)
	data.register(fs)
	db.register(fs)
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
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	secret, err := loadSecret(dir)
	if err != nil {
		return err
	}
	fresh := db.url == "" && freshDatabase(dir)
	// Opening applies migrations; on a large journal one can take a minute
	// (0005 rewrites every entry row), so say what is going on.
	slow := time.AfterFunc(3*time.Second, func() {
		logger.Info("still opening the database: migrations on a large journal take up to a few minutes, and a database another process holds locked is waited for")
	})
	store, _, err := openJournal(ctx, db.url, dir)
	slow.Stop()
	if err != nil {
		return err
	}
	defer store.Close()
	lim.applyQuota(store)
	// Runs (deferred) before the store closes.
	defer lim.share(ctx, store, logger)()

	setup, err := buildAuth(ctx, &auth, web.addr, publicURL, dir, store, logger, e)
	if err != nil {
		return err
	}
	peers, listen := mcpPeers(store, logger)
	mcp, err := mcpserver.New(store, setup.Callers, mcpserver.Options{Logger: logger, Secret: secret, Version: version, Peers: peers})
	if err != nil {
		return err
	}
	defer mcp.Close()
	listen(ctx, mcp)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", web.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", web.addr, err)
	}
	if setup.LoopbackOnly {
		if err := checkLoopbackListener(ln); err != nil {
			ln.Close()
			return err
		}
	}
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	if fresh && !auth.oauth.enabled() && !auth.devInsecureNoAuth && isLoopbackListen(web.addr) {
		demo, err := seedDemo(ctx, store, publicURL)
		if err != nil {
			ln.Close()
			return fmt.Errorf("seeding the demo accounts: %w", err)
		}
		setup.Notice += "\n\n" + demo
	}

	source := sourceAddress(auth.embedded.trustForwardedFor)
	srv, err := httpserver.New(httpserver.Config{
		MCP:    mcp.HTTPHandler(),
		Auth:   lim.mcp(setup.Middleware, source),
		Guard:  lim.endpoints(source),
		Ready:  store.Ping,
		Logger: logger,
	})
	if err != nil {
		ln.Close()
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
// to connect a client.
func printBanner(e env, publicURL, dir, notice string) {
	mcpURL := publicURL + httpserver.MCPPath
	fmt.Fprintf(e.stdout, `EpicMe %s is serving at %s
  MCP endpoint:  %s
  Health:        %s/healthz   Readiness: %s/readyz
  Data:          %s
`, version, publicURL, mcpURL, publicURL, publicURL, dir)
	if notice != "" {
		fmt.Fprintf(e.stdout, "\n%s\n", notice)
	}
	fmt.Fprintf(e.stdout, `
Connect a client:
  Claude Code:    claude mcp add --transport http epicme %s
  MCP Inspector:  npx @modelcontextprotocol/inspector, transport "Streamable HTTP", URL %s
  VS Code:        add {"servers": {"epicme": {"type": "http", "url": %q}}} to .vscode/mcp.json

Press Ctrl-C to stop.
`, mcpURL, mcpURL, mcpURL)
}
