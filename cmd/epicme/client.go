package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
)

const clientAbout = `Manage the OAuth clients of the embedded authorization server that the
operator registers by hand (clients may also register themselves by RFC 7591,
or be identified by a Client ID Metadata Document).

Subcommands:
  epicme client add --name NAME --redirect-uri URI [--redirect-uri URI...] [--public|--confidential]
  epicme client add --name NAME --resource-server [--public-url URL]
  epicme client add --name NAME --confidential --acts-as EMAIL --scope "S..." [--jwks-file FILE | --jwks-uri URL]
  epicme client list
  epicme client remove CLIENT_ID`

const clientAddAbout = `Register an OAuth client. A confidential client gets a secret, printed once
and stored only as a keyed hash; a public client (the default, for apps on a
user's machine) authenticates by PKCE alone. Redirect URIs must match exactly,
except that a loopback URI (http://127.0.0.1, http://[::1], http://localhost)
accepts any port.

A resource server client (--resource-server) may call the introspection
endpoint about tokens issued for this server's MCP endpoint: give its id and
secret to an "epicme serve --token-verifier introspection" in front of it.

A machine client (--acts-as EMAIL) is an automation that reaches one user's
journal without a browser: it gets tokens by the client credentials grant
(RFC 6749 §4.4), acting as that user with at most --scope, and no refresh
token. It authenticates with its secret (client_secret_basic), or, with
--jwks-file or --jwks-uri, with assertions signed by one of the public keys in
that JSON Web Key Set (private_key_jwt, RFC 7523; aud must be the issuer). It is listed
among the user's connected apps, where the user can revoke it.`

func runClient(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing subcommand: add, list or remove")
	}
	switch args[0] {
	case "add":
		return runClientAdd(ctx, args[1:], e)
	case "list":
		return runClientList(ctx, args[1:], e)
	case "remove":
		return runClientRemove(ctx, args[1:], e)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(e.stdout, "Usage: epicme client <add|list|remove> [flags]\n\n%s\n", clientAbout)
		return nil
	}
	return usagef("unknown subcommand %q: want add, list or remove", args[0])
}

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runClientAdd(ctx context.Context, args []string, e env) error {
	var (
		data                                 storeFlags
		web                                  httpFlags
		name                                 string
		redirects                            stringList
		public, confidential, resourceServer bool
		scope, actsAs, jwksFile, jwksURI     string
	)
	fs := newFlagSet("client add", clientAddAbout, e)
	data.register(fs)
	web.register(fs)
	fs.StringVar(&name, "name", "", "`name` shown to users on the consent page (required)")
	fs.Var(&redirects, "redirect-uri", "redirect `URI` (repeat for several; required unless --resource-server)")
	fs.BoolVar(&public, "public", false, "a public client: no secret (the default)")
	fs.BoolVar(&confidential, "confidential", false, "a confidential client: gets a secret")
	fs.BoolVar(&resourceServer, "resource-server", false, "a resource server that may introspect tokens for this server's /mcp")
	fs.StringVar(&scope, "scope", "", "space-separated `scopes` the client may ask for (default: all; required with --acts-as)")
	fs.StringVar(&actsAs, "acts-as", "", "make a machine client acting for the user with this `email` (client credentials grant)")
	fs.StringVar(&jwksURI, "jwks-uri", "", "with --acts-as: the https `URL` of the JSON Web Key Set the client signs its assertions with (private_key_jwt),\nfetched and cached by the server")
	fs.StringVar(&jwksFile, "jwks-file", "", "with --acts-as: a JSON Web Key Set `file` of the public keys the client signs its assertions with (private_key_jwt) instead of a secret")
	kek := kekSource()
	kek.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if name == "" {
		return usagef("--name is required")
	}
	if public && (confidential || resourceServer) {
		return usagef("--public cannot be combined with --confidential or --resource-server")
	}
	if (actsAs != "") && (public || resourceServer || len(redirects) > 0) {
		return usagef("--acts-as makes a machine client: it cannot be combined with --public, --resource-server or --redirect-uri")
	}
	if (jwksFile != "" || jwksURI != "") && actsAs == "" {
		return usagef("--jwks-file and --jwks-uri register a machine client's keys: give --acts-as EMAIL too")
	}
	in := authserver.NewClient{Name: name, RedirectURIs: redirects, Confidential: confidential, ResourceServer: resourceServer, Scope: scope, JWKSURI: jwksURI}
	if jwksFile != "" {
		b, err := os.ReadFile(jwksFile)
		if err != nil {
			return fmt.Errorf("reading --jwks-file: %w", err)
		}
		in.JWKS = string(b)
	}
	if resourceServer {
		publicURL, err := normalizePublicURL(web.publicURL)
		if err != nil {
			return err
		}
		if publicURL == "" {
			publicURL = "http://" + web.addr
		}
		in.Resource = publicURL + httpserver.MCPPath
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	key, err := kek.load(dir)
	if err != nil {
		return err
	}
	store, err := openAuthStore(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	if actsAs != "" {
		u, err := store.LocalUserByEmail(ctx, actsAs)
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			return epicme.Errorf(epicme.ENOTFOUND, "no local account has the email %q (see epicme user list)", actsAs)
		}
		if err != nil {
			return err
		}
		in.ActsAs = u.ID
	}
	c, secret, err := authserver.AddClient(ctx, store, key, in, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Registered client %q.\n  client_id:     %s\n", c.Name, c.ID)
	if c.Machine() {
		fmt.Fprintf(e.stdout, "  acts as %s with the scopes %q (grant_type=client_credentials)\n", actsAs, c.Scope)
		if c.AuthMethod == authserver.AuthPrivateKeyJWT {
			fmt.Fprintf(e.stdout, "  authenticates with private_key_jwt: sign assertions with a key of %s, aud = the issuer\n", jwksFile+jwksURI)
		}
	}
	if secret != "" {
		fmt.Fprintf(e.stdout, "  client_secret: %s\n  (shown only this once; it is stored hashed)\n", secret)
	}
	if c.ResourceServer {
		fmt.Fprintf(e.stdout, "  may introspect tokens for %s\n", c.Resource)
	}
	return nil
}

func runClientList(ctx context.Context, args []string, e env) error {
	var data storeFlags
	fs := newFlagSet("client list", "List the stored OAuth clients (registered by hand or by RFC 7591), oldest first.", e)
	data.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	clients, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tKIND\tTYPE\tREDIRECT_URIS\tCREATED\tUSED")
	for _, c := range clients {
		typ := "public"
		if !c.Public() {
			typ = "confidential"
		}
		if c.ResourceServer {
			typ = "resource-server"
		}
		if c.Machine() {
			typ = "machine"
		}
		name, used := c.Name, "never"
		if name == "" {
			name = "-"
		}
		if !c.UsedAt.IsZero() {
			used = c.UsedAt.UTC().Format(time.RFC3339)
		}
		redirects := strings.Join(c.RedirectURIs, " ")
		if redirects == "" {
			redirects = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, name, c.Kind, typ, redirects, c.CreatedAt.UTC().Format(time.RFC3339), used)
	}
	return tw.Flush()
}

func runClientRemove(ctx context.Context, args []string, e env) error {
	var data storeFlags
	fs := newFlagSet("client remove", "Remove a client: its tokens stop working at once (within a second on a running server),\nand its consents and grants are deleted. Usage: epicme client remove CLIENT_ID", e)
	data.register(fs)
	if err := fs.parse(args, e, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give exactly one client id: epicme client remove CLIENT_ID")
	}
	id := fs.Arg(0)
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.DeleteClient(ctx, id, time.Now()); err != nil {
		if epicme.ErrorCode(err) == epicme.ENOTFOUND {
			return epicme.Errorf(epicme.ENOTFOUND, "client %q not found (see epicme client list)", id)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "Removed client %s; its tokens are revoked.\n", id)
	return nil
}
