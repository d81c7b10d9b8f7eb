package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/sqlite"
)

// version is what the in-process server reports in its initialize answer.
const version = "bench"

// The files of an EpicMe data directory this command reads: the names
// "epicme serve" gives them.
const (
	databaseFile = "epicme.db"
	secretFile   = "secret.key"
	kekFile      = "keys.kek"
	secretLen    = 32
)

// env is what a command may touch of the outside world; tests pass their own.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// run runs one subcommand and maps its error to an exit code: 2 for a
// mistake on the command line, 1 for anything else.
func run(ctx context.Context, args []string, e env) int {
	err := runBench(ctx, args, e)
	var ue *usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "epicme-bench: %s\nRun \"epicme-bench --help\" for usage.\n", ue.msg)
		return 2
	case errors.Is(err, errFlagParse):
		return 2
	}
	fmt.Fprintf(e.stderr, "epicme-bench: %v\n", err)
	return 1
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errFlagParse: the flag package has already printed the problem.
var errFlagParse = errors.New("bad flags")

// flagSet is a flag.FlagSet that writes its usage to the command's stderr.
type flagSet struct {
	*flag.FlagSet
	about string
}

func newFlagSet(name, about string, e env) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("epicme-bench "+name, flag.ContinueOnError), about: about}
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n%s\n\nFlags:\n", fs.Name(), fs.about)
		fs.PrintDefaults()
	}
	return fs
}

func (fs *flagSet) parse(args []string, _ env, allowArgs bool) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
	}
	if !allowArgs && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// dataFlags name the data directory of the fixture and the log level.
type dataFlags struct {
	dataDir  string
	logLevel string
}

func (c *dataFlags) register(fs *flagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "", "`directory` of the fixture: an EpicMe data directory (required)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error (logs go to stderr)")
}

// resolveDataDir makes the data directory (mode 0700, as epicme does).
func resolveDataDir(dir string, _ env) (string, error) {
	if dir == "" {
		return "", usagef("--data-dir is required: the fixture is large, keep it outside the repository, e.g. /tmp/epicme-bench")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating data directory: %w", err)
	}
	return dir, nil
}

// openStore opens (and migrates) the fixture's database.
func openStore(ctx context.Context, dir string) (*sqlite.DB, error) {
	return sqlite.Open(ctx, filepath.Join(dir, databaseFile))
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q must be debug, info, warn or error", level)
	}
	return slog.New(httpserver.LogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))), nil
}

// loadSecret and loadKEK read the data directory's keys, or make them the
// way "epicme serve" would on its first start (mode 0600), so that the
// epicme process the peers harness starts on the same directory uses them.
func loadSecret(dir string) ([]byte, error) {
	return loadKey(filepath.Join(dir, secretFile), secretLen)
}

func loadKEK(dir string) ([]byte, error) {
	return loadKey(filepath.Join(dir, kekFile), authserver.KEKSize)
}

func loadKey(path string, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != size {
			return nil, fmt.Errorf("%s holds %d bytes, want %d", path, len(b), size)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}
