package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a flag.FlagSet whose flags may also come from environment
// variables. Precedence: command line, then environment, then default.
type flagSet struct {
	*flag.FlagSet
	name  string
	about string
	envs  map[string]string // flag name -> environment variable
	// getenv reads the environment, for flags that take more than one
	// variable.
	getenv func(string) string
}

// newFlagSet returns the flags of "epicme <name>"; about is the paragraph the
// help output shows above the flags.
func newFlagSet(name, about string, e env) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("epicme "+name, flag.ContinueOnError), name: name, about: about, envs: map[string]string{}, getenv: e.getenv}
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fs.printUsage(fs.Output()) }
	return fs
}

// bindEnv makes the environment variable v a source of the flag name.
func (fs *flagSet) bindEnv(name, v string) { fs.envs[name] = v }

// parse parses args, then fills every flag not given on the command line
// from its environment variable, if that is set. Positional arguments are
// refused unless allowArgs.
func (fs *flagSet) parse(args []string, e env, allowArgs bool) error {
	// Help goes to stdout when asked for, so that "epicme serve --help | less"
	// works; errors go to stderr.
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.printUsage(e.stdout)
			return flag.ErrHelp
		}
	}
	// The flag package would print the whole usage after a mistake; one
	// line naming it is easier to act on.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fs.parseError(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range fs.envs {
		if set[name] {
			continue
		}
		val := e.getenv(v)
		if val == "" {
			continue
		}
		if err := fs.Set(name, val); err != nil {
			return usagef("invalid value %q in %s: %v", val, v, err)
		}
	}
	if !allowArgs && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// printUsage writes the help text: what the command does, then every flag
// with its environment variable and default.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: epicme %s [flags]\n\n%s\n", fs.name, strings.TrimSpace(fs.about))
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		var extra []string
		if v, ok := fs.envs[f.Name]; ok {
			extra = append(extra, "env "+v)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			extra = append(extra, "default "+f.DefValue)
		}
		if len(extra) > 0 {
			usage += " (" + strings.Join(extra, "; ") + ")"
		}
		fmt.Fprintf(w, "      %s\n", strings.ReplaceAll(usage, "\n", "\n      "))
	})
}

// flagSynonyms maps names people try from other servers to the flag that
// does that here.
var flagSynonyms = map[string]string{
	"port": "addr", "host": "addr", "listen": "addr", "bind": "addr", "address": "addr",
	"url": "public-url", "base-url": "public-url", "external-url": "public-url",
	"data": "data-dir", "dir": "data-dir", "datadir": "data-dir",
	"db": "database-url", "database": "database-url", "dsn": "database-url",
	"verbose": "log-level", "debug": "log-level", "v": "log-level",
}

// parseError rewrites an error of the flag package as a usage error in
// this program's words: flags spelled --name, and an unknown flag with the
// closest real one.
func (fs *flagSet) parseError(err error) error {
	const unknown = "flag provided but not defined: -"
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, unknown); ok {
		if near := fs.closest(name); near != "" {
			return usagef("unknown flag --%s (did you mean --%s?)", name, near)
		}
		return usagef("unknown flag --%s", name)
	}
	msg = strings.Replace(msg, "flag -", "flag --", 1)
	msg = strings.Replace(msg, "argument: -", "argument: --", 1)
	return usagef("%s", msg)
}

// closest returns the defined flag nearest to name: a known synonym, else
// the one within a few edits, else "".
func (fs *flagSet) closest(name string) string {
	name = strings.ToLower(strings.TrimLeft(name, "-"))
	if s, ok := flagSynonyms[name]; ok && fs.Lookup(s) != nil {
		return s
	}
	best, bestD := "", len(name)/2+1
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
