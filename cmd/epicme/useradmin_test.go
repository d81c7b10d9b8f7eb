package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/password"
	"github.com/epicme/epicme/sqlite"
)

// withStore opens the CLI's database for the test, and closes it before
// the next command runs.
func (c *cli) withStore(f func(db *sqlite.DB)) {
	c.t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir(), databaseFile))
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	f(db)
}

// grantFor stores a grant of the user to client "app", as a code exchange
// would, with one access token "at-<code>".
func grantFor(t *testing.T, db *sqlite.DB, userID, code string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := db.CreateCode(ctx, &authserver.AuthCode{
		Hash: code, ClientID: "app", UserID: userID, RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "c",
		Resource: "http://127.0.0.1/mcp", Scope: "entries:read", CreatedAt: now, ExpiresAt: now.Add(time.Minute),
	}); err != nil {
		t.Fatal(err)
	}
	g := &authserver.Grant{ID: "g-" + code, ClientID: "app", UserID: userID, Scope: "entries:read", Resource: "http://127.0.0.1/mcp", CreatedAt: now, LastUsedAt: now}
	if err := db.RedeemCode(ctx, code, now, g, &authserver.RefreshToken{Hash: "rt-" + code, CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		&authserver.AccessToken{JTI: "at-" + code, ExpiresAt: now.Add(15 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

func TestGrantListAndRevoke(t *testing.T) {
	c := newCLI(t)
	c.mustRun("user", "add", "--email", "ann@example.com", "--password", "ann's password")
	var userID string
	c.withStore(func(db *sqlite.DB) {
		u, err := db.LocalUserByEmail(context.Background(), "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		userID = u.ID
		grantFor(t, db, userID, "one")
		grantFor(t, db, userID, "two")
	})
	out := c.mustRun("grant", "list", "--email", "ann@example.com")
	for _, want := range []string{"g-one", "g-two", "ann@example.com", "app", "entries:read", "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("grant list lacks %q:\n%s", want, out)
		}
	}
	if out := c.mustRun("grant", "revoke", "g-one"); !strings.Contains(out, "Revoked 1 grant") || !strings.Contains(out, "15 minutes") {
		t.Fatalf("grant revoke: %s", out)
	}
	c.withStore(func(db *sqlite.DB) {
		if r, _ := db.IsAccessTokenRevoked(context.Background(), "at-one"); !r {
			t.Fatal("the revoked grant's access token is not on the revocation list")
		}
		if r, _ := db.IsAccessTokenRevoked(context.Background(), "at-two"); r {
			t.Fatal("the other grant was revoked too")
		}
	})
	if out := c.mustRun("grant", "list"); strings.Contains(out, "g-one") || !strings.Contains(out, "g-two") {
		t.Fatalf("grant list without --all:\n%s", out)
	}
	if out := c.mustRun("grant", "list", "--all"); !strings.Contains(out, "revoked") {
		t.Fatalf("grant list --all:\n%s", out)
	}
	c.mustRun("grant", "revoke", "--email", "ann@example.com", "--client", "app")
	c.withStore(func(db *sqlite.DB) {
		if r, _ := db.IsAccessTokenRevoked(context.Background(), "at-two"); !r {
			t.Fatal("--email --client did not revoke the grant")
		}
	})
	if code, _, errOut := c.run("", "grant", "revoke", "g-nonexistent"); code != exitError || errOut != "epicme grant: grant \"g-nonexistent\" not found (see epicme grant list --all)\n" {
		t.Fatalf("revoking an unknown grant: exit %d, %s", code, errOut)
	}
	if code, _, _ := c.run("", "grant", "revoke"); code != exitUsage {
		t.Fatalf("grant revoke without arguments: exit %d", code)
	}
}

func TestUserDisableRevokesGrantsAndResetPasswordReplacesTheHash(t *testing.T) {
	c := newCLI(t)
	c.mustRun("user", "add", "--email", "bo@example.com", "--password", "bo's first password")
	c.withStore(func(db *sqlite.DB) {
		u, _ := db.LocalUserByEmail(context.Background(), "bo@example.com")
		grantFor(t, db, u.ID, "bo")
	})
	if out := c.mustRun("user", "disable", "--email", "bo@example.com"); !strings.Contains(out, "Disabled bo@example.com") {
		t.Fatalf("user disable: %s", out)
	}
	c.withStore(func(db *sqlite.DB) {
		u, _ := db.LocalUserByEmail(context.Background(), "bo@example.com")
		if r, _ := db.IsAccessTokenRevoked(context.Background(), "at-bo"); !u.Disabled || !r {
			t.Fatalf("disabled %v, token revoked %v", u.Disabled, r)
		}
	})
	if out := c.mustRun("user", "list"); !strings.Contains(out, "disabled") {
		t.Fatalf("user list:\n%s", out)
	}
	c.mustRun("user", "disable", "--email", "bo@example.com", "--enable")

	out := c.mustRun("user", "reset-password", "--email", "bo@example.com", "--generate")
	m := regexp.MustCompile(`shown only now: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("reset-password --generate printed no password:\n%s", out)
	}
	code, _, _ := c.run("bo's second password\n", "user", "reset-password", "--email", "bo@example.com")
	if code != 0 {
		t.Fatalf("reset-password from stdin: exit %d", code)
	}
	c.withStore(func(db *sqlite.DB) {
		u, _ := db.LocalUserByEmail(context.Background(), "bo@example.com")
		hash, _ := db.PasswordHash(context.Background(), u.ID)
		if ok, _, _ := password.Verify("bo's second password", hash); !ok || u.Disabled {
			t.Fatalf("the new password does not verify (disabled %v)", u.Disabled)
		}
	})
	if code, _, errOut := c.run("", "user", "reset-password", "--email", "nobody@example.com", "--password", "long enough"); code != exitError || !strings.Contains(errOut, "not found") {
		t.Fatalf("reset-password of an unknown account: exit %d, %s", code, errOut)
	}
	if code, _, _ := c.run("", "user", "reset-password", "--email", "bo@example.com", "--password", "short"); code == 0 {
		t.Fatal("a short password was accepted")
	}
}

// demoHint is what a start with existing demo accounts prints.
const demoHint = `Demo accounts: demo@epicme.local, friend@epicme.local. Forgot the password? Make a new one with
  epicme user reset-password --email demo@epicme.local --generate
Account page: http://127.0.0.1:8080/oauth/account
`

func TestServeSeedsDemoAccountsOnlyOnAFreshLoopbackDatabase(t *testing.T) {
	c := newCLI(t)
	s := startServe(t, c, "--public-url", "http://127.0.0.1:8080")
	out := s.stdout.String()
	m := regexp.MustCompile(`sign in as demo@epicme\.local / (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "friend@epicme.local") || !strings.Contains(out, authserver.AccountPath) {
		t.Fatalf("a fresh loopback database should print the demo sign-in:\n%s", out)
	}
	s.stop()
	c.withStore(func(db *sqlite.DB) {
		u, err := db.LocalUserByEmail(context.Background(), "demo@epicme.local")
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := db.PasswordHash(context.Background(), u.ID)
		if ok, _, _ := password.Verify(m[1], hash); !ok {
			t.Fatal("the printed demo password does not verify")
		}
	})
	// Not fresh any more: no password is printed again, but how to get
	// one back is.
	s = startServe(t, c, "--public-url", "http://127.0.0.1:8080")
	if out := s.stdout.String(); strings.Contains(out, "sign in as") || !strings.Contains(out, demoHint) {
		t.Fatalf("a second start should print how to reset the demo password, and no password:\n%s", s.stdout)
	}
	s.stop()
	// A fresh database in development mode gets no demo accounts.
	d := newCLI(t)
	s = startServe(t, d, "--dev-insecure-no-auth")
	if strings.Contains(s.stdout.String(), "demo@epicme.local") {
		t.Fatal("development mode seeded demo accounts")
	}
}

// epicme user disable and reset-password end the account's sign-in
// sessions on the server, whoever holds their cookies.
func TestRule_UserDisableAndResetPasswordEndSignInSessions(t *testing.T) {
	c := newCLI(t)
	c.mustRun("user", "add", "--email", "cy@example.com", "--password", "cy's first password")
	session := func(hash string) {
		c.withStore(func(db *sqlite.DB) {
			u, _ := db.LocalUserByEmail(context.Background(), "cy@example.com")
			now := time.Now()
			if err := db.CreateSignInSession(context.Background(), &authserver.SignInSession{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		})
	}
	ended := func(hash string) bool {
		var gone bool
		c.withStore(func(db *sqlite.DB) {
			_, err := db.SignInSession(context.Background(), hash)
			gone = err != nil
		})
		return gone
	}
	session("before-disable")
	c.mustRun("user", "disable", "--email", "cy@example.com")
	if !ended("before-disable") {
		t.Fatal("user disable left a sign-in session")
	}
	c.mustRun("user", "disable", "--email", "cy@example.com", "--enable")
	session("before-reset")
	c.mustRun("user", "reset-password", "--email", "cy@example.com", "--password", "cy's second password")
	if !ended("before-reset") {
		t.Fatal("user reset-password left a sign-in session")
	}
}
