package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errFlagParse marks a command line the flag package refused; it has already
// said why on stderr.
var errFlagParse = errors.New("bad flags")

// flagSet is a flag.FlagSet whose flags may also come from environment
// variables. Precedence: command line, then environment, then default.
type flagSet struct {
	*flag.FlagSet
	name  string
	about string
	envs  map[string]string // flag name -> environment variable
}

// newFlagSet returns the flags of "epicme <name>"; about is the paragraph the
// help output shows above the flags.
func newFlagSet(name, about string, e env) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("epicme "+name, flag.ContinueOnError), name: name, about: about, envs: map[string]string{}}
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errFlagParse
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
