package main

import (
	"context"
	"fmt"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/mcpserver"
)

const stdioAbout = `Serve MCP on stdin and stdout as one local account, with all scopes. This is
how a desktop client launches EpicMe as a subprocess; it trusts whoever
starts the process, exactly as that account's files are trusted. Logs go to
stderr only: stdout carries the protocol.

Example client configuration:
  {"command": "epicme", "args": ["stdio", "--user", "me@example.com"]}`

func runStdio(ctx context.Context, args []string, e env) error {
	var (
		data  storeFlags
		email string
	)
	fs := newFlagSet("stdio", stdioAbout, e)
	data.register(fs)
	secretKey := secretSource()
	secretKey.register(fs)
	fs.StringVar(&email, "user", "", "`email` of the local account to act as (required; see epicme user add)")
	fs.bindEnv("user", "EPICME_USER")
	if err := fs.parse(args, e, false); err != nil {
		return err
	}
	if email == "" {
		return usagef("--user is required: the email of a local account (create one with: epicme user add --email EMAIL)")
	}
	logger, err := newLogger(e.stderr, data.logLevel)
	if err != nil {
		return err
	}
	dir, err := resolveDataDir(data.dataDir, e)
	if err != nil {
		return err
	}
	secret, err := secretKey.load(dir)
	if err != nil {
		return err
	}
	store, _, err := openJournal(ctx, data.url, dir)
	if err != nil {
		return err
	}
	defer store.Close()

	u, err := store.LocalUserByEmail(ctx, email)
	if epicme.ErrorCode(err) == epicme.ENOTFOUND {
		return fmt.Errorf("no local account has the email %q; create it with: epicme user add --email %s", email, email)
	}
	if err != nil {
		return err
	}
	caller := &epicme.Caller{User: u, Scopes: epicme.Scopes(epicme.AllScopes)}
	callers := epicme.CallerResolverFunc(func(context.Context) (*epicme.Caller, error) { return caller, nil })

	mcp, err := mcpserver.New(store, callers, mcpserver.Options{Logger: logger, Secret: secret, Version: version})
	if err != nil {
		return err
	}
	defer mcp.Close()
	logger.Info("serving MCP on stdio", "user", u.Email, "data_dir", dir)
	if err := mcp.ServeStdio(ctx, e.stdin, e.stdout); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
