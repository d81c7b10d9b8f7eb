package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
)

const grantAbout = `See and revoke what users allowed applications, in the embedded
authorization server. A grant is one authorization: the refresh tokens that
descend from one code and the access tokens issued from them.

Subcommands:
  epicme grant list [--email EMAIL] [--client CLIENT_ID] [--all]
  epicme grant revoke GRANT_ID...
  epicme grant revoke --email EMAIL [--client CLIENT_ID]`

const grantRevokeAbout = `Revoke grants: their refresh tokens stop at once and their unexpired access
tokens go on the revocation list. Name grants by id (epicme grant list), or
every grant of an account (--email), or of an account to one client (--email
and --client, which also withdraws the consent, so the next authorization
asks again; an automation of the account, which exists for that consent
only, is deleted with it).`

func runGrant(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing subcommand: list or revoke")
	}
	switch args[0] {
	case "list":
		return runGrantList(ctx, args[1:], e)
	case "revoke":
		return runGrantRevoke(ctx, args[1:], e)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(e.stdout, "Usage: epicme grant <list|revoke> [flags]\n\n%s\n", grantAbout)
		return nil
	}
	return usagef("unknown subcommand %q: want list or revoke", args[0])
}

func runGrantList(ctx context.Context, args []string, e env) error {
	var (
		data   storeFlags
		who    accountFlags
		client string
		all    bool
	)
	fs := newFlagSet("grant list", "List grants, newest first; revoked ones only with --all.", e)
	data.register(fs)
	who.register(fs)
	fs.StringVar(&client, "client", "", "only grants to this `client_id`")
	fs.BoolVar(&all, "all", false, "include revoked grants")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	f := authserver.GrantFilter{ClientID: client, IncludeRevoked: all}
	if who.email != "" || who.id != "" {
		u, err := who.find(ctx, store)
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	grants, err := store.ListGrants(ctx, f)
	if err != nil {
		return err
	}
	users, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	emails := map[string]string{}
	for _, u := range users {
		emails[u.ID] = u.Email
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tUSER\tCLIENT\tSCOPE\tFIRST USE\tLAST USE\tSTATUS")
	for _, g := range grants {
		status := "active"
		if g.Revoked() {
			status = "revoked " + g.RevokedAt.UTC().Format(time.RFC3339)
		}
		user := emails[g.UserID]
		if user == "" {
			user = g.UserID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, user, g.ClientID, g.Scope,
			g.CreatedAt.UTC().Format(time.RFC3339), g.LastUsedAt.UTC().Format(time.RFC3339), status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(grants) == 0 {
		fmt.Fprintln(e.stderr, "No grants.")
	}
	return nil
}

func runGrantRevoke(ctx context.Context, args []string, e env) error {
	var (
		data   storeFlags
		who    accountFlags
		client string
	)
	fs := newFlagSet("grant revoke", grantRevokeAbout, e)
	data.register(fs)
	who.register(fs)
	fs.StringVar(&client, "client", "", "with --email: only the grants to this `client_id`")
	if err := fs.parse(args, e, true); err != nil {
		return err
	}
	ids := fs.Args()
	byAccount := who.email != "" || who.id != ""
	switch {
	case len(ids) == 0 && !byAccount:
		return usagef("name the grants to revoke (GRANT_ID...) or an account (--email)")
	case len(ids) > 0 && byAccount:
		return usagef("give grant ids or --email, not both")
	case client != "" && !byAccount:
		return usagef("--client goes with --email")
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now()
	if byAccount {
		u, err := who.find(ctx, store)
		if err != nil {
			return err
		}
		if client != "" {
			err = store.DeleteConsent(ctx, u.ID, client, now)
		} else {
			err = store.RevokeUserGrants(ctx, u.ID, now)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Revoked the grants of %s%s. %s\n", u.Email, map[bool]string{true: " to " + client}[client != ""], revocationReach)
		return nil
	}
	known, err := store.ListGrants(ctx, authserver.GrantFilter{IncludeRevoked: true})
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, g := range known {
		exists[g.ID] = true
	}
	for _, id := range ids {
		if !exists[id] {
			return epicme.Errorf(epicme.ENOTFOUND, "grant %q not found (see epicme grant list --all)", id)
		}
	}
	for _, id := range ids {
		if err := store.RevokeGrant(ctx, id, now); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Revoked %d grant(s). %s\n", len(ids), revocationReach)
	return nil
}
