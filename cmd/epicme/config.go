package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/sqlite"
)

// Files inside the data directory.
const (
	databaseFile = "epicme.db"
	secretFile   = "secret.key"
	secretLen    = 32
)

// dataFlags are --data-dir and --log-level (storeFlags adds --database-url).
type dataFlags struct {
	dataDir  string
	logLevel string
}

func (c *dataFlags) register(fs *flagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "", "`directory` holding the database (epicme.db) and the secret key (secret.key); created with mode 0700.\nDefault: $XDG_DATA_HOME/epicme, else ~/.local/share/epicme")
	fs.bindEnv("data-dir", "EPICME_DATA_DIR")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error (logs go to stderr)")
	fs.bindEnv("log-level", "EPICME_LOG_LEVEL")
}

// httpFlags are the flags of commands that serve HTTP.
type httpFlags struct {
	addr      string
	publicURL string
}

func (c *httpFlags) register(fs *flagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on")
	fs.bindEnv("addr", "EPICME_ADDR")
	fs.StringVar(&c.publicURL, "public-url", "", "`URL` clients use to reach this server, without the /mcp path; set it when a proxy\nsits in front, and to an https URL when --addr is not loopback.\nDefault: http://127.0.0.1:8080 (http:// and the host and port of --addr)")
	fs.bindEnv("public-url", "EPICME_PUBLIC_URL")
}

// validateAddr checks that addr is host:port.
func validateAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef("--addr %q must be host:port, e.g. 127.0.0.1:8080", addr)
	}
	return nil
}

// normalizePublicURL checks --public-url and drops a trailing slash; ""
// stays "" (the caller derives it from the bound address).
func normalizePublicURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("--public-url %q must be an absolute http or https URL, e.g. https://journal.example.com", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", usagef("--public-url %q must not carry a query, a fragment or credentials", raw)
	}
	if base, ok := strings.CutSuffix(strings.TrimSuffix(u.Path, "/"), httpserver.MCPPath); ok {
		u.Path = base
		return "", usagef("--public-url %q names the MCP endpoint; give the server's URL without %s: --public-url %s", raw, httpserver.MCPPath, strings.TrimSuffix(u.String(), "/"))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// resolveDataDir picks the data directory and creates it (mode 0700: it
// holds the journal and the signing secret).
func resolveDataDir(flagValue string, e env) (string, error) {
	dir, chosen := flagValue, "--data-dir"
	if dir == "" {
		chosen = "the default data directory"
		if x := e.getenv("XDG_DATA_HOME"); x != "" {
			dir = filepath.Join(x, "epicme")
		} else if h := e.getenv("HOME"); h != "" {
			dir = filepath.Join(h, ".local", "share", "epicme")
		} else {
			return "", usagef("cannot choose a data directory: set --data-dir, EPICME_DATA_DIR, XDG_DATA_HOME or HOME")
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot create %s %s: %v; choose a directory you can write with --data-dir DIR (or EPICME_DATA_DIR)", chosen, dir, err)
	}
	return dir, nil
}

// openStore opens (and migrates) the database in the data directory.
func openStore(ctx context.Context, dir string) (*sqlite.DB, error) {
	return sqlite.Open(ctx, filepath.Join(dir, databaseFile))
}

// newLogger returns a text logger on w at the given level, adding request
// ids to records logged within a request.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q must be debug, info, warn or error", level)
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(httpserver.LogHandler(h)), nil
}

// loadSecret returns the HMAC secret of the data directory, creating it on
// first run. It signs the requestState of multi round-trip MCP requests, so
// it must survive restarts (a client may answer a question after one) and
// never leave the machine: mode 0600.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != secretLen {
			return nil, fmt.Errorf("%s holds %d bytes, want %d; delete it to make a new one (pending multi-step requests will fail once)", path, len(b), secretLen)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	b = make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// O_EXCL: if two processes start at once, one writes and the other
	// reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadSecret(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("creating secret: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	return b, nil
}

// isLoopbackListen reports whether addr's host is a loopback address (or
// "localhost"). An empty host means every interface and is not loopback.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && httpserver.IsLoopbackHost(host)
}

// freshDatabase reports whether the data directory has no SQLite database yet.
func freshDatabase(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, databaseFile))
	return errors.Is(err, fs.ErrNotExist)
}
