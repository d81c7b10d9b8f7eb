package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

const idpAbout = `Manage the enterprise identity providers the embedded authorization server
trusts (enterprise-managed authorization). An employee signed in at a trusted
IdP gets EpicMe access without a consent screen: their client exchanges the
ID token at the IdP for an Identity Assertion JWT Authorization Grant
(ID-JAG) and presents it at /oauth/token by the jwt-bearer grant (RFC 7523).
The user is the IdP's (issuer, subject), created on first use and never
matched to an account by email. No refresh token is issued: the client
exchanges again, so the IdP's decisions take effect at once.

Subcommands:
  epicme idp add --issuer URL --client CLIENT_ID [--client ...] [--scope "S..."] [--jwks-uri URL]
  epicme idp list
  epicme idp remove ISSUER`

const idpAddAbout = `Trust an identity provider, or change what it may do (run again with new
flags). Its signing keys are read from --jwks-uri, or from its metadata
(RFC 8414, then OpenID Connect Discovery at the issuer), fetched and cached by
the server through the same guarded fetcher as Client ID Metadata Documents:
https only, and never from loopback or private addresses unless the server
runs with --dev-allow-private-metadata-documents. Each --client is an EpicMe
client (confidential, from epicme client add --confidential) the IdP may
vouch for; --scope is the most it may grant.`

func runIdP(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing subcommand: add, list or remove")
	}
	switch args[0] {
	case "add":
		return runIdPAdd(ctx, args[1:], e)
	case "list":
		return runIdPList(ctx, args[1:], e)
	case "remove":
		return runIdPRemove(ctx, args[1:], e)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(e.stdout, "Usage: epicme idp <add|list|remove> [flags]\n\n%s\n", idpAbout)
		return nil
	}
	return usagef("unknown subcommand %q: want add, list or remove", args[0])
}

func runIdPAdd(ctx context.Context, args []string, e env) error {
	var (
		data                   storeFlags
		issuer, jwksURI, scope string
		clients                stringList
	)
	fs := newFlagSet("idp add", idpAddAbout, e)
	data.register(fs)
	fs.StringVar(&issuer, "issuer", "", "the IdP's issuer `URL`, exactly as in its assertions' iss (required)")
	fs.StringVar(&jwksURI, "jwks-uri", "", "`URL` of the IdP's JWKS (default: the jwks_uri of its metadata)")
	fs.Var(&clients, "client", "`client_id` of an EpicMe client the IdP may vouch for (repeat for several; required)")
	fs.StringVar(&scope, "scope", "", "space-separated `scopes`, the most the IdP may grant (default: all)")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if issuer == "" || len(clients) == 0 {
		return usagef("--issuer and at least one --client are required")
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	p, err := authserver.TrustIdentityProvider(ctx, store, authserver.NewIdentityProvider{Issuer: issuer, JWKSURI: jwksURI, Clients: clients, Scope: scope}, time.Now())
	if err != nil {
		return err
	}
	keys := p.JWKSURI
	if keys == "" {
		keys = "from its metadata"
	}
	fmt.Fprintf(e.stdout, "Trusting %s (keys %s) for the clients %s, with at most %q.\n", p.Issuer, keys, strings.Join(p.Clients, ", "), orAll(p.Scope))
	return nil
}

func orAll(scope string) string {
	if scope == "" {
		return strings.Join(epicme.AllScopes, " ")
	}
	return scope
}

func runIdPList(ctx context.Context, args []string, e env) error {
	var (
		data storeFlags
	)
	fs := newFlagSet("idp list", "List the trusted identity providers, oldest first.", e)
	data.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	list, err := store.ListIdentityProviders(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tCLIENTS\tSCOPE\tJWKS_URI\tADDED")
	for _, p := range list {
		keys := p.JWKSURI
		if keys == "" {
			keys = "(metadata)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Issuer, strings.Join(p.Clients, ","), orAll(p.Scope), keys, p.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func runIdPRemove(ctx context.Context, args []string, e env) error {
	var (
		data storeFlags
	)
	fs := newFlagSet("idp remove", "Stop trusting an identity provider: its grants are refused, and the tokens its\nusers hold stop working at once (within a second on a running server).\nUsage: epicme idp remove ISSUER", e)
	data.register(fs)
	if err := fs.parse(args, e, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give exactly one issuer: epicme idp remove ISSUER")
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.DeleteIdentityProvider(ctx, fs.Arg(0), time.Now()); err != nil {
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			return epicme.Errorf(epicme.ENOTFOUND, "%q is not a trusted identity provider (see epicme idp list)", fs.Arg(0))
		}
		return err
	}
	fmt.Fprintf(e.stdout, "No longer trusting %s; the tokens of its users are revoked.\n", fs.Arg(0))
	return nil
}
