// Command skipsummary reads the output of "go test -json" on stdin, writes
// what plain "go test" would have written (a line per package, and the
// output of failing tests), and ends with the tests that were skipped,
// grouped by their message, which says how to enable them. test.sh uses
// it, so that a run says what it did not test.
//
//	go test -json ./... | go run ./internal/skipsummary
//
// It exits 0: the exit status of the run is go test's.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// event is one line of "go test -json" (see "go doc test2json").
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is the tests skipped with one message.
type skip struct {
	message string
	tests   []string
}

// location is the "file_test.go:12: " that t.Skip puts before its message.
var location = regexp.MustCompile(`^\s*\S+\.go:\d+: `)

func main() {
	if err := summarize(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "skipsummary:", err)
	}
}

func summarize(in io.Reader, out io.Writer) error {
	output := map[string][]string{} // package + test -> its output lines
	var order []string              // the keys of output, first seen first
	var skips []*skip
	byMessage := map[string]*skip{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// Not an event (go vet or the build said something): pass it on.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "build-output":
			fmt.Fprint(out, ev.Output)
		case ev.Action == "output" && ev.Test == "":
			// The package's own lines: "ok  pkg 1.2s", "FAIL", panics.
			// Plain go test does not show the PASS of a passing package.
			if ev.Output != "PASS\n" && !strings.HasPrefix(ev.Output, "=== ") {
				fmt.Fprint(out, ev.Output)
			}
		case ev.Action == "output":
			if _, ok := output[key]; !ok {
				order = append(order, key)
			}
			output[key] = append(output[key], ev.Output)
		case ev.Action == "fail" && ev.Test != "":
			printOutput(out, output[key])
			delete(output, key)
		case ev.Action == "skip" && ev.Test != "":
			msg := skipMessage(output[key])
			s := byMessage[msg]
			if s == nil {
				s = &skip{message: msg}
				byMessage[msg] = s
				skips = append(skips, s)
			}
			s.tests = append(s.tests, strings.TrimPrefix(ev.Package, "github.com/epicme/epicme/")+" "+ev.Test)
			delete(output, key)
		case ev.Action == "pass":
			delete(output, key)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// Tests that never finished (a timeout or a crash killed the test
	// binary): their output is how to find out why.
	for _, key := range order {
		printOutput(out, output[key])
	}
	report(out, skips)
	return nil
}

// printOutput writes a test's output as plain go test shows it.
func printOutput(out io.Writer, lines []string) {
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "=== ") {
			fmt.Fprint(out, l)
		}
	}
}

// skipMessage is what the test said when it skipped, without the file and
// line of the call.
func skipMessage(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		msg = append(msg, strings.TrimSpace(location.ReplaceAllString(l, "")))
	}
	if len(msg) == 0 {
		return "(no message)"
	}
	return strings.Join(msg, " ")
}

// report lists the skips, the largest group first; a subtest skipped with
// the same message as others is counted, not named.
func report(out io.Writer, skips []*skip) {
	if len(skips) == 0 {
		fmt.Fprintln(out, "\nNo test was skipped.")
		return
	}
	n := 0
	for _, s := range skips {
		n += len(s.tests)
	}
	slices.SortStableFunc(skips, func(a, b *skip) int { return len(b.tests) - len(a.tests) })
	fmt.Fprintf(out, "\n%d tests skipped; to run them:\n", n)
	for _, s := range skips {
		names := s.tests
		more := ""
		if len(names) > 3 {
			names, more = names[:3], fmt.Sprintf(", and %d more", len(s.tests)-3)
		}
		fmt.Fprintf(out, "  %s\n      %d skipped: %s%s\n", s.message, len(s.tests), strings.Join(names, ", "), more)
	}
}
