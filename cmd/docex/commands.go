package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one CLI command. A command declares its flags by binding
// them to its own variables in flags, and reads them in run (see
// documentCommands for examples); global flags are in c.g.
type command struct {
	path    string // the command words: "doc add"
	args    string // positional arguments, for usage: "BASKET FILE..."
	summary string // one line, lower case, no final period
	help    string // more detail for "docex help PATH" (optional)
	// access says who may run the command: a role of the user context
	// (reader, writer, admin), "operator", or "" for anyone.
	access  string
	minArgs int
	maxArgs int  // -1: unbounded
	plugins bool // the command runs plugins: open the plugin sandbox too
	flags   func(fs *pflag.FlagSet)
	run     func(ctx context.Context, c *cli, args []string) error
}

// commands returns the registry of every command. To add commands, write
// a function returning them in a file of your own (see tenantCommands in
// tenants.go) and add it to this list.
func commands() registry {
	return newRegistry(
		systemCommands(),
		tenantCommands(),
		basketCommands(),
		documentCommands(),
		pluginCommands(),
		auditCommands(),
		verifyCommands(),
		compactCommands(),
		pipelineCommands(),
		mcpCommands(),
	)
}

// registry indexes commands by path; a group is a proper prefix of a
// command path ("doc", "doc meta").
type registry struct {
	byPath map[string]*command
	groups map[string]bool
}

func newRegistry(lists ...[]*command) registry {
	r := registry{byPath: map[string]*command{}, groups: map[string]bool{}}
	for _, list := range lists {
		for _, cmd := range list {
			if r.byPath[cmd.path] != nil {
				panic("docex: command registered twice: " + cmd.path)
			}
			r.byPath[cmd.path] = cmd
			words := strings.Fields(cmd.path)
			for i := 1; i < len(words); i++ {
				r.groups[strings.Join(words[:i], " ")] = true
			}
		}
	}
	return r
}

func (r registry) isGroup(path string) bool { return r.groups[path] }

// pathsOfLength returns the command and group paths of n words.
func (r registry) pathsOfLength(n int) []string {
	var out []string
	for p := range r.groups {
		if len(strings.Fields(p)) == n {
			out = append(out, p)
		}
	}
	for p := range r.byPath {
		if len(strings.Fields(p)) == n {
			out = append(out, p)
		}
	}
	return out
}

// sorted returns the commands under group ("" for all), by path.
func (r registry) sorted(group string) []*command {
	var out []*command
	for p, cmd := range r.byPath {
		if group == "" || strings.HasPrefix(p, group+" ") {
			out = append(out, cmd)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// Help texts shared by the usage screens.
const (
	accessHelp = `Who may run a command (in brackets):
  reader, writer, admin   roles of the user context, given with --roles; the
                          user context is --user, --tenant and --roles.
                          reader reads (documents, pipelines, jobs, lineage);
                          writer also changes documents and metadata, runs
                          plugins and pipelines, and retries or cancels jobs;
                          admin also deletes baskets, reads and prunes the
                          audit log, manages plugins, and defines, deletes,
                          binds and unbinds pipelines.
  operator                whoever runs docex with access to docex.yaml and
                          its storage: no user context is needed; --user, if
                          given, is recorded as the actor in the system audit
                          log. Operators provision tenants and run init, gc
                          and workers.`
	exitHelp = `Exit codes: 0 ok, 1 internal error (also no room on the host for a plugin), 2 usage
or invalid input, 3 not found, 4 denied, 5 conflict, 6 plugin failed, 130 interrupted
(Ctrl-C, SIGTERM).`
)

// usage lists the commands (of group, or all) with the global flags.
func usage(w io.Writer, r registry, group string) {
	fmt.Fprintf(w, "docex: a secure, multi-tenant document execution engine\n\n")
	fmt.Fprintf(w, "Usage: docex COMMAND [ARGUMENTS] [FLAGS]\n       docex help COMMAND   describe a command, its flags and examples\n\nCommands:\n")
	var rows [][]string
	prev := ""
	for _, cmd := range r.sorted(group) {
		if first, _, _ := strings.Cut(cmd.path, " "); first != prev {
			if prev != "" {
				rows = append(rows, nil)
			}
			prev = first
		}
		access := ""
		if cmd.access != "" {
			access = "[" + cmd.access + "]"
		}
		rows = append(rows, []string{strings.TrimSpace(cmd.path + " " + cmd.args), cmd.summary, access})
	}
	writeTable(w, rows)
	fmt.Fprintf(w, "\nGlobal flags (every command, anywhere on the line; a flag overrides its variable):\n")
	rows = rows[:0]
	for _, g := range globalFlags {
		rows = append(rows, []string{"--" + strings.TrimSpace(g.name+" "+g.arg), g.usage})
	}
	rows = append(rows, []string{"--help, -h", "show help"}, []string{"--version", "print the version"})
	writeTable(w, rows)
	fmt.Fprintf(w, "\n%s\n\n%s\n", accessHelp, exitHelp)
}

// writeTable writes rows as aligned, indented columns without trailing
// spaces; a nil row is a blank line.
func writeTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(cell))
		}
	}
	for _, row := range rows {
		if row == nil {
			fmt.Fprintln(w)
			continue
		}
		line := ""
		for i, cell := range row {
			if i < len(row)-1 {
				cell += strings.Repeat(" ", widths[i]-len(cell)+2)
			}
			line += cell
		}
		fmt.Fprintf(w, "  %s\n", strings.TrimRight(line, " "))
	}
}

// commandUsage describes one command: its own flags, then the global
// flags in one line.
func commandUsage(w io.Writer, cmd *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: docex %s\n\n%s.\n", strings.TrimSpace(cmd.path+" "+cmd.args), upperFirst(cmd.summary))
	if cmd.access != "" {
		fmt.Fprintf(w, "Who: %s (see \"docex help\" for what each role may do).\n", cmd.access)
	}
	if strings.Contains(cmd.access, "operator") {
		fmt.Fprintf(w, "An operator is whoever runs docex with access to docex.yaml and its storage:\nno user context is needed (--user, if given, is recorded as the actor).\n")
	}
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	if own := fs.FlagUsages(); own != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", own)
	}
	names := make([]string, len(globalFlags))
	for i, g := range globalFlags {
		names[i] = "--" + g.name
	}
	fmt.Fprintf(w, "\nGlobal flags: %s (see docex help).\n", strings.Join(names, ", "))
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
