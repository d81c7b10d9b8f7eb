package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/password"
)

const userResetPasswordAbout = `Set a new password for a local account. Every browser signed in to it is
signed out (its sessions end on the server); the applications it connected
keep their access (cut them off with: epicme grant revoke --email).

The new password comes from --password, else one line on stdin, else, with
--generate, a random one printed once:

  printf '%s\n' "$PASSWORD" | epicme user reset-password --email me@example.com
  epicme user reset-password --email me@example.com --generate`

const userDisableAbout = `Disable a local account, or enable it again with --enable. A disabled account
cannot sign in, its sessions end, its grants are revoked (refresh tokens stop
and access tokens go on the revocation list), and /mcp refuses its tokens.`

// accountFlags name one local account.
type accountFlags struct {
	email, id string
}

func (c *accountFlags) register(fs *flagSet) {
	fs.StringVar(&c.email, "email", "", "`email` of the local account")
	fs.StringVar(&c.id, "id", "", "`id` of the account, as `epicme user list` shows it (instead of --email)")
}

// find returns the account the flags name.
func (c *accountFlags) find(ctx context.Context, store epicme.UserService) (*epicme.User, error) {
	switch {
	case c.email != "" && c.id != "":
		return nil, usagef("give --email or --id, not both")
	case c.email != "":
		return store.LocalUserByEmail(ctx, c.email)
	case c.id != "":
		return store.UserByID(ctx, c.id)
	}
	return nil, usagef("--email or --id is required")
}

func runUserResetPassword(ctx context.Context, args []string, e env) error {
	var (
		data     storeFlags
		who      accountFlags
		pw       string
		generate bool
	)
	fs := newFlagSet("user reset-password", userResetPasswordAbout, e)
	data.register(fs)
	who.register(fs)
	fs.StringVar(&pw, "password", "", "the new `password`; read from stdin when omitted")
	fs.BoolVar(&generate, "generate", false, "make a random password and print it once")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if generate && pw != "" {
		return usagef("give --password or --generate, not both")
	}
	if generate {
		pw = rand.Text()[:20]
	} else if pw == "" {
		var err error
		pw, err = readPassword(e, fmt.Sprintf("New password (at least %d characters): ", epicme.MinPasswordLen))
		if err != nil {
			return err
		}
		if pw == "" {
			return usagef("no password: give --password, --generate or one line on stdin")
		}
	}
	if err := epicme.ValidatePassword(pw); err != nil {
		return err
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := who.find(ctx, store)
	if err != nil {
		return err
	}
	if u.Issuer != epicme.LocalIssuer {
		return epicme.Errorf(epicme.EINVALID, "%s is an account of %s, which holds its password; only local accounts have one here", u.ID, u.Issuer)
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	if err := store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return err
	}
	if err := authserver.EndUserSessions(ctx, store, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Password of %s reset; its browsers are signed out.\n", u.Email)
	if generate {
		fmt.Fprintf(e.stdout, "New password, shown only now: %s\n", pw)
	}
	return nil
}

func runUserDisable(ctx context.Context, args []string, e env) error {
	var (
		data   storeFlags
		who    accountFlags
		enable bool
	)
	fs := newFlagSet("user disable", userDisableAbout, e)
	data.register(fs)
	who.register(fs)
	fs.BoolVar(&enable, "enable", false, "enable the account again instead")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	store, err := data.openAdmin(ctx, e)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := who.find(ctx, store)
	if err != nil {
		return err
	}
	name := u.Email
	if name == "" {
		name = u.ID
	}
	if enable {
		if err := store.SetUserDisabled(ctx, u.ID, false); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Enabled %s. Its applications must be authorized again.\n", name)
		return nil
	}
	if err := store.SetUserDisabled(ctx, u.ID, true); err != nil {
		return err
	}
	if err := authserver.EndUserSessions(ctx, store, u.ID); err != nil {
		return err
	}
	if err := store.RevokeUserGrants(ctx, u.ID, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Disabled %s and revoked its grants. %s\n", name, revocationReach)
	return nil
}

// revocationReach says how soon a revocation made from the command line
// takes effect.
const revocationReach = `A running "epicme serve" refuses the tokens within a second; a
resource server that verifies tokens by JWT on its own may accept an access
token already issued until it expires (--access-token-ttl, 15 minutes by default).`
