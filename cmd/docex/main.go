package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/internal/fdlimit"
	_ "github.com/docex-dev/docex/internal/sdkenv" // MCPGODEBUG out before the MCP SDK reads it
	"github.com/docex-dev/docex/internal/spell"
	"github.com/spf13/pflag"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stop := watchSignals(sigs, os.Stderr, hasFlag(os.Args[1:], "--json"), os.Exit)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	stop()
	os.Exit(exitCode(err))
}

// watchSignals returns a context cancelled at the first signal of sigs
// (SIGINT, SIGTERM): the command stops as it says (a worker releases the
// jobs it has not started and lets running ones finish within
// --shutdown-timeout). A second signal does not wait for that stop: it
// writes an interrupted error on stderr (JSON with --json) and calls
// exit(130) at once, as a kill would: what was not committed is not
// kept, and the jobs a worker held run again once their lease expired.
// Before, a second signal was ignored. stop ends the watch.
func watchSignals(sigs <-chan os.Signal, stderr io.Writer, json bool, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			c := &cli{stderr: stderr, g: globals{json: json}}
			c.printError(docex.Errorf(docex.ErrInterrupted, "second %s: exiting at once, not waiting for the stop the first one began: what was not committed is not kept, and the jobs a worker held run again once their lease expired", signalName(s)))
			exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-watched
		cancel()
	}
}

// signalName names s as the documentation does: SIGINT (Ctrl-C), SIGTERM.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// run is the whole CLI: it parses args, runs the command and returns its
// error; main maps the error to an exit code. It writes results to stdout
// and diagnostics to stderr, and reads the environment only through the
// process's os.Getenv. MCPGODEBUG is not in it: package sdkenv took it out
// as the process started, before the MCP SDK read it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, stdout, stderr, os.Getenv)
}

func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return runIO(ctx, args, os.Stdin, stdout, stderr, getenv)
}

// runIO is runEnv with a standard input (docex mcp serves on it).
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	defer func() {
		if err != nil && c.sys != nil {
			// A write refused for the content store's claim marker
			// (engine: the first write of a process) names the key
			// as gc and verify do.
			err = claimErr(c.sys.file, err)
		}
		// Whatever layer saw EMFILE or ENFILE: too_many_open_files, exit 1.
		err = fdlimit.Wrap(err)
		c.close()
		if errors.Is(err, errHelp) {
			err = nil
			return
		}
		if err != nil && ctx.Err() != nil {
			err = interrupted(c.cmd, err)
		}
		if err != nil {
			c.printError(err)
		}
	}()
	reg := commands()
	helpWord := false
	// "docex help [COMMAND...]" is "docex [COMMAND...] --help"; "docex
	// help help" describes help itself, which the top-level usage does.
	for i := firstWord(args); i >= 0 && args[i] == "help"; i = firstWord(args) {
		args = append(append([]string(nil), args[:i]...), args[i+1:]...)
		helpWord = true
	}
	if helpWord {
		args = append(args, "--help")
	}
	words, rest := commandWords(args, reg.isGroup)
	c.g.json = hasFlag(rest, "--json")
	path := strings.Join(words, " ")
	cmd := reg.byPath[path]
	if cmd == nil {
		return c.noCommand(reg, path, rest)
	}
	c.cmd = cmd
	fs := pflag.NewFlagSet("docex "+path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	fs.SortFlags = false
	addGlobals(fs, &c.g, getenv)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(rest); err != nil {
		return docex.Errorf(errUsage, "%s: %v%s (see docex help %s)", path, err, flagHint(fs, err), path)
	}
	// --roles " admin,writer ": as DOCEX_ROLES, each role is trimmed
	// and empty ones are dropped.
	c.g.roles = splitList(strings.Join(c.g.roles, ","))
	if c.g.help {
		// A word after the command that cannot be one of its arguments
		// ("docex help" takes command words only; a command that takes
		// no arguments takes none) is an unknown command, as a word
		// after a group is.
		if pos := fs.Args(); len(pos) > 0 && (helpWord || cmd.maxArgs == 0) {
			return unknownCommand(reg, path+" "+pos[0])
		}
		commandUsage(stdout, cmd, fs)
		return errHelp
	}
	pos := fs.Args()
	if cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs {
		// Name the word too many: often the second word of an unquoted
		// value (--display-name Acme Corp).
		return docex.Errorf(errUsage, "usage: docex %s: unexpected argument %q (a value with spaces needs quotes) (see docex help %s)",
			strings.TrimSpace(path+" "+cmd.args), pos[cmd.maxArgs], path)
	}
	if len(pos) < cmd.minArgs {
		return docex.Errorf(errUsage, "usage: docex %s (see docex help %s)", strings.TrimSpace(path+" "+cmd.args), path)
	}
	return cmd.run(ctx, c, pos)
}

// noCommand handles a command line that names no command: "docex",
// "docex --help", "docex --version", "docex tenant", "docex frobnicate".
func (c *cli) noCommand(reg registry, path string, rest []string) error {
	wantHelp := hasFlag(rest, "--help") || hasFlag(rest, "-h")
	if path == "" && hasFlag(rest, "--version") {
		return cmdVersion(context.Background(), c, nil)
	}
	if path != "" && !reg.isGroup(path) {
		return unknownCommand(reg, path)
	}
	switch {
	case wantHelp:
		usage(c.stdout, reg, path)
	case !c.g.json: // with --json, stderr holds the error alone (docs/json.md)
		usage(c.stderr, reg, path)
	}
	switch {
	case wantHelp:
		return errHelp
	case path == "":
		if f := unknownGlobalFlag(rest); f != "" {
			return docex.Errorf(errUsage, "unknown flag %s, and no command given (docex help lists the commands and the flags they take)", f)
		}
		return docex.Errorf(errUsage, "no command given (docex help lists the commands)")
	default:
		return docex.Errorf(errUsage, "%q needs a subcommand (docex help %s lists them)", path, path)
	}
}

// unknownCommand is the usage error for a command line whose words path
// name no command.
func unknownCommand(reg registry, path string) error {
	return docex.Errorf(errUsage, "unknown command %q%s (docex help lists the commands)", path, spell.Suggest(path, reg.pathsOfLength(len(strings.Fields(path)))))
}

// flagHint returns the flag an unknown --flag may have meant, as
// spell.Suggest does, or "".
func flagHint(fs *pflag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if best, ok := spell.Closest(name, names); ok {
		return fmt.Sprintf(" (did you mean %q?)", "--"+best)
	}
	return ""
}

// globals are the flags every command accepts, anywhere on the line.
type globals struct {
	config string
	tenant string
	user   string
	roles  []string
	json   bool
	help   bool
	// s3 is storage.documents.s3 once a config with S3 content storage
	// is loaded (nil otherwise): the S3 errors' hints name its keys.
	s3 *config.S3
}

// globalFlags describes the global flags once, for the help texts.
var globalFlags = []struct{ name, arg, usage string }{
	{"config", "PATH", "config file (default ./docex.yaml; env DOCEX_CONFIG)"},
	{"tenant", "ID", "tenant of the user context (env DOCEX_TENANT)"},
	{"user", "ID", "user of the user context, recorded in the audit log (env DOCEX_USER)"},
	{"roles", "a,b", "roles of the user context: reader, writer, admin (env DOCEX_ROLES)"},
	{"json", "", "machine-readable output on stdout (docs/json.md); errors as JSON on stderr"},
}

// addGlobals binds the global flags to g, hidden from per-command help
// (which lists them once, in one line).
func addGlobals(fs *pflag.FlagSet, g *globals, getenv func(string) string) {
	config := getenv("DOCEX_CONFIG")
	if config == "" {
		config = "docex.yaml"
	}
	fs.StringVar(&g.config, "config", config, "")
	fs.StringVar(&g.tenant, "tenant", getenv("DOCEX_TENANT"), "")
	fs.StringVar(&g.user, "user", getenv("DOCEX_USER"), "")
	fs.StringSliceVar(&g.roles, "roles", splitList(getenv("DOCEX_ROLES")), "")
	fs.BoolVar(&g.json, "json", g.json, "")
	fs.BoolVarP(&g.help, "help", "h", false, "")
	for _, name := range []string{"config", "tenant", "user", "roles", "json", "help"} {
		fs.MarkHidden(name)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// valueFlags are the global flags that take a value, for finding the
// command words among the arguments.
var valueFlags = map[string]bool{"--config": true, "--tenant": true, "--user": true, "--roles": true}

// unknownGlobalFlag returns the first flag of rest (the arguments of a
// command line without a command word) that is not a global flag, or "".
func unknownGlobalFlag(rest []string) string {
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasValue := strings.Cut(a, "=")
		switch {
		case valueFlags[name]:
			if !hasValue {
				i++ // its value
			}
		case name == "--json" || name == "--help" || name == "-h" || name == "--version":
		default:
			return name
		}
	}
	return ""
}

// commandWords returns the leading non-flag words of args that name a
// command (as deep as isGroup allows), and the remaining arguments.
func commandWords(args []string, isGroup func(path string) bool) (words, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			rest = append(rest, a)
			if valueFlags[a] && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		if len(words) == 0 || isGroup(strings.Join(words, " ")) {
			words = append(words, a)
			continue
		}
		rest = append(rest, args[i:]...)
		break
	}
	return words, rest
}

// firstWord returns the index of the first argument that is not a flag or
// a global flag's value, or -1.
func firstWord(args []string) int {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--":
			return -1
		case valueFlags[a]:
			i++
		case !strings.HasPrefix(a, "-") || a == "-":
			return i
		}
	}
	return -1
}

// hasFlag reports whether the boolean flag is set among args (before the
// flags are parsed: errors must be JSON with --json even when parsing
// fails).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == name || a == name+"=true" {
			return true
		}
	}
	return false
}
