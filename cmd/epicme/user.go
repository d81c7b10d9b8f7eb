package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/password"
	"golang.org/x/term"
)

const userAbout = `Manage local accounts (accounts EpicMe itself holds, as opposed to users of an
external authorization server).

Subcommands:
  epicme user add --email EMAIL [--password PASSWORD]
  epicme user list
  epicme user reset-password --email EMAIL [--password PASSWORD | --generate]
  epicme user disable --email EMAIL [--enable]`

const userAddAbout = `Create a local account. Without --password, the password is read from stdin (so
it stays out of the process list and shell history): on a terminal it is asked
for and not shown as you type; from a pipe it is the first line:

  printf '%s\n' "$PASSWORD" | epicme user add --email me@example.com

The password is stored as an Argon2id hash, never in clear.`

func runUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing subcommand: add, list, reset-password or disable")
	}
	switch args[0] {
	case "add":
		return runUserAdd(ctx, args[1:], e)
	case "list":
		return runUserList(ctx, args[1:], e)
	case "reset-password":
		return runUserResetPassword(ctx, args[1:], e)
	case "disable":
		return runUserDisable(ctx, args[1:], e)
	case "-h", "--help", "-help", "help":
		fmt.Fprintf(e.stdout, "Usage: epicme user <add|list|reset-password|disable> [flags]\n\n%s\n", userAbout)
		return nil
	}
	return usagef("unknown subcommand %q: want add, list, reset-password or disable", args[0])
}

func runUserAdd(ctx context.Context, args []string, e env) error {
	var (
		data  storeFlags
		email string
		pw    string
	)
	fs := newFlagSet("user add", userAddAbout, e)
	data.register(fs)
	fs.StringVar(&email, "email", "", "`email` of the new account (required)")
	fs.StringVar(&pw, "password", "", "`password` of the new account; read from stdin when omitted")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if email == "" {
		return usagef("--email is required")
	}
	in := epicme.NewUser{Issuer: epicme.LocalIssuer, Email: email}
	if err := in.Validate(); err != nil {
		return err
	}
	if pw == "" {
		var err error
		pw, err = readPassword(e, fmt.Sprintf("Password for %s (at least %d characters): ", in.Email, epicme.MinPasswordLen))
		if err != nil {
			return err
		}
		if pw == "" {
			return usagef("no password: give --password or one line on stdin")
		}
	}
	if err := epicme.ValidatePassword(pw); err != nil {
		return err
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	in.PasswordHash = hash

	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	store, _, err := openJournal(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.CreateUser(ctx, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created local account %s (id %s).\n", u.Email, u.ID)
	return nil
}

func runUserList(ctx context.Context, args []string, e env) error {
	var (
		data storeFlags
	)
	fs := newFlagSet("user list", "List every account, oldest first.", e)
	data.register(fs)
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	store, _, err := openJournal(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	users, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tISSUER\tCREATED\tSTATUS")
	for _, u := range users {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		email := u.Email
		if email == "" {
			email = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, email, u.Issuer, u.CreatedAt.UTC().Format(time.RFC3339), status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(users) == 0 {
		fmt.Fprintln(e.stderr, "No accounts yet; create one with: epicme user add --email EMAIL")
	}
	return nil
}

// readPassword reads one line from stdin. On a terminal it shows prompt on
// stderr and turns echo off while the person types, so that the password
// stays off the screen; from a pipe it reads the line as it comes.
func readPassword(e env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		// The Enter the person pressed was not echoed either.
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password from the terminal: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", nil
	}
	return strings.TrimRight(line, "\r\n"), nil
}
