package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/spf13/pflag"
)

// systemCommands are the operator's commands on the whole system.
func systemCommands() []*command {
	return []*command{initCommand(), gcCommand(), {
		path: "version", summary: "print the versions of docex, its storage schema and config",
		help: `Example:
  docex version --json`,
		maxArgs: 0, run: cmdVersion,
	}}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// versionInfo is the output of docex version.
type versionInfo struct {
	Version       string `json:"version"`
	SchemaVersion int    `json:"schema_version"`
	ConfigVersion int    `json:"config_version"`
	GoVersion     string `json:"go_version"`
}

func cmdVersion(ctx context.Context, c *cli, args []string) error {
	v := versionInfo{Version: version, SchemaVersion: driver.SchemaVersion, ConfigVersion: config.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.GoVersion = bi.GoVersion
		if v.Version == "dev" {
			v.Version = vcsVersion(bi)
		}
	}
	return c.emit(v, func(w io.Writer) {
		writef(w, "docex %s (storage schema %d, config_version %d, %s)\n", v.Version, v.SchemaVersion, v.ConfigVersion, v.GoVersion)
	})
}

// vcsVersion is the commit a binary built without the Makefile came from.
func vcsVersion(bi *debug.BuildInfo) string {
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

func initCommand() *command {
	var o initOptions
	return &command{
		path: "init", access: "operator", maxArgs: 0,
		summary: "set docex up here: docex.yaml and the system database (idempotent)",
		help: `Never overwrites an existing docex.yaml and never drops or rewrites data:
a second run says "already initialised" and exits 0. With an existing
docex.yaml, --backend, --data-dir and --single-file must agree with it. A
first init that fails (the DSN variable unset, a server or bucket out of
reach) removes the docex.yaml and the directories it made (but, once it
created the system database, not a content directory that database
records and keeps: PostgreSQL's, or one in a directory that was there):
fix the cause and run it again (the hint then names the flag to change,
such as --data-dir, since the docex.yaml is gone). An init that fails once it created the
system (while installing the built-in steps, say) leaves the system
marked unfinished: the next init completes it (the built-in steps, the
system.init audit entry) and reports created, instead of "already
initialised".

Init creates the content directory (storage.documents.path) and records it
in the system database. On an initialised system whose content directory
is missing (deleted, or its volume not mounted) while the system records
that directory or has documents, init fails (storage_unavailable, exit 1)
and creates nothing, as every command that reads, writes or removes
document content then does (doc add, update, cat and delete, basket and
tenant delete, run, pipeline jobs, gc, verify; lists, metadata and
tenants go on working): an empty directory in its place would make every
document read as corrupt. Restore it, or
mount its volume, and run init again.

Init claims the content store for this system: it writes .docex-system
(the system's id) in the content directory, or PREFIX/.docex-system in an
S3 bucket, and refuses (exit 2, creating nothing) a store another system
claimed: each system needs its own content directory or bucket/prefix.

A new system gets the built-in steps (extract-text, chunk, redact-pii,
csv-to-json, json-extract, stats, detect-type; docs/steps.md) as system
plugins, their module compiled into the sandbox's cache so that a first run
does not wait for it (--no-builtin-steps or DOCEX_NO_BUILTIN_STEPS=1 skips
them; "docex plugin remove --system NAME" disables one). On an existing
system, init names the built-in steps another docex version installed;
"docex plugin install --system builtin:all" updates them.

Init refuses (exit 2, creating nothing) a multi_tenancy.enabled other than
the one the system was initialised with, also when that makes the default
SQLite system file another (system.db with multi-tenancy, docex.db
without): a data directory with the other mode's system is never given a
second system beside it.

Multi-tenant mode (the default) creates the bootstrap tenant, which holds the
system's own records (the tenant registry, system plugins, the system audit
log) and is never usable for documents: create tenants with
"docex tenant create ID". Local single-file mode (--single-file) has no
tenants: one SQLite file holds everything, content included.

Examples:
  docex init                                   # SQLite in ./docex-data
  docex init --data-dir /var/lib/docex
  docex init --single-file                     # one file: docex-data/docex.db
  DOCEX_POSTGRES_DSN=postgres://... docex init --backend postgres`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.backend, "backend", "", "database backend for a new docex.yaml: sqlite (default) or postgres")
			fs.StringVar(&o.dataDir, "data-dir", "", "where docex keeps its files (databases, content, caches) for a new docex.yaml (default docex-data next to it)")
			fs.BoolVar(&o.singleFile, "single-file", false, "local single-file mode: no tenants, one SQLite file holds everything")
			fs.StringVar(&o.dsnEnv, "dsn-env", "", "postgres: environment variable holding the DSN (default DOCEX_POSTGRES_DSN)")
			fs.StringVar(&o.dsn, "dsn", "", "postgres: connection string for this init (implies --backend postgres); written to docex.yaml only if it has no password")
			fs.BoolVar(&o.noBuiltins, "no-builtin-steps", false, "do not install the built-in steps (also DOCEX_NO_BUILTIN_STEPS=1)")
		},
		run: func(ctx context.Context, c *cli, args []string) error { return cmdInit(ctx, c, o) },
	}
}

type initOptions struct {
	backend    string
	dataDir    string
	singleFile bool
	dsnEnv     string
	dsn        string
	noBuiltins bool
}

// contentLocation is where f's content store is, as messages name it: an
// S3 bucket and prefix (s3://BUCKET/PREFIX/), a content directory.
func contentLocation(f *config.File) string {
	if s3 := f.Storage.Documents.S3; f.Storage.Documents.Type == "s3" {
		return fmt.Sprintf("s3://%s/%s", s3.Bucket, strings.TrimPrefix(strings.TrimSuffix(s3.Prefix, "/")+"/", "/"))
	}
	return f.Storage.Documents.Path
}

// initUnclaimed is the error of an init that claimed the content store
// (wrote its claim marker, or was told by the store that one was there)
// and still finds no marker when it reads it back: the store does not
// serve what it keeps. The store's own message and the hint of
// driver.ErrUnclaimed say to run docex init, the command that failed.
// It wraps err (exit code and JSON code unchanged).
func initUnclaimed(f *config.File, err error) error {
	where := contentLocation(f)
	return withHint(&namedErr{err: err, msg: fmt.Sprintf(
		"docex init claimed the content store at %s, but reading its claim marker %s back finds none: the store does not serve the marker it keeps (an S3 server or a proxy in front of it answering not found for an object that is there, or refusing to write the marker as one is there already)",
		where, contentkey.Marker)},
		fmt.Sprintf("running docex init again does not help until the store serves the marker: check the content store (for S3, a GET of %s%s must return it; a proxy or gateway in between may be at fault)", where, contentkey.Marker))
}

// initResult is the output of docex init.
type initResult struct {
	// Created: this run created the system, or completed the init that
	// created it and failed before its end.
	Created         bool   `json:"created"`
	Config          string `json:"config"`
	ConfigWritten   bool   `json:"config_written"`
	Backend         string `json:"backend"`
	MultiTenancy    bool   `json:"multi_tenancy"`
	BootstrapTenant string `json:"bootstrap_tenant"`
	DataDir         string `json:"data_dir"`
	ContentStorage  string `json:"content_storage"`
	ContentDir      string `json:"content_dir"`
	// BuiltinSteps are the built-in steps this run installed.
	BuiltinSteps     []string `json:"builtin_steps"`
	BuiltinInstallMS float64  `json:"builtin_install_ms"`
	// BuiltinStepsOutdated are the built-in steps installed (on an
	// existing system) with another module than this binary's.
	BuiltinStepsOutdated []string `json:"builtin_steps_outdated"`
	// ContentClaimed: on a system that existed already, the content
	// location (an S3 bucket and prefix, a content directory) had no
	// claim marker, and this run wrote this system's.
	ContentClaimed bool `json:"content_claimed"`
}

func cmdInit(ctx context.Context, c *cli, o initOptions) (err error) {
	switch o.backend {
	case "", config.SQLiteBackend, config.PostgresBackend:
	default:
		return docex.Errorf(errUsage, "--backend %q: want sqlite or postgres", o.backend)
	}
	if o.dsn != "" {
		if o.backend == config.SQLiteBackend || o.singleFile {
			return docex.Errorf(errUsage, "--dsn is for --backend postgres")
		}
		o.backend = config.PostgresBackend
	}
	if o.singleFile && o.backend == config.PostgresBackend {
		return docex.Errorf(errUsage, "--single-file is a SQLite mode: drop --backend postgres")
	}
	cfgPath, err := filepath.Abs(c.g.config)
	if err != nil {
		return docex.Errorf(errUsage, "--config: %v", err)
	}
	wrote := false
	// cfgDirs are the config file's directories this init made, deepest
	// first; removeCfgDirs removes them while they are empty.
	var cfgDirs []string
	removeCfgDirs := func() {
		for _, dir := range cfgDirs {
			// Only while empty: never what someone put there since.
			if os.Remove(dir) != nil {
				return
			}
		}
	}
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		dataDir := o.dataDir
		if dataDir != "" && !filepath.IsAbs(dataDir) {
			// Given relative to the working directory: record it relative
			// to the config file so the directory stays movable.
			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return docex.Errorf(errUsage, "--data-dir: %v", err)
			}
			if rel, err := filepath.Rel(filepath.Dir(cfgPath), abs); err == nil {
				dataDir = rel
			} else {
				dataDir = abs
			}
		}
		data := config.Generate(config.GenerateOptions{Backend: o.backend, DataDir: dataDir, SingleFile: o.singleFile, DSNEnv: o.dsnEnv, DSN: o.dsn})
		for dir := filepath.Dir(cfgPath); ; dir = filepath.Dir(dir) {
			if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) || filepath.Dir(dir) == dir {
				break
			}
			cfgDirs = append(cfgDirs, dir)
		}
		if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
			removeCfgDirs()
			return fmt.Errorf("create the config directory: %w", err)
		}
		if err := writeNew(cfgPath, data); err != nil {
			removeCfgDirs()
			return err
		}
		wrote = true
	} else if err != nil {
		return fmt.Errorf("config %s: %w", cfgPath, err)
	}
	if wrote {
		// A first init that fails (a DSN variable unset, a bucket
		// missing) changes nothing: the config it wrote goes, and so do
		// the directories it made, which hold nothing else (the data
		// directories go first: this runs last).
		defer func() {
			if err != nil {
				os.Remove(cfgPath)
				removeCfgDirs()
				err = writtenConfigHint(err, o)
			}
		}()
	}
	f, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	// bootstrapped is set once engine.Bootstrap has created or found the
	// system and claimed its content directory.
	bootstrapped := false
	if wrote {
		var made []string // directories this init may make
		for _, dir := range []string{f.DataDir, f.Storage.Documents.Path, f.Sandbox.CacheDir} {
			if _, serr := os.Stat(dir); dir != "" && errors.Is(serr, os.ErrNotExist) {
				made = append(made, dir)
			}
		}
		defer func() {
			if err == nil {
				return
			}
			// A system that outlives the cleanup (PostgreSQL's schemas,
			// a SQLite file in a directory that was there) keeps the
			// content directory it recorded: removing it would make the
			// next init refuse, as for a directory deleted by mistake.
			system := ""
			if f.Database.Type == config.SQLiteBackend {
				system = filepath.Join(f.Database.SQLite.Path, f.Database.SQLite.SystemFile)
			}
			systemStays := bootstrapped && (system == "" || !slices.ContainsFunc(made, func(d string) bool { return within(system, d) }))
			for _, dir := range made {
				if systemStays && (within(f.Storage.Documents.Path, dir) || within(dir, f.Storage.Documents.Path)) {
					continue
				}
				os.RemoveAll(dir)
			}
		}()
	}
	if !wrote {
		if err := initFlagsAgree(c, o, f); err != nil {
			return err
		}
	}
	// A system of the other mode where this one's would be (its default
	// system file is another) is refused before anything is created.
	if err := otherModeErr(ctx, f); err != nil {
		return err
	}
	if o.dsn != "" {
		// This run connects with --dsn; later runs read the variable the
		// config names (the DSN is never printed).
		getenv := c.getenv
		c.dsnFlag = true
		c.getenv = func(k string) string {
			if k == f.Database.Postgres.DSNEnv {
				return o.dsn
			}
			return getenv(k)
		}
		if f.Database.Postgres.DSNEnv != "" && getenv(f.Database.Postgres.DSNEnv) == "" && config.DSNHasPassword(o.dsn) {
			// A note, not printed with --json (docs/json.md).
			defer c.progress("note: the DSN's password was not written to %s; export %s before the next command", cfgPath, f.Database.Postgres.DSNEnv)
		}
	}
	// Content storage is checked before anything is created: a bucket
	// that is missing or refuses the credentials fails init cleanly.
	ecfg, err := c.engineConfig(ctx, f)
	if err != nil {
		return err
	}
	if s3, ok := ecfg.ContentStore.(*s3store.Store); ok {
		if err := s3.Check(ctx); err != nil {
			if errors.Is(err, s3store.ErrNoSuchBucket) {
				err = f.KeyError("storage.documents.s3.bucket", err)
			}
			return err
		}
	}
	be, err := c.openBackend(ctx, f)
	if err != nil {
		return err
	}
	defer be.Close()
	if ecfg.ContentStorage == engine.ContentFilesystem {
		// A content directory this system had is never created again:
		// it was deleted, or its volume is not mounted.
		if err := engine.CheckContentDir(ctx, be, ecfg); err != nil {
			return claimErr(f, settingErr(f, err))
		}
		if err := checkWritable(ecfg.ContentDir); err != nil {
			return f.KeyError("storage.documents.path", err)
		}
	}
	ir, err := engine.BeginInitReport(ctx, be, ecfg)
	created, unfinished := ir.Created, ir.Unfinished
	if errors.Is(err, driver.ErrUnclaimed) {
		return initUnclaimed(f, err)
	}
	if err != nil {
		return claimErr(f, settingErr(f, err))
	}
	bootstrapped = true
	// An init that created the system and failed before its end (the
	// built-in steps, its audit entry) left it unfinished: this one
	// completes it as if it had created the system.
	created = created || unfinished
	builtins := created && !o.noBuiltins && c.getenv(noBuiltinEnv) != "1"
	if builtins {
		sb, err := openSandbox(ctx, f)
		if err != nil {
			return err
		}
		defer sb.Close(ctx)
		ecfg.Sandbox = sb
	}
	eng, err := engine.New(ctx, be, ecfg)
	if errors.Is(err, driver.ErrUnclaimed) {
		return initUnclaimed(f, err)
	}
	if err != nil {
		return settingErr(f, err)
	}
	defer eng.Close()
	// The operator's --user is the actor of what init records ("system"
	// without one).
	op := eng.Provisioner(c.g.user)
	installed, took := []string{}, time.Duration(0)
	if builtins {
		c.progress("installing the built-in steps (compiling their module once into %s)", f.Sandbox.CacheDir)
		steps, err := builtinSteps("all")
		if err != nil {
			return err
		}
		var infos []engine.PluginInfo
		if infos, took, err = installBuiltins(ctx, op, steps); err != nil {
			return err
		}
		for _, i := range infos {
			installed = append(installed, i.Name)
		}
	}
	if created {
		// The last step: it marks the initialisation finished, so that
		// an init that fails before it is completed by the next one.
		if err := op.RecordInit(ctx); err != nil {
			return err
		}
	}
	outdated := []string{}
	if !created {
		if outdated, err = outdatedBuiltins(ctx, eng); err != nil {
			return err
		}
	}
	res := initResult{
		Created: created, Config: cfgPath, ConfigWritten: wrote, Backend: f.Database.Type,
		MultiTenancy: f.MultiTenant(), BootstrapTenant: f.MultiTenancy.BootstrapTenant.ID,
		DataDir: f.DataDir, ContentStorage: f.Storage.Documents.Type,
		BuiltinSteps: installed, BuiltinInstallMS: docex.Milliseconds(took), BuiltinStepsOutdated: outdated,
		ContentClaimed: ir.Claimed && !created,
	}
	if !f.MultiTenant() {
		res.BootstrapTenant = ""
	}
	if res.ContentStorage == engine.ContentFilesystem {
		res.ContentDir = f.Storage.Documents.Path
	}
	return c.emit(res, func(w io.Writer) {
		if wrote {
			writef(w, "wrote %s\n", cfgPath)
		}
		if len(installed) > 0 {
			fmt.Fprintf(w, "installed %d built-in steps (%s) in %s\n", len(installed), strings.Join(installed, ", "), took.Round(10*time.Millisecond))
		}
		switch {
		case !created:
			if wrote {
				// A docex.yaml written for data that was there already
				// (a copied single-file database, a lost docex.yaml).
				where := res.DataDir
				if res.Backend == config.PostgresBackend {
					where = "the PostgreSQL database $" + f.Database.Postgres.DSNEnv + " names"
				}
				writef(w, "found an existing docex system in %s: it is used as it is; nothing else changed\n", where)
			} else if res.ContentClaimed {
				writef(w, "already initialised; the content location %s had no claim marker (.docex-system): claimed it for this system; nothing else changed\n", contentLocation(f))
			} else {
				writef(w, "already initialised; nothing changed\n")
			}
			if len(outdated) > 0 {
				if len(outdated) == 1 {
					writef(w, "note: the built-in step %s was installed by another docex version; docex plugin install --system builtin:all updates it\n", outdated[0])
				} else {
					writef(w, "note: the built-in steps %s were installed by another docex version; docex plugin install --system builtin:all updates them\n", strings.Join(outdated, ", "))
				}
			}
		case f.MultiTenant():
			writef(w, "initialised docex (%s, data in %s)\n", f.Database.Type, res.DataDir)
			if s3 := f.Storage.Documents.S3; res.ContentStorage == "s3" {
				writef(w, "content in s3://%s/%s\n", s3.Bucket, strings.TrimPrefix(strings.TrimSuffix(s3.Prefix, "/")+"/", "/"))
			}
			writef(w, "next: create a tenant with: docex tenant create ID\n")
		case f.Database.Type == config.PostgresBackend:
			writef(w, "initialised docex without tenants (%s, data in %s)\n", f.Database.Type, res.DataDir)
			writef(w, "next: docex basket create NAME --user ID --roles admin\n")
		default:
			writef(w, "initialised docex in local single-file mode (%s)\n", filepath.Join(f.Database.SQLite.Path, f.Database.SQLite.SystemFile))
			writef(w, "next: docex basket create NAME --user ID --roles admin\n")
		}
	})
}

// writtenConfigHint gives a config error of an init that wrote docex.yaml
// from its flags, and removed it on the error, a hint naming the flag to
// fix rather than the removed file's key (which the table's hint names).
// Other errors, and those with a hint of their own, are returned as they
// are.
func writtenConfigHint(err error, o initOptions) error {
	if !errors.Is(err, docex.ErrInvalidConfig) {
		return err
	}
	if _, hinted := errors.AsType[*hintedError](err); hinted {
		return err
	}
	const again = ", then run docex init again (it removed the docex.yaml it wrote)"
	switch key := config.ErrorKey(err); {
	case key == "multi_tenancy.enabled" && o.singleFile:
		return withHint(err, "that data directory holds a multi-tenant system: drop --single-file to use it, or give another --data-dir"+again)
	case key == "multi_tenancy.enabled":
		return withHint(err, "that data directory holds a system in local single-file mode: add --single-file to use it, or give another --data-dir"+again)
	case key == "multi_tenancy.bootstrap_tenant.id":
		return withHint(err, "that data directory holds a system initialised with another bootstrap tenant: give another --data-dir"+again)
	case strings.HasPrefix(key, "database.postgres."):
		return withHint(err, "the value comes from --dsn or --dsn-env: fix it"+again)
	case o.dataDir != "":
		return withHint(err, fmt.Sprintf("the path comes from --data-dir %s: fix it, or give another directory", o.dataDir)+again)
	}
	return withHint(err, "the path is under the default data directory, docex-data next to docex.yaml: give another with --data-dir DIR"+again)
}

// initFlagsAgree refuses init flags that contradict an existing config.
func initFlagsAgree(c *cli, o initOptions, f *config.File) error {
	if o.backend != "" && o.backend != f.Database.Type {
		return docex.Errorf(errUsage, "--backend %s, but %s says %s (edit the file or use another --config)", o.backend, c.g.config, f.Database.Type)
	}
	if o.singleFile && f.MultiTenant() {
		return docex.Errorf(errUsage, "--single-file, but %s enables multi-tenancy (use another --config)", c.g.config)
	}
	if o.dataDir != "" {
		abs, err := filepath.Abs(o.dataDir)
		if err != nil || abs != f.DataDir {
			return docex.Errorf(errUsage, "--data-dir %s, but %s says %s (edit the file or use another --config)", o.dataDir, c.g.config, f.DataDir)
		}
	}
	return nil
}

// writeNew writes a file that must not exist yet, durably.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkWritable returns docex.ErrInvalidConfig when the content directory
// dir cannot be written, or, when it does not exist yet, the nearest
// directory above it that does (engine.Bootstrap creates it). It leaves
// nothing behind.
func checkWritable(dir string) error {
	probe := dir
	for {
		info, err := os.Stat(probe)
		if err == nil && !info.IsDir() {
			err = syscall.ENOTDIR
		}
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || filepath.Dir(probe) == probe {
			return fileErr(docex.ErrInvalidConfig, fmt.Sprintf("content directory %s is not writable", dir), err)
		}
		probe = filepath.Dir(probe)
	}
	f, err := os.CreateTemp(probe, ".writable-*")
	if err != nil {
		return fileErr(docex.ErrInvalidConfig, fmt.Sprintf("content directory %s is not writable", dir), err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// within reports whether the clean absolute path p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

func gcCommand() *command {
	var opts engine.SweepOptions
	return &command{
		path: "gc", access: "operator", maxArgs: 0, plugins: true,
		summary: "remove what a crash left behind (files older than --grace)",
		help: `Removes tenant database files that no registered tenant owns (SQLite; a
PostgreSQL tenant's schema comes and goes with its registry row), the
content directories of deleted tenants and content files no document refers
to: what a crash between two steps can leave. With filesystem storage it
also removes pack files no document refers to and rewrites packs less than
half referenced (deleted documents leave their bytes in a pack until then:
a pack that one add of several files wrote stays, even once all of its
documents are deleted; a pack of one document goes with it).
Files younger than --grace are left alone, since operations in flight may
be using them. A SQLite tenant file being built (tenants/.staging/) is
removed only when older than both --grace and twice
database.sqlite.busy_timeout_ms (10 s by default): --grace 0s leaves a
younger one alone, and --dry-run does not list it either. An unregistered
SQLite tenant file renamed into tenants/<id>/ is removed at any age: a
tenant file is renamed there and registered in one transaction under the
system database's write lock, which gc takes too. With database storage it removes the content rows no
document refers to, at any age (a row commits with its document; the count
is "unreferenced content files"); with filesystem storage, likewise the
rows locating packed content that a delete killed before releasing its
content left, before the packs they name. With S3 storage it deletes the objects
no document refers to and the prefixes of deleted tenants, aborts the
tenant's multipart uploads started before --grace (a crashed or failed
large add) and removes stale spool files (storage.documents.s3.spool_dir);
the aborted uploads and the spool files count as "unreferenced content
files" (content_files in --json), as filesystem staging leftovers do.
It also empties the plugin compilation cache (sandbox.cache_dir) of what
no installed plugin needs: the checked and compiled modules of plugins no
tenant has installed any more (a deleted tenant's, a replaced plugin's) and
the entries of an older docex or wazero, older than --grace
(compiled_modules in --json); a plugin whose module is removed meanwhile
is compiled again on its next run.
Safe to run while docex is in use.

It first checks that the content store carries this system's marker
(written by docex init) and removes nothing, exit 2, when the marker is
missing or names another system (storage.documents shared with another
system, or changed after docex init). A content directory that is missing
(deleted, or its volume not mounted) is storage_unavailable, exit 1, as
for every command that reads, writes or removes document content;
nothing is removed. A content directory (S3: prefix) of a deleted tenant
or old incarnation that the store fails to remove (the S3 server fails
the DELETE or a listing under the prefix, a file system error) does not
stop gc: it goes on, then prints what it removed and, after "could not
remove N stale content directories", each one left with the store's
error (content_dirs_left in --json), and exits 1, storage_unavailable;
the next docex gc removes them once the store works.

With --dry-run it removes, rewrites and deletes nothing and reports what gc
would remove at that moment, in the same form (the system audit log records
it as system.sweep.dry_run).

Examples:
  docex gc --dry-run
  docex gc --grace 24h`,
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&opts.Grace, "grace", time.Hour, "leave files younger than this alone (operations in flight may use them)")
			fs.BoolVar(&opts.DryRun, "dry-run", false, "remove nothing: report what gc would remove")
		},
		run: func(ctx context.Context, c *cli, args []string) error {
			if opts.Grace < 0 {
				return docex.Errorf(errUsage, "--grace must not be negative")
			}
			p, err := c.provisioner(ctx)
			if err != nil {
				return err
			}
			rep, err := p.Sweep(ctx, opts)
			if err != nil && len(rep.ContentDirsLeft) == 0 {
				return claimErr(c.sys.file, err)
			}
			// With content directories left, the report says what was
			// removed and what was left, and the error follows it.
			if eerr := c.emit(rep, func(w io.Writer) {
				verb := "removed"
				if rep.DryRun {
					verb = "would remove"
				}
				writef(w, "%s %d unregistered tenant files, %d stale content directories, %d unreferenced content files, %d pack files\n",
					verb, len(rep.Storage), len(rep.ContentDirs), rep.ContentFiles, rep.Packs)
				if rep.CompiledModules > 0 {
					writef(w, "%s %d compiled plugin modules no installed plugin needs (sandbox.cache_dir)\n", verb, rep.CompiledModules)
				}
				for _, p := range rep.Storage {
					writef(w, "  tenant file %s\n", p)
				}
				for _, d := range rep.ContentDirs {
					writef(w, "  content directory %s\n", d)
				}
				if len(rep.ContentDirsLeft) > 0 {
					writef(w, "could not remove %d stale content directories (left for the next docex gc):\n", len(rep.ContentDirsLeft))
				}
				for _, d := range rep.ContentDirsLeft {
					writef(w, "  content directory %s: %s\n", d.Location, d.Error)
				}
			}); eerr != nil {
				return eerr
			}
			if err != nil && len(rep.ContentDirsLeft) > 0 {
				// Not a missing content directory (storage_unavailable's
				// usual hint): one the store would not remove.
				return withHint(err, "the content store refused to remove them (each one's error is listed: permissions, a read-only or immutable file, S3 credentials or the S3 server down); fix that and run docex gc again, which removes them")
			}
			return err
		},
	}
}
