package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/spf13/pflag"
)

// cli is one invocation's state.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globals
	o              opts
}

// opts are the flags of the subcommands.
type opts struct {
	backend     string
	dataDir     string
	singleFile  bool
	dsnEnv      string
	dsn         string
	displayName string
	yes         bool
	force       bool
	limit       int
	offset      int
	order       string
	meta        []string
	system      bool
	contentType string
	params      []string
	grace       time.Duration
	j           jobOpts // pipeline, job, worker and lineage commands (pipeline.go)
}

// system is an opened configuration: backend and engine.
type system struct {
	file *config.File
	be   driver.Backend
	eng  *engine.Engine
	sb   *sandbox.Sandbox // nil unless opened with openWithSandbox
}

func (s *system) Close() {
	if s.eng != nil {
		s.eng.Close()
	}
	if s.sb != nil {
		s.sb.Close(context.Background())
	}
	if s.be != nil {
		s.be.Close()
	}
}

// loadConfig reads the --config file.
func (c *cli) loadConfig() (*config.File, error) {
	return config.Load(c.g.config)
}

// engineConfig derives the engine configuration from the file.
func engineConfig(f *config.File) engine.Config {
	return engine.Config{
		MultiTenancy:      f.MultiTenant(),
		BootstrapTenantID: f.MultiTenancy.BootstrapTenant.ID,
		ContentStorage:    f.Storage.Documents.Type,
		ContentDir:        f.Storage.Documents.Path,
		MaxDocumentBytes:  f.Storage.Documents.MaxDocumentBytes,
		NoContentSync:     !*f.Storage.Documents.Fsync,
	}
}

// openBackend opens the configured backend (creating nothing).
func (c *cli) openBackend(ctx context.Context, f *config.File) (driver.Backend, error) {
	switch f.Database.Type {
	case config.SQLiteBackend:
		s := f.Database.SQLite
		return sqlite.Open(ctx, sqlite.Config{
			Dir: s.Path, SystemFile: s.SystemFile, Synchronous: s.Synchronous,
			MaxOpenTenants: s.MaxOpenTenants, BusyTimeout: ms(s.BusyTimeoutMS),
		})
	case config.PostgresBackend:
		return openPostgres(ctx, f, c.getenv)
	}
	return nil, docex.Errorf(docex.ErrInvalidConfig, "unknown database type %q", f.Database.Type)
}

// open loads the configuration and opens an initialised system.
func (c *cli) open(ctx context.Context) (*system, error) {
	f, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	be, err := c.openBackend(ctx, f)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(ctx, be, engineConfig(f))
	if err != nil {
		be.Close()
		return nil, err
	}
	return &system{file: f, be: be, eng: eng}, nil
}

// openWithSandbox is open with a plugin sandbox configured from the
// sandbox section (its compilation cache makes a CLI run's compile cheap).
func (c *cli) openWithSandbox(ctx context.Context) (*system, error) {
	f, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	sc := f.Sandbox
	sb, err := sandbox.New(ctx, sandbox.Config{
		CacheDir: sc.CacheDir,
		PoolSize: sc.PoolSize,
		Ceilings: sandbox.Limits{
			MemoryPages: sc.MaxMemoryPages, Timeout: ms(sc.MaxTimeoutMS), MaxOutputBytes: sc.MaxOutputBytes,
			MaxHostCalls: sc.MaxHostCalls, MaxLogBytes: sc.MaxLogBytes,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("plugin sandbox: %w", err)
	}
	be, err := c.openBackend(ctx, f)
	if err != nil {
		sb.Close(ctx)
		return nil, err
	}
	ecfg := engineConfig(f)
	ecfg.Sandbox = sb
	eng, err := engine.New(ctx, be, ecfg)
	if err != nil {
		be.Close()
		sb.Close(ctx)
		return nil, err
	}
	return &system{file: f, be: be, eng: eng, sb: sb}, nil
}

// userSession opens the system and returns the session of the user given
// by --user/--tenant/--roles, and a function that closes the system.
func (c *cli) userSession(ctx context.Context) (*engine.Session, func(), error) {
	sys, err := c.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.session(sys), sys.Close, nil
}

// session returns the user's session from --user/--tenant/--roles.
func (c *cli) session(sys *system) *engine.Session {
	return sys.eng.As(docex.UserContext{UserID: c.g.user, TenantID: c.g.tenant, Roles: c.g.roles})
}

// emit prints v as JSON with --json, or calls human otherwise.
func (c *cli) emit(v any, human func(w io.Writer)) error {
	if c.g.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	human(tw)
	return tw.Flush()
}

func (c *cli) usage(w io.Writer, group string) {
	fmt.Fprintf(w, "docex: a secure, multi-tenant document execution engine\n\nUsage: docex [global flags] COMMAND [args]\n\nCommands:\n")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		if group == "" || strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s %s\t%s\n", n, cmds[n].args, cmds[n].summary)
	}
	tw.Flush()
	fmt.Fprintf(w, `
Global flags (anywhere on the line):
  --config PATH   config file (default ./docex.yaml, env DOCEX_CONFIG)
  --tenant ID     tenant of the user context (env DOCEX_TENANT)
  --user ID       user of the user context (env DOCEX_USER)
  --roles a,b     roles of the user context: reader, writer, admin (env DOCEX_ROLES)
  --json          machine-readable output; errors as JSON on stderr

Exit codes: 0 ok, 1 internal error, 2 usage or invalid input, 3 not found,
4 denied, 5 conflict, 6 plugin failed. "docex COMMAND --help" describes a command.
`)
}

func (c *cli) commandUsage(w io.Writer, path string, cmd *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: docex %s %s\n\n%s\n", path, cmd.args, cmd.summary)
	if cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}

// readFileArg opens a FILE argument ("-" is stdin is not supported: content
// must have a name).
func openFileArg(path string) (*os.File, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", docex.Errorf(docex.ErrInvalid, "open %s: %v", path, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, "", docex.Errorf(docex.ErrInvalid, "%s is not a regular file", path)
	}
	return f, filepath.Base(path), nil
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
