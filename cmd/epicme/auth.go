package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/password"
)

// defaultDevUser is the account development mode acts as.
const defaultDevUser = "dev@epicme.local"

// authFlags are the flags that decide how /mcp authenticates requests.
type authFlags struct {
	devInsecureNoAuth bool
	devUser           string
	oauth             oauthFlags
	embedded          authServerFlags
}

func (c *authFlags) register(fs *flagSet) {
	fs.BoolVar(&c.devInsecureNoAuth, "dev-insecure-no-auth", false, "DEVELOPMENT ONLY: serve /mcp without authentication, every request acting as one\nlocal user with all scopes; refuses to listen on anything but loopback")
	fs.bindEnv("dev-insecure-no-auth", "EPICME_DEV_INSECURE_NO_AUTH")
	fs.StringVar(&c.devUser, "dev-user", defaultDevUser, "`email` of the local account development mode acts as (created on first use\nwith a random password, printed once)")
	fs.bindEnv("dev-user", "EPICME_DEV_USER")
	c.oauth.register(fs)
	c.embedded.register(fs)
}

// authSetup is how the HTTP server authenticates /mcp.
type authSetup struct {
	// Middleware authenticates requests to /mcp before the MCP handler.
	Middleware func(http.Handler) http.Handler
	// Callers turns an authenticated request into its Caller.
	Callers epicme.CallerResolver
	// Scopes is the scope table Middleware challenges from; the MCP adapter
	// must decide with the same one (nil: the adapter's default).
	Scopes auth.ScopeMap
	// Mount adds routes the scheme needs (metadata documents), or is nil.
	Mount func(*httpserver.Server)
	// Notice is printed under the serving banner: who clients act as, or
	// how they sign in.
	Notice string
	// Warning, when set, is printed loudly on stderr.
	Warning string
	// LoopbackOnly refuses a listener that is not on a loopback address.
	LoopbackOnly bool
	// Stats, when set, adds the verifier's samples to /metrics.
	Stats func() []httpserver.Sample
}

// buildAuth decides how /mcp authenticates, from the flags: an external
// issuer (--issuer), development mode (--dev-insecure-no-auth), or by default
// the embedded authorization server. publicURL is the --public-url value (""
// when not given); dir is the data directory.
func buildAuth(ctx context.Context, c *authFlags, addr, publicURL, dir string, store epicme.Store, logger *slog.Logger, e env) (*authSetup, error) {
	switch {
	case c.oauth.enabled() && c.devInsecureNoAuth:
		return nil, usagef("--issuer and --dev-insecure-no-auth exclude each other: choose OAuth or development mode")
	case c.oauth.enabled():
		if publicURL == "" {
			host, port, _ := net.SplitHostPort(addr)
			if port == "0" || host == "" {
				return nil, usagef("with --issuer, give --public-url: tokens are bound to the exact URL clients use")
			}
			publicURL = "http://" + addr
		}
		return externalAuth(ctx, &c.oauth, publicURL, store, logger, e)
	case c.devInsecureNoAuth:
		return devAuth(ctx, c, addr, store, e)
	}
	if publicURL == "" {
		host, port, _ := net.SplitHostPort(addr)
		if port == "0" || host == "" {
			return nil, usagef("give --public-url: the embedded authorization server's issuer and the tokens' audience are the exact URL clients use")
		}
		publicURL = "http://" + addr
	}
	db, err := embeddedAuthStore(store)
	if err != nil {
		return nil, err
	}
	c.embedded.boundToLoopback = isLoopbackListen(addr)
	c.embedded.requireDPoP = c.oauth.requireDPoP
	c.embedded.dpopNonces = c.oauth.dpopNonces
	return embeddedAuth(ctx, &c.embedded, publicURL, dir, db, logger)
}

// devAuth serves every request as one local account with every scope. It is
// for a developer's own machine, so it binds loopback only: anything that can
// reach the port can read and change that journal.
func devAuth(ctx context.Context, c *authFlags, addr string, store epicme.Store, e env) (*authSetup, error) {
	if err := checkDevAddr(addr); err != nil {
		return nil, err
	}
	u, created, pw, err := ensureLocalUser(ctx, store, c.devUser)
	if err != nil {
		return nil, err
	}
	caller := &epicme.Caller{User: u, Scopes: epicme.Scopes(epicme.AllScopes)}
	notice := fmt.Sprintf("Development mode: every request to /mcp acts as %s with all scopes.", u.Email)
	if created {
		notice += fmt.Sprintf("\nCreated the local account %s. Its password, shown only this once: %s", u.Email, pw)
	}
	return &authSetup{
		Middleware: func(next http.Handler) http.Handler { return next },
		Callers: epicme.CallerResolverFunc(func(ctx context.Context) (*epicme.Caller, error) {
			return caller, nil
		}),
		Notice:       notice,
		LoopbackOnly: true,
		Warning: "WARNING: authentication is OFF (--dev-insecure-no-auth). Anything that can reach " + addr +
			" can read and change the journal of " + u.Email + ". Never use this mode outside development.",
	}, nil
}

// checkDevAddr refuses development mode on anything but loopback.
func checkDevAddr(addr string) error {
	if !isLoopbackListen(addr) {
		return usagef("--dev-insecure-no-auth serves without authentication and only listens on loopback; --addr %q is not a loopback address (use 127.0.0.1:PORT or [::1]:PORT)", addr)
	}
	return nil
}

// ensureLocalUser returns the local account with this email, creating it
// with a random password when it does not exist.
func ensureLocalUser(ctx context.Context, store epicme.Store, email string) (u *epicme.User, created bool, pw string, err error) {
	u, err = store.LocalUserByEmail(ctx, email)
	if err == nil {
		return u, false, "", nil
	}
	if epicme.ErrorCode(err) != epicme.ENOTFOUND {
		return nil, false, "", err
	}
	pw = rand.Text()
	hash, err := password.Hash(pw)
	if err != nil {
		return nil, false, "", err
	}
	u, err = store.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: email, PasswordHash: hash})
	if err != nil {
		return nil, false, "", err
	}
	return u, true, pw, nil
}

// checkLoopbackListener re-checks a bound listener, in case a host name such
// as "localhost" resolved to something else.
func checkLoopbackListener(ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("development mode must listen on loopback, but %s is not", ln.Addr())
}
