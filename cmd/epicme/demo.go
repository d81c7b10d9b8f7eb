package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/password"
)

// demoAccounts are seeded into a fresh development database, so that the
// first `epicme serve` on a laptop can be tried at once. Two accounts show
// that journals are separate.
var demoAccounts = []string{"demo@epicme.local", "friend@epicme.local"}

// demoSignIn returns how to sign in on a loopback server with the embedded
// authorization server: a database without accounts gets the demo accounts
// (their passwords shown now), and a later start with them says how to get
// a password back. Seeding waits until the port is bound, so a failed start
// never leaves accounts whose passwords nobody saw.
func demoSignIn(ctx context.Context, store epicme.Store, publicURL string) (string, error) {
	if _, err := store.LocalUserByEmail(ctx, demoAccounts[0]); err == nil {
		return fmt.Sprintf("Demo accounts: %s. Forgot the password? Make a new one with\n  epicme user reset-password --email %s --generate\nAccount page: %s%s",
			strings.Join(demoAccounts, ", "), demoAccounts[0], publicURL, authserver.AccountPath), nil
	} else if epicme.ErrorCode(err) != epicme.ENOTFOUND {
		return "", err
	}
	users, err := store.ListUsers(ctx)
	if err != nil || len(users) > 0 {
		return "", err
	}
	notice, err := seedDemo(ctx, store, publicURL)
	if err != nil {
		return "", fmt.Errorf("creating the demo accounts: %w", err)
	}
	return notice, nil
}

// noAccountsNotice says, on a server beyond loopback, that nobody can sign
// in yet when there are no accounts and sign-up is off.
func noAccountsNotice(ctx context.Context, store epicme.Store, signUp bool) (string, error) {
	if signUp {
		return "", nil
	}
	users, err := store.ListUsers(ctx)
	if err != nil || len(users) > 0 {
		return "", err
	}
	return "No accounts yet, and sign-up is off (the default beyond loopback): nobody can sign in.\nAdd an account with  epicme user add --email you@example.com  or turn sign-up on with --allow-signup.", nil
}

// seedDemo creates the demo accounts with random passwords and a few
// entries, and returns the lines that tell the person at the terminal how
// to sign in. Call it only for a fresh database served on loopback with the
// embedded authorization server: nowhere else may a known account appear.
func seedDemo(ctx context.Context, store epicme.Store, publicURL string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "No accounts yet: demo accounts created (their passwords are shown only now).\n")
	for i, email := range demoAccounts {
		pw := rand.Text()[:16]
		hash, err := password.Hash(pw)
		if err != nil {
			return "", err
		}
		u, err := store.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: email, PasswordHash: hash})
		if err != nil {
			return "", err
		}
		if err := seedDemoJournal(ctx, store, u, i); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "  sign in as %s / %s\n", email, pw)
	}
	fmt.Fprintf(&b, "Account page: %s%s", publicURL, authserver.AccountPath)
	return b.String(), nil
}

func seedDemoJournal(ctx context.Context, store epicme.Store, u *epicme.User, which int) error {
	ptr := func(s string) *string { return &s }
	type demoEntry struct {
		title, content, mood string
	}
	entries := [][]demoEntry{
		{
			{"First day with EpicMe", "Set up my journal and connected it to my assistant.", "curious"},
			{"Morning run", "Five kilometres along the river before work. Cold, bright, worth it.", "energised"},
		},
		{
			{"A friend's first entry", "Only I can read this one, even on the same server.", "calm"},
		},
	}[which]
	tag, err := store.CreateTag(ctx, u.ID, epicme.NewTag{Name: "demo", Description: ptr("Seeded with the demo account")})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := store.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: e.title, Content: e.content, Mood: ptr(e.mood), IsPrivate: true, TagIDs: []int64{tag.ID}}); err != nil {
			return err
		}
	}
	return nil
}
