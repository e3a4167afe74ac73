package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"golang.org/x/term"
)

// cli is one invocation's state. Commands get the configured system from
// c.system, c.session or c.provisioner: it is opened on first use and
// closed when the command returns, so a command never closes it itself.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	g              globals
	cmd            *command // the command being run
	sys            *system  // opened on first use
	dsnFlag        bool     // init --dsn supplies the DSN (getenv returns it)
}

// system is an opened configuration: backend and engine.
type system struct {
	file *config.File
	be   driver.Backend
	eng  *engine.Engine
	sb   *sandbox.Sandbox // nil unless the command runs plugins
}

func (s *system) close() {
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

// close releases what the invocation opened.
func (c *cli) close() {
	if c.sys != nil {
		c.sys.close()
		c.sys = nil
	}
}

// system loads the --config file and opens the initialised system it
// describes (with the plugin sandbox when the command runs plugins).
func (c *cli) system(ctx context.Context) (*system, error) {
	if c.sys != nil {
		return c.sys, nil
	}
	f, err := loadConfig(c.g.config)
	if err != nil {
		return nil, err
	}
	if err := otherModeErr(ctx, f); err != nil {
		return nil, err
	}
	sys := &system{file: f}
	ecfg, err := c.engineConfig(ctx, f)
	if err != nil {
		return nil, err
	}
	if c.cmd != nil && c.cmd.plugins {
		sb, err := openSandbox(ctx, f)
		if err != nil {
			return nil, err
		}
		sys.sb, ecfg.Sandbox = sb, sb
	}
	be, err := c.openBackend(ctx, f)
	if err != nil {
		sys.close()
		return nil, err
	}
	sys.be = be
	eng, err := engine.New(ctx, sys.be, ecfg)
	if err != nil {
		sys.close()
		return nil, settingErr(f, err)
	}
	sys.eng = eng
	c.sys = sys
	return sys, nil
}

// settingErr names the key of docex.yaml that changes a setting the system
// was initialised with (driver.SettingError), with its line; other errors
// are returned as they are.
func settingErr(f *config.File, err error) error {
	var se *driver.SettingError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Setting {
	case driver.SettingBootstrapTenantID:
		return f.KeyError("multi_tenancy.bootstrap_tenant.id", err)
	case driver.SettingMultiTenancy:
		return f.KeyError("multi_tenancy.enabled", err)
	}
	return err
}

// otherModeErr returns the error of a system initialised with the other
// multi_tenancy setting (settingErr's, naming multi_tenancy.enabled and its
// line) when f's SQLite system file is missing, database.sqlite.system_file
// is left to its default, and the data directory holds the other mode's
// default system file with a system initialised with the other setting.
// The default name depends on the mode (system.db with multi-tenancy,
// docex.db without), so a changed multi_tenancy.enabled would otherwise
// look for a system that is not there: "run docex init", and docex init
// would create a second system beside the first. It returns nil in every
// other case, a file it cannot read as a system included (the usual
// errors follow). It creates nothing.
func otherModeErr(ctx context.Context, f *config.File) error {
	s := f.Database.SQLite
	if f.Database.Type != config.SQLiteBackend || f.Line("database.sqlite.system_file") > 0 {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(s.Path, s.SystemFile)); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	other := "docex.db"
	if !f.MultiTenant() {
		other = "system.db"
	}
	path := filepath.Join(s.Path, other)
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: s.Path, SystemFile: other, Synchronous: s.Synchronous, BusyTimeout: ms(s.BusyTimeoutMS)})
	if err != nil {
		return nil
	}
	defer be.Close()
	info := driver.BootstrapInfo{MultiTenancy: f.MultiTenant(), BootstrapTenantID: f.MultiTenancy.BootstrapTenant.ID}
	err = be.Check(ctx, info)
	var se *driver.SettingError
	if errors.As(err, &se) && se.Setting == driver.SettingBootstrapTenantID {
		// The mode is what tells the default name: compare it alone.
		info.BootstrapTenantID = se.Stored
		err = be.Check(ctx, info)
	}
	if !errors.As(err, &se) || se.Setting != driver.SettingMultiTenancy {
		return nil
	}
	return settingErr(f, fmt.Errorf("%w (its system database is %s)", se, path))
}

// claimErr names the key of docex.yaml that says where the content store
// is, with its line, in an error about the store's claim marker (none, or
// another system's: driver.ErrUnclaimed, driver.ErrOtherSystem):
// storage.documents.path, or storage.documents.s3.bucket. The error keeps
// its own code (not_initialized, invalid_config); other errors, and one
// named so already, are returned as they are.
func claimErr(f *config.File, err error) error {
	if !errors.Is(err, driver.ErrUnclaimed) && !errors.Is(err, driver.ErrOtherSystem) {
		return err
	}
	if _, named := errors.AsType[*namedErr](err); named {
		return err
	}
	key := "storage.documents.path"
	if f.Storage.Documents.Type == "s3" {
		key = "storage.documents.s3.bucket"
	}
	return &namedErr{msg: f.KeyError(key, err).Error(), err: err}
}

// namedErr is an error whose message names where in docex.yaml it comes
// from; it unwraps to the error.
type namedErr struct {
	msg string
	err error
}

func (e *namedErr) Error() string { return e.msg }
func (e *namedErr) Unwrap() error { return e.err }

// userContext is the user context given by --user, --tenant and --roles
// (or their environment variables).
func (c *cli) userContext() docex.UserContext {
	return docex.UserContext{UserID: c.g.user, TenantID: c.g.tenant, Roles: c.g.roles}
}

// session returns the session of the user context on the opened system.
func (c *cli) session(ctx context.Context) (*engine.Session, error) {
	sys, err := c.system(ctx)
	if err != nil {
		return nil, err
	}
	return sys.eng.As(c.userContext()), nil
}

// provisioner returns the operator's tenant provisioner on the opened
// system; --user, if given, is recorded as the actor.
func (c *cli) provisioner(ctx context.Context) (*engine.TenantProvisioner, error) {
	sys, err := c.system(ctx)
	if err != nil {
		return nil, err
	}
	return sys.eng.Provisioner(c.g.user), nil
}

// engineConfig derives the engine configuration from the file, opening
// the S3 content store when the file configures one.
func (c *cli) engineConfig(ctx context.Context, f *config.File) (engine.Config, error) {
	cfg := engine.Config{
		MultiTenancy:      f.MultiTenant(),
		BootstrapTenantID: f.MultiTenancy.BootstrapTenant.ID,
		ContentStorage:    f.Storage.Documents.Type,
		ContentDir:        f.Storage.Documents.Path,
		MaxDocumentBytes:  f.Storage.Documents.MaxDocumentBytes,
		MaxStagedMemory:   f.Storage.Documents.MaxStagedMemory,
		SpoolDir:          f.Storage.Documents.SpoolDir,
		NoContentSync:     !*f.Storage.Documents.Fsync,
	}
	if f.Storage.Documents.Type == "s3" {
		c.g.s3 = &f.Storage.Documents.S3
		store, err := openS3(ctx, f, c.getenv)
		if err != nil {
			return cfg, err
		}
		cfg.ContentStorage, cfg.ContentDir, cfg.ContentStore = "", "", store
	}
	return cfg, nil
}

// openBackend opens the configured backend (creating nothing).
func (c *cli) openBackend(ctx context.Context, f *config.File) (driver.Backend, error) {
	switch f.Database.Type {
	case config.SQLiteBackend:
		s := f.Database.SQLite
		be, err := sqlite.Open(ctx, sqlite.Config{
			Dir: s.Path, SystemFile: s.SystemFile, Synchronous: s.Synchronous,
			MaxOpenTenants: s.MaxOpenTenants, BusyTimeout: ms(s.BusyTimeoutMS),
			LockTimeout: ms(s.LockTimeoutMS), // 0: the backend's default
		})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return be, nil
	case config.PostgresBackend:
		return openPostgres(ctx, f, c.getenv, c.dsnFlag)
	}
	return nil, docex.Errorf(docex.ErrInvalidConfig, "config key database.type: unknown type %q", f.Database.Type)
}

// openSandbox returns a plugin sandbox configured from the sandbox section
// (its compilation cache makes a CLI run's compile cheap).
func openSandbox(ctx context.Context, f *config.File) (*sandbox.Sandbox, error) {
	sc := f.Sandbox
	sb, err := sandbox.New(ctx, sandbox.Config{
		CacheDir:        sc.CacheDir,
		PoolSize:        sc.PoolSize,
		InitTimeout:     ms(sc.InitTimeoutMS),
		MaxIdleBytes:    sc.MaxIdleBytes,
		IdleTTL:         ms(sc.IdleTTLMS),
		MaxCompiledCode: sc.MaxCompiledCodeBytes,
		Ceilings: pluginapi.Limits{
			MemoryPages: sc.MaxMemoryPages, Timeout: ms(sc.MaxTimeoutMS), MaxOutputBytes: sc.MaxOutputBytes,
			MaxHostCalls: sc.MaxHostCalls, MaxLogBytes: sc.MaxLogBytes, MaxInstructions: sc.MaxInstructions,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("plugin sandbox: %w", err)
	}
	return sb, nil
}

// progress tells a person what is happening (on stderr; nothing with
// --json, whose stderr carries only the error object).
func (c *cli) progress(format string, args ...any) {
	if !c.g.json {
		writef(c.stderr, format+"\n", args...)
	}
}

// progressAfter says what progress says once d has passed, unless the
// function it returns is called first; that function returns once the
// message is written or will never be.
func (c *cli) progressAfter(d time.Duration, format string, args ...any) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			c.progress(format, args...)
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// terminal reports whether v, a standard stream, is a terminal: an
// *os.File on one, or a value with an IsTerminal method that says so
// (the tests' stand-in for one).
func terminal(v any) bool {
	switch v := v.(type) {
	case interface{ IsTerminal() bool }:
		return v.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(v.Fd()))
	}
	return false
}

// interactive reports whether the command may ask its user a question:
// standard input and standard error are terminals, and --json is not
// given.
func (c *cli) interactive() bool {
	return !c.g.json && terminal(c.stdin) && terminal(c.stderr)
}

// loadConfig is config.Load, with a hint of its own when the file itself
// is the problem (not a regular file, unreadable, too large) rather than a
// key in it.
func loadConfig(path string) (*config.File, error) {
	f, err := config.Load(path)
	if err == nil || !errors.Is(err, docex.ErrInvalidConfig) {
		return f, err
	}
	hint := withHint(err, "point --config or DOCEX_CONFIG at a readable docex.yaml (docex init writes one)")
	if st, serr := os.Stat(path); serr != nil || !st.Mode().IsRegular() || st.Size() > config.MaxConfigBytes {
		return nil, hint // not opened: opening a FIFO would wait for a writer
	}
	fh, oerr := os.Open(path)
	if oerr != nil {
		return nil, hint
	}
	fh.Close()
	return nil, err
}
