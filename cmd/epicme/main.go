// Command epicme runs EpicMe, a private multi-user journal served over the
// Model Context Protocol.
//
// One binary, one file per command:
//
//	epicme serve       serve MCP over HTTP (serve.go)
//	epicme stdio       serve MCP on stdin/stdout as one local user (stdio.go)
//	epicme user        add and list local accounts (user.go)
//	epicme grant       list and revoke grants of the embedded authorization server (grant.go)
//	epicme client      manage OAuth clients of the embedded authorization server (client.go)
//	epicme authserver  serve only the authorization server (authserver.go)
//	epicme migrate     apply database migrations (migrate.go)
//	epicme backup      copy the SQLite database while serving (backup.go)
//	epicme version     print the version (version.go)
//
// Exit status: 0 success, 1 the command failed (a port in use, an unknown
// account, a database that cannot be opened), 2 the command line was wrong.
//
// Run "epicme <command> --help" for each command's flags. Every common flag
// can also be set by an EPICME_* environment variable; a flag on the command
// line wins over the variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/epicme/epicme"
)

// version is the program's version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// env is what a command may touch of the outside world. Tests pass their
// own, so that commands run in-process without real stdio or environment.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	// SIGINT and SIGTERM cancel the context; commands that serve shut down
	// gracefully when it is done.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	tuneGC(os.Getenv)
	code := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// command is one subcommand of epicme.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"serve", "serve MCP over HTTP", runServe},
		{"stdio", "serve MCP on stdin/stdout as one local user", runStdio},
		{"user", "manage local accounts (user add, list, reset-password, disable)", runUser},
		{"grant", "see and revoke what users allowed applications (grant list, revoke)", runGrant},
		{"client", "manage OAuth clients of the embedded authorization server (client add, list, remove)", runClient},
		{"idp", "trust enterprise identity providers for enterprise-managed authorization (idp add, list, remove)", runIdP},
		{"authserver", "serve only the OAuth authorization server (split deployment)", runAuthServer},
		{"migrate", "apply database migrations and print the schema version", runMigrate},
		{"backup", "copy the SQLite database to a file while serving (online, consistent)", runBackup},
		{"version", "print the version", runVersion},
	}
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(e.stderr, c.name, c.run(ctx, args[1:], e))
		}
	}
	fmt.Fprintf(e.stderr, "epicme: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, "EpicMe: a private journal served over the Model Context Protocol.\n\nUsage:\n  epicme <command> [flags]\n\nCommands:\n")
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"epicme <command> --help\" for the flags of a command.\n")
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitCode reports err on stderr and maps it to an exit code. Application
// errors show their message; anything else shows the whole chain, since the
// person at the terminal is the operator. Never a stack trace.
func exitCode(stderr io.Writer, cmd string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "epicme %s: %s\nRun \"epicme %s --help\" for usage.\n", cmd, plain(cmd, ue.msg), cmd)
		return exitUsage
	}
	msg := err.Error()
	var ae *epicme.Error
	if errors.As(err, &ae) && ae.Code != epicme.EINTERNAL {
		msg = ae.Message
	}
	fmt.Fprintf(stderr, "epicme %s: %s\n", cmd, plain(cmd, msg))
	return exitError
}

// plain drops the prefix a package puts before its errors ("authserver:
// issuer …", "backup: … exists"): after "epicme <command>:" it would be a
// second prefix naming code the reader never sees.
func plain(cmd, msg string) string {
	for _, p := range []string{cmd, "authserver", "auth", "sqlite", "postgres", "mcpserver", "httpserver", "epicme"} {
		if rest, ok := strings.CutPrefix(msg, p+": "); ok {
			return rest
		}
	}
	return msg
}
