package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/docex-dev/docex"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// globals are the flags every command accepts.
type globals struct {
	config string
	tenant string
	user   string
	roles  []string
	json   bool
	help   bool
}

func addGlobals(fs *pflag.FlagSet, g *globals, getenv func(string) string) {
	def := func(env, fallback string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&g.config, "config", def("DOCEX_CONFIG", "docex.yaml"), "config file (env DOCEX_CONFIG)")
	fs.StringVar(&g.tenant, "tenant", getenv("DOCEX_TENANT"), "tenant id of the user context (env DOCEX_TENANT)")
	fs.StringVar(&g.user, "user", getenv("DOCEX_USER"), "user id of the user context (env DOCEX_USER)")
	var roles []string
	if v := getenv("DOCEX_ROLES"); v != "" {
		roles = splitList(v)
	}
	fs.StringSliceVar(&g.roles, "roles", roles, "roles of the user context, comma-separated (env DOCEX_ROLES)")
	fs.BoolVar(&g.json, "json", false, "machine-readable output on stdout; errors as JSON on stderr")
	fs.BoolVarP(&g.help, "help", "h", false, "show help")
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

// commandWords returns the leading non-flag words of args that name a
// command (at most depth of them), and the remaining arguments.
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

// run is the whole CLI: it parses args, runs the command and returns its
// error; main maps the error to an exit code. It writes results to stdout
// and diagnostics to stderr, and reads the environment only through the
// process's os.Getenv.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, stdout, stderr, os.Getenv)
}

func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	return runIO(ctx, args, os.Stdin, stdout, stderr, getenv)
}

// runIO is runEnv with a standard input (docex mcp reads it).
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (err error) {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	defer func() {
		if errors.Is(err, errHelp) {
			err = nil
			return
		}
		if err != nil {
			c.printError(err)
		}
	}()
	words, rest := commandWords(args, isGroup)
	path := strings.Join(words, " ")
	cmd, ok := commands()[path]
	if !ok {
		if path == "" || isGroup(path) {
			// "docex", "docex --help", "docex tenant": list commands.
			wantHelp := false
			for _, a := range rest {
				if a == "--help" || a == "-h" {
					wantHelp = true
				}
			}
			if hasJSON(rest) {
				c.g.json = true
			}
			c.usage(stdoutOrErr(wantHelp, stdout, stderr), path)
			if wantHelp {
				return errHelp
			}
			if path == "" {
				return docex.Errorf(errUsage, "no command given (see docex --help)")
			}
			return docex.Errorf(errUsage, "%q needs a subcommand (see docex %s --help)", path, path)
		}
		if hasJSON(rest) {
			c.g.json = true
		}
		return docex.Errorf(errUsage, "unknown command %q (see docex --help)", path)
	}
	fs := pflag.NewFlagSet("docex "+path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	fs.SortFlags = false
	addGlobals(fs, &c.g, getenv)
	if cmd.flags != nil {
		cmd.flags(fs, &c.o)
	}
	if err := fs.Parse(rest); err != nil {
		c.g.json = c.g.json || hasJSON(rest)
		return docex.Errorf(errUsage, "%s: %v (see docex %s --help)", path, err, path)
	}
	if c.g.help {
		c.commandUsage(stdout, path, cmd, fs)
		return errHelp
	}
	pos := fs.Args()
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		return docex.Errorf(errUsage, "usage: docex %s %s", path, cmd.args)
	}
	return cmd.run(ctx, c, pos)
}

func hasJSON(args []string) bool {
	for _, a := range args {
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

func stdoutOrErr(toStdout bool, stdout, stderr io.Writer) io.Writer {
	if toStdout {
		return stdout
	}
	return stderr
}

// printError writes err to stderr: a line of text, or with --json
// {"error": {"code": ..., "message": ...}}.
func (c *cli) printError(err error) {
	if c.g.json {
		enc := json.NewEncoder(c.stderr)
		enc.Encode(map[string]any{"error": map[string]string{"code": docex.Code(err), "message": err.Error()}})
		return
	}
	fmt.Fprintf(c.stderr, "docex: %v\n", err)
}
