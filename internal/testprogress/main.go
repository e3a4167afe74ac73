package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of go test -json (test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
	Elapsed    float64
}

type testTime struct {
	name    string
	elapsed float64
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	start := time.Now()
	output := map[string][]string{} // package/test -> output lines
	var slow []testTime
	var failed []string
	var skipped []skip // in order of the first test of each (package, reason)
	passed := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // build errors arrive as plain text
			continue
		}
		key := e.Package + " " + e.Test
		short := strings.TrimPrefix(e.Package, "github.com/docex-dev/docex")
		if short == "" {
			short = "."
		} else {
			short = strings.TrimPrefix(short, "/")
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "output":
			output[key] = append(output[key], e.Output)
		case "pass", "fail", "skip":
			if e.Test != "" {
				if e.Action == "skip" && !strings.Contains(e.Test, "/") {
					skipped = addSkip(skipped, short, e.Test, skipReason(output[key]))
				}
				if e.Action == "fail" {
					fmt.Fprintf(out, "--- FAIL %s %s (%.1fs)\n%s", short, e.Test, e.Elapsed, strings.Join(output[key], ""))
				}
				if e.Action == "pass" && !strings.Contains(e.Test, "/") {
					slow = append(slow, testTime{short + " " + e.Test, e.Elapsed})
				}
				delete(output, key)
				continue
			}
			status := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "--  "}[e.Action]
			note := ""
			if e.Action == "fail" {
				failed = append(failed, short)
				note = " " + strings.TrimSpace(strings.Join(output[key], ""))
				printUnfinished(out, output, e.Package, short)
			} else if e.Action == "skip" {
				note = " (no tests)"
			} else {
				passed++
			}
			if e.Action == "pass" && strings.Contains(strings.Join(output[key], ""), "no tests to run") {
				note = " (no tests)"
			}
			delete(output, key)
			fmt.Fprintf(out, "%s %-40s %6.1fs  (%s since start)%s\n", status, short, e.Elapsed, time.Since(start).Round(time.Second), note)
		}
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].elapsed > slow[j].elapsed })
	if len(slow) > 0 {
		fmt.Fprintf(out, "\nslowest tests:\n")
		for _, s := range slow[:min(8, len(slow))] {
			fmt.Fprintf(out, "  %6.1fs  %s\n", s.elapsed, s.name)
		}
	}
	if len(skipped) > 0 {
		n := 0
		for _, s := range skipped {
			n += len(s.tests)
		}
		fmt.Fprintf(out, "\n%d skipped tests:\n", n)
		for _, s := range skipped {
			names := strings.Join(s.tests[:min(3, len(s.tests))], ", ")
			if len(s.tests) > 3 {
				names += fmt.Sprintf(" and %d more", len(s.tests)-3)
			}
			fmt.Fprintf(out, "  %s %s: %s\n", s.pkg, names, s.reason)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(out, "\nFAILED: %s\n", strings.Join(failed, ", "))
		return 1
	}
	fmt.Fprintf(out, "\n%d packages passed\n", passed)
	return 0
}

// skip is the skipped tests of one package for one reason.
type skip struct {
	pkg, reason string
	tests       []string
}

func addSkip(skipped []skip, pkg, test, reason string) []skip {
	for i := range skipped {
		if skipped[i].pkg == pkg && skipped[i].reason == reason {
			skipped[i].tests = append(skipped[i].tests, test)
			return skipped
		}
	}
	return append(skipped, skip{pkg: pkg, reason: reason, tests: []string{test}})
}

// skipReason is the message a skipped test gave: its last output line
// that is not go test's own "--- SKIP" or "=== RUN" line, without t.Skip's
// "file.go:N: " (so that the tests skipped for one reason are counted
// together).
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return skipLocation.ReplaceAllString(l, "")
	}
	return "(no reason given)"
}

var skipLocation = regexp.MustCompile(`^[\w.-]+\.go:\d+: `)

// unfinishedLines bounds what printUnfinished prints of one test.
const unfinishedLines = 60

// printUnfinished prints the last lines of output of pkg's tests that
// never ended (a package that timed out or crashed: the panic and its
// "running tests:" list arrive as their output) and forgets them.
func printUnfinished(out io.Writer, output map[string][]string, pkg, short string) {
	var keys []string
	for k := range output {
		if strings.HasPrefix(k, pkg+" ") && k != pkg+" " {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines := strings.SplitAfter(strings.Join(output[k], ""), "\n")
		if len(lines) > unfinishedLines {
			lines = append([]string{"    ...\n"}, lines[len(lines)-unfinishedLines:]...)
		}
		fmt.Fprintf(out, "--- UNFINISHED %s %s\n%s", short, strings.TrimPrefix(k, pkg+" "), strings.Join(lines, ""))
		delete(output, k)
	}
}
