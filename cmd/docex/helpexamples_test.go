package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestUsageLinesHaveNoDoubleSpace: a command without arguments said
// "usage: docex version  (see docex help version)" when given one, two
// spaces where its (empty) arguments went. No usage line of any command
// has two spaces in a row now.
func TestUsageLinesHaveNoDoubleSpace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for path, cmd := range commands().byPath {
		var lines [][]string
		if cmd.maxArgs >= 0 {
			lines = append(lines, append(strings.Fields(path), slices.Repeat([]string{"x"}, cmd.maxArgs+1)...))
		}
		if cmd.minArgs > 0 {
			lines = append(lines, strings.Fields(path))
		}
		for _, args := range lines {
			r := h.want(exitInvalid, args...)
			if !strings.Contains(r.stderr, "usage: docex "+path) || strings.Contains(r.stderr, "  ") {
				t.Errorf("docex %s: stderr %q, want a usage line without two spaces in a row", strings.Join(args, " "), r.stderr)
			}
			// A word too many is named (before 2026-12-08, "docex tenant
			// create acme --display-name Acme Corp" did not say "Corp").
			if len(args) > len(strings.Fields(path)) && !strings.Contains(r.stderr, `unexpected argument "x"`) {
				t.Errorf("docex %s: stderr %q, want the word too many named", strings.Join(args, " "), r.stderr)
			}
		}
		usage, _, _ := strings.Cut(h.ok("help", path).stdout, "\n")
		if strings.Contains(usage, "  ") || strings.HasSuffix(usage, " ") {
			t.Errorf("docex help %s: %q", path, usage)
		}
	}
}

// TestEveryHelpHasAnExample: the README says "docex help COMMAND
// describes one with examples", but 30 of 44 commands had no example.
// Every command's help has an Example(s) section now, each example line
// names an existing command, with flags that command defines and a number
// of arguments it accepts, and one example at least is of the command
// itself.
func TestEveryHelpHasAnExample(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	reg := commands()
	for path := range reg.byPath {
		help := h.ok("help", path).stdout
		examples := exampleLines(help)
		if len(examples) == 0 {
			t.Errorf("docex help %s has no Example section:\n%s", path, help)
			continue
		}
		own := false
		for _, line := range examples {
			ex, err := checkExample(line)
			if err != "" {
				t.Errorf("docex help %s: example %q: %s", path, line, err)
			}
			own = own || ex == path
		}
		if !own {
			t.Errorf("docex help %s: no example of docex %s itself in %q", path, path, examples)
		}
	}
	// The checker catches what it is for.
	for line, want := range map[string]string{
		"docex doc add invoices a.pdf --metta k=v": "unknown flag",
		"docex doc frobnicate x":                   "no command",
		"docex doc get":                            "arguments",
		"docex version extra":                      "arguments",
		"ls -l":                                    "not a docex command",
	} {
		if _, err := checkExample(line); !strings.Contains(err, want) {
			t.Errorf("checkExample(%q) = %q, want %q", line, err, want)
		}
	}
}

// exampleLines returns the command lines of help's Example: or Examples:
// section: its indented lines up to the first blank one.
func exampleLines(help string) []string {
	var out []string
	in := false
	for line := range strings.SplitSeq(help, "\n") {
		switch {
		case line == "Example:" || line == "Examples:":
			in = true
		case in && strings.HasPrefix(line, "  ") && strings.TrimSpace(line) != "":
			out = append(out, strings.TrimSpace(line))
		case in:
			return out
		}
	}
	return out
}

// checkExample parses one example line as the CLI would: leading
// VAR=value assignments, then docex, the command's words, and its
// arguments and flags (up to a shell comment, pipe or redirection). It
// returns the command's path and "" or what is wrong.
func checkExample(line string) (string, string) {
	words := shellWords(line)
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "docex" {
		return "", "not a docex command"
	}
	words = words[1:]
	reg := commands()
	var cmd *command
	n := 0
	for i := range words {
		if c := reg.byPath[strings.Join(words[:i+1], " ")]; c != nil {
			cmd, n = c, i+1
		}
	}
	if cmd == nil {
		return "", "no command " + strings.Join(words, " ")
	}
	fs := pflag.NewFlagSet(cmd.path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var g globals
	addGlobals(fs, &g, func(string) string { return "" })
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(words[n:]); err != nil {
		return cmd.path, err.Error()
	}
	if a := len(fs.Args()); a < cmd.minArgs || (cmd.maxArgs >= 0 && a > cmd.maxArgs) {
		return cmd.path, "wrong number of arguments: " + strings.Join(fs.Args(), " ")
	}
	return cmd.path, ""
}

// shellWords splits line into words as a shell would, quotes removed,
// stopping at a comment, a pipe or a redirection.
func shellWords(line string) []string {
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case !in && (r == '#' || r == '|' || r == '>' || r == '<'):
			return words
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
