package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/config"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/spf13/pflag"
)

// command is one CLI command.
type command struct {
	args    string // positional arguments, for usage
	summary string
	help    string
	minArgs int
	maxArgs int // -1: unbounded
	flags   func(fs *pflag.FlagSet, o *opts)
	run     func(ctx context.Context, c *cli, args []string) error
}

var groups = map[string]bool{"tenant": true, "basket": true, "doc": true, "doc meta": true, "audit": true, "plugin": true, "pipeline": true, "job": true}

func isGroup(path string) bool { return groups[path] }

func pageFlags(fs *pflag.FlagSet, o *opts) {
	fs.IntVar(&o.limit, "limit", docex.DefaultPageLimit, "maximum number of results")
	fs.IntVar(&o.offset, "offset", 0, "number of results to skip")
}

func commands() map[string]*command {
	m := baseCommands()
	for k, v := range pipelineCommands() {
		m[k] = v
	}
	return m
}

func baseCommands() map[string]*command {
	return map[string]*command{
		"init": {args: "", summary: "initialise docex here: write docex.yaml if missing, create the system database and the bootstrap tenant (idempotent)",
			help: `Never overwrites an existing docex.yaml and never drops or rewrites data:
a second run says "already initialised" and exits 0. With an existing
docex.yaml, --backend, --data-dir and --single-file must agree with it.`,
			maxArgs: 0, run: cmdInit,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringVar(&o.backend, "backend", "", "database backend for a new docex.yaml: sqlite (default) or postgres")
				fs.StringVar(&o.dataDir, "data-dir", "", "data directory for a new docex.yaml (default docex-data next to it)")
				fs.BoolVar(&o.singleFile, "single-file", false, "local single-file mode: no tenants, one SQLite file holds everything")
				fs.StringVar(&o.dsnEnv, "dsn-env", "", "postgres: environment variable holding the DSN (default DOCEX_POSTGRES_DSN)")
				fs.StringVar(&o.dsn, "dsn", "", "postgres: connection string for this init (implies --backend postgres); written to docex.yaml only if it has no password")
			}},
		"gc": {summary: "remove what a crash can leave behind: unregistered tenant files, content of deleted tenants, unreferenced content (operator)",
			maxArgs: 0, run: cmdGC,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.DurationVar(&o.grace, "grace", time.Hour, "leave files younger than this alone (operations in flight may use them)")
			}},
		"version": {summary: "print the version and schema version", maxArgs: 0, run: cmdVersion},

		"tenant create": {args: "ID", summary: "provision a tenant (operator)", minArgs: 1, maxArgs: 1, run: cmdTenantCreate,
			help: "Tenant ids: 1-40 bytes of a-z, 0-9, '-' and '_', starting with a letter,\nnot reserved (system, public, default, ...; prefixes pg_, docex, sqlite).",
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringVar(&o.displayName, "display-name", "", "human-readable name (default: the id)")
			}},
		"tenant list":    {summary: "list tenants, the bootstrap tenant included (operator)", maxArgs: 0, run: cmdTenantList},
		"tenant show":    {args: "ID", summary: "show a tenant (operator)", minArgs: 1, maxArgs: 1, run: cmdTenantShow},
		"tenant suspend": {args: "ID", summary: "suspend a tenant: its operations are denied until resumed (operator)", minArgs: 1, maxArgs: 1, run: cmdTenantStatus(true)},
		"tenant resume":  {args: "ID", summary: "resume a suspended tenant (operator)", minArgs: 1, maxArgs: 1, run: cmdTenantStatus(false)},
		"tenant delete": {args: "ID --yes", summary: "delete a tenant, its database and its content (operator)", minArgs: 1, maxArgs: 1, run: cmdTenantDelete,
			flags: func(fs *pflag.FlagSet, o *opts) { fs.BoolVar(&o.yes, "yes", false, "confirm the deletion") }},

		"basket create": {args: "NAME", summary: "create a basket (--pipeline: bound to a pipeline, admin)", minArgs: 1, maxArgs: 1, run: cmdBasketCreate,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringVar(&o.j.pipeline, "pipeline", "", "bind the new basket to this pipeline (in the same transaction)")
			}},
		"basket list":   {summary: "list baskets", maxArgs: 0, run: cmdBasketList, flags: pageFlags},
		"basket show":   {args: "NAME", summary: "show a basket and its stats", minArgs: 1, maxArgs: 1, run: cmdBasketShow},
		"basket delete": {args: "NAME", summary: "delete a basket (admin); refuses a non-empty one without --force", minArgs: 1, maxArgs: 1, run: cmdBasketDelete,
			flags: func(fs *pflag.FlagSet, o *opts) { fs.BoolVar(&o.force, "force", false, "also delete its documents") }},

		"doc add": {args: "BASKET FILE...", summary: "add files to a basket (deduplicated by content)", minArgs: 2, maxArgs: -1, run: cmdDocAdd,
			help: "Metadata values: true/false are bools, decimal numbers are numbers, anything else\nis a string (prefix s: to force a string, e.g. --meta code=s:007).",
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringArrayVar(&o.meta, "meta", nil, "metadata key=value to set on every added document (repeatable)")
				fs.StringVar(&o.contentType, "content-type", "", "content type (default: detected)")
			}},
		"doc get": {args: "ID", summary: "show a document and its metadata", minArgs: 1, maxArgs: 1, run: cmdDocGet},
		"doc cat": {args: "ID", summary: "write a document's raw content to stdout", minArgs: 1, maxArgs: 1, run: cmdDocCat},
		"doc list": {args: "BASKET", summary: "list a basket's documents", minArgs: 1, maxArgs: 1, run: cmdDocList,
			flags: func(fs *pflag.FlagSet, o *opts) {
				pageFlags(fs, o)
				fs.StringVar(&o.order, "order", "created", "created, -created or name")
			}},
		"doc find": {args: "BASKET --meta key=value...", summary: "find documents whose metadata matches every key=value", minArgs: 1, maxArgs: 1, run: cmdDocFind,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringArrayVar(&o.meta, "meta", nil, "key=value condition (repeatable; all must match)")
				pageFlags(fs, o)
				fs.StringVar(&o.order, "order", "created", "created, -created or name")
			}},
		"doc update": {args: "ID FILE", summary: "replace a document's content (keeps its id and metadata)", minArgs: 2, maxArgs: 2, run: cmdDocUpdate,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringVar(&o.contentType, "content-type", "", "content type (default: detected)")
			}},
		"doc delete": {args: "ID", summary: "delete a document (with derived documents: --cascade or --keep-derived)", minArgs: 1, maxArgs: 1, run: cmdDocDelete,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.BoolVar(&o.j.cascade, "cascade", false, "also delete every document derived from it (see doc lineage)")
				fs.BoolVar(&o.j.keepDerived, "keep-derived", false, "keep derived documents; their lineage says the source is gone")
			}},
		"doc meta set":    {args: "ID key=value...", summary: "set metadata on a document", minArgs: 2, maxArgs: -1, run: cmdMetaSet},
		"doc meta get":    {args: "ID [KEY]", summary: "print a document's metadata, or one key's value", minArgs: 1, maxArgs: 2, run: cmdMetaGet},
		"doc meta delete": {args: "ID KEY", summary: "delete a metadata key", minArgs: 2, maxArgs: 2, run: cmdMetaDelete},

		"plugin install": {args: "DIR_OR_MANIFEST", summary: "install a plugin for the tenant (admin), or system-wide with --system (operator)", minArgs: 1, maxArgs: 1, run: cmdPluginInstall,
			help: "The module's sha256 must match the manifest; the engine stores the module bytes, so\nchanging the files later changes nothing.",
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.BoolVar(&o.system, "system", false, "install for every tenant (operator; runs as the calling tenant)")
			}},
		"plugin list": {summary: "list the plugins the tenant can run (its own and system-wide); --system: system-wide only (operator)", maxArgs: 0, run: cmdPluginList,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.BoolVar(&o.system, "system", false, "list system-wide plugins (operator)")
			}},
		"plugin show": {args: "NAME", summary: "show a plugin", minArgs: 1, maxArgs: 1, run: cmdPluginShow},
		"plugin remove": {args: "NAME", summary: "remove a tenant plugin (admin), or a system-wide one with --system (operator)", minArgs: 1, maxArgs: 1, run: cmdPluginRemove,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.BoolVar(&o.system, "system", false, "remove a system-wide plugin (operator)")
			}},
		"run": {args: "PLUGIN DOC_ID", summary: "run a plugin on a document as the calling user and print the result", minArgs: 2, maxArgs: 2, run: cmdRun,
			flags: func(fs *pflag.FlagSet, o *opts) {
				fs.StringArrayVar(&o.params, "param", nil, "plugin parameter key=value (repeatable)")
			}},

		"audit list": {summary: "list the tenant's audit log, newest first (admin); --system: the system log (operator)", maxArgs: 0, run: cmdAuditList,
			flags: func(fs *pflag.FlagSet, o *opts) {
				pageFlags(fs, o)
				fs.BoolVar(&o.system, "system", false, "list the system audit log (operator actions and denials without a tenant)")
			}},
	}
}

func cmdVersion(ctx context.Context, c *cli, args []string) error {
	v := map[string]any{"version": version, "schema_version": driver.SchemaVersion, "config_version": config.Version}
	return c.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "docex %s (schema %d, config %d)\n", version, driver.SchemaVersion, config.Version)
	})
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func cmdInit(ctx context.Context, c *cli, args []string) error {
	o := c.o
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
		return docex.Errorf(errUsage, "--single-file is a SQLite mode")
	}
	cfgPath, err := filepath.Abs(c.g.config)
	if err != nil {
		return docex.Errorf(errUsage, "--config: %v", err)
	}
	wrote := false
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
		if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
			return fmt.Errorf("create config directory: %w", err)
		}
		if err := writeNew(cfgPath, data); err != nil {
			return err
		}
		wrote = true
	} else if err != nil {
		return fmt.Errorf("config %s: %w", cfgPath, err)
	}
	f, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if !wrote {
		if err := initFlagsAgree(c, f); err != nil {
			return err
		}
	}
	if o.dsn != "" {
		// This run connects with --dsn; later runs read the variable the
		// config names (the DSN is never printed).
		getenv := c.getenv
		c.getenv = func(k string) string {
			if k == f.Database.Postgres.DSNEnv {
				return o.dsn
			}
			return getenv(k)
		}
		if f.Database.Postgres.DSNEnv != "" && getenv(f.Database.Postgres.DSNEnv) == "" && config.DSNHasPassword(o.dsn) {
			defer fmt.Fprintf(c.stderr, "note: the DSN's password was not written to %s; export %s before the next command\n", cfgPath, f.Database.Postgres.DSNEnv)
		}
	}
	be, err := c.openBackend(ctx, f)
	if err != nil {
		return err
	}
	defer be.Close()
	ecfg := engineConfig(f)
	if ecfg.ContentStorage == engine.ContentFilesystem {
		if err := checkWritable(ecfg.ContentDir); err != nil {
			return err
		}
	}
	created, err := engine.Bootstrap(ctx, be, ecfg)
	if err != nil {
		return err
	}
	eng, err := engine.New(ctx, be, ecfg)
	if err != nil {
		return err
	}
	eng.Close()
	dataDir := f.Database.SQLite.Path
	res := map[string]any{
		"created": created, "config": cfgPath, "config_written": wrote, "backend": f.Database.Type,
		"multi_tenancy": f.MultiTenant(), "bootstrap_tenant": f.MultiTenancy.BootstrapTenant.ID,
		"content_storage": f.Storage.Documents.Type,
	}
	if f.Database.Type == config.SQLiteBackend {
		res["data_dir"] = dataDir
	}
	return c.emit(res, func(w io.Writer) {
		if wrote {
			fmt.Fprintf(w, "wrote %s\n", cfgPath)
		}
		if created {
			fmt.Fprintf(w, "initialised docex (%s", f.Database.Type)
			if f.Database.Type == config.SQLiteBackend {
				fmt.Fprintf(w, " in %s", dataDir)
			}
			fmt.Fprintf(w, "); bootstrap tenant %q\n", f.MultiTenancy.BootstrapTenant.ID)
		} else {
			fmt.Fprintf(w, "already initialised; nothing changed\n")
		}
	})
}

// initFlagsAgree refuses init flags that contradict an existing config.
func initFlagsAgree(c *cli, f *config.File) error {
	o := c.o
	if o.backend != "" && o.backend != f.Database.Type {
		return docex.Errorf(errUsage, "--backend %s, but %s says %s (edit the file or use another --config)", o.backend, c.g.config, f.Database.Type)
	}
	if o.singleFile && f.MultiTenant() {
		return docex.Errorf(errUsage, "--single-file, but %s enables multi-tenancy", c.g.config)
	}
	if o.dataDir != "" {
		abs, err := filepath.Abs(o.dataDir)
		if err != nil || abs != f.Database.SQLite.Path {
			return docex.Errorf(errUsage, "--data-dir %s, but %s says %s", o.dataDir, c.g.config, f.Database.SQLite.Path)
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

func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return docex.Errorf(docex.ErrInvalidConfig, "content directory %s is not writable: %v", dir, err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return docex.Errorf(docex.ErrInvalidConfig, "content directory %s is not writable: %v", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// ---- tenants (operator) ----

func (c *cli) provisioner(ctx context.Context) (*system, *engine.TenantProvisioner, error) {
	sys, err := c.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sys, sys.eng.Provisioner(c.g.user), nil
}

func printTenants(w io.Writer, ts []docex.Tenant) {
	fmt.Fprintln(w, "ID\tSTATUS\tSYSTEM\tCREATED\tDISPLAY NAME")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\n", t.ID, t.Status, t.IsSystem, t.CreatedAt.Format(time.RFC3339), t.DisplayName)
	}
}

func cmdTenantCreate(ctx context.Context, c *cli, args []string) error {
	sys, p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	t, err := p.Create(ctx, args[0], c.o.displayName)
	if err != nil {
		return err
	}
	return c.emit(t, func(w io.Writer) { fmt.Fprintf(w, "created tenant %s\n", t.ID) })
}

func cmdTenantList(ctx context.Context, c *cli, args []string) error {
	sys, p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	ts, err := p.List(ctx)
	if err != nil {
		return err
	}
	return c.emit(ts, func(w io.Writer) { printTenants(w, ts) })
}

func cmdTenantShow(ctx context.Context, c *cli, args []string) error {
	sys, p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	t, err := p.Get(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(t, func(w io.Writer) { printTenants(w, []docex.Tenant{t}) })
}

func cmdTenantStatus(suspend bool) func(ctx context.Context, c *cli, args []string) error {
	return func(ctx context.Context, c *cli, args []string) error {
		sys, p, err := c.provisioner(ctx)
		if err != nil {
			return err
		}
		defer sys.Close()
		verb := "resumed"
		if suspend {
			verb = "suspended"
			err = p.Suspend(ctx, args[0])
		} else {
			err = p.Resume(ctx, args[0])
		}
		if err != nil {
			return err
		}
		t, err := p.Get(ctx, args[0])
		if err != nil {
			return err
		}
		return c.emit(t, func(w io.Writer) { fmt.Fprintf(w, "%s tenant %s\n", verb, t.ID) })
	}
}

func cmdTenantDelete(ctx context.Context, c *cli, args []string) error {
	if !c.o.yes {
		return docex.Errorf(errUsage, "tenant delete removes the tenant's database and content: confirm with --yes")
	}
	sys, p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := p.Delete(ctx, args[0]); err != nil {
		return err
	}
	return c.emit(map[string]any{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "deleted tenant %s\n", args[0]) })
}

// ---- baskets ----

func printBaskets(w io.Writer, bs []docex.Basket) {
	fmt.Fprintln(w, "NAME\tID\tDOCUMENTS\tBYTES\tCREATED")
	for _, b := range bs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", b.Name, b.ID, b.DocumentCount, b.Bytes, b.CreatedAt.Format(time.RFC3339))
	}
}

// resolveBasket finds a basket by name, then by id.
func resolveBasket(ctx context.Context, s *engine.Session, ref string) (docex.Basket, error) {
	b, err := s.BasketByName(ctx, ref)
	if errors.Is(err, docex.ErrNotFound) {
		if b2, err2 := s.Basket(ctx, ref); err2 == nil {
			return b2, nil
		}
	}
	return b, err
}

func cmdBasketCreate(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	var b docex.Basket
	if c.o.j.pipeline != "" {
		b, err = s.CreateBasketWithPipeline(ctx, args[0], c.o.j.pipeline)
	} else {
		b, err = s.CreateBasket(ctx, args[0])
	}
	if err != nil {
		return err
	}
	return c.emit(b, func(w io.Writer) { fmt.Fprintf(w, "created basket %s (%s)\n", b.Name, b.ID) })
}

func cmdBasketList(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	bs, err := s.Baskets(ctx, docex.Page{Limit: c.o.limit, Offset: c.o.offset})
	if err != nil {
		return err
	}
	return c.emit(bs, func(w io.Writer) { printBaskets(w, bs) })
}

func cmdBasketShow(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := resolveBasket(ctx, s, args[0])
	if err != nil {
		return err
	}
	return c.emit(b, func(w io.Writer) { printBaskets(w, []docex.Basket{b}) })
}

func cmdBasketDelete(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := resolveBasket(ctx, s, args[0])
	if err != nil {
		return err
	}
	if err := s.DeleteBasket(ctx, b.ID, c.o.force); err != nil {
		return err
	}
	return c.emit(map[string]any{"deleted": b.ID, "name": b.Name}, func(w io.Writer) { fmt.Fprintf(w, "deleted basket %s\n", b.Name) })
}

// ---- documents ----

func parseMeta(kvs []string) (map[string]docex.Value, error) {
	out := map[string]docex.Value{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, docex.Errorf(errUsage, "metadata %q: want key=value", kv)
		}
		out[k] = docex.ParseValue(v)
	}
	return out, nil
}

func printDocs(w io.Writer, docs []docex.Document) {
	fmt.Fprintln(w, "ID\tNAME\tTYPE\tSIZE\tCHECKSUM\tMETADATA")
	for _, d := range docs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Name, d.ContentType, d.Size, d.Checksum[:min(12, len(d.Checksum))], formatMeta(d.Metadata))
	}
}

func formatMeta(m map[string]docex.Value) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k].Canonical()
	}
	return strings.Join(parts, " ")
}

func cmdDocAdd(ctx context.Context, c *cli, args []string) error {
	meta, err := parseMeta(c.o.meta)
	if err != nil {
		return err
	}
	var docs []engine.NewDocument
	for _, path := range args[1:] {
		f, name, err := openFileArg(path)
		if err != nil {
			return err
		}
		defer f.Close()
		docs = append(docs, engine.NewDocument{Name: name, Content: f, ContentType: c.o.contentType, Metadata: meta})
	}
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := resolveBasket(ctx, s, args[0])
	if err != nil {
		return err
	}
	added, err := s.AddDocuments(ctx, b.ID, docs)
	if err != nil {
		return err
	}
	out := make([]docex.Document, len(added))
	for i, a := range added {
		out[i] = a.Document
	}
	return c.emit(out, func(w io.Writer) {
		printDocs(w, out)
		for _, a := range added {
			if a.Duplicate {
				fmt.Fprintf(c.stderr, "note: %s has the content of existing document %s; nothing added\n", a.Document.Name, a.Document.ID)
			}
		}
	})
}

func cmdDocGet(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	d, err := s.Document(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
}

func cmdDocCat(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	rc, _, err := s.OpenContent(ctx, args[0])
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(c.stdout, rc)
	return err
}

func parseOrder(s string) (docex.Order, error) {
	switch s {
	case "", "created":
		return docex.OrderCreated, nil
	case "-created":
		return docex.OrderCreatedDesc, nil
	case "name":
		return docex.OrderName, nil
	}
	return 0, docex.Errorf(errUsage, "--order %q: want created, -created or name", s)
}

func cmdDocList(ctx context.Context, c *cli, args []string) error {
	order, err := parseOrder(c.o.order)
	if err != nil {
		return err
	}
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := resolveBasket(ctx, s, args[0])
	if err != nil {
		return err
	}
	docs, err := s.Documents(ctx, b.ID, docex.Page{Limit: c.o.limit, Offset: c.o.offset, Order: order})
	if err != nil {
		return err
	}
	return c.emit(docs, func(w io.Writer) { printDocs(w, docs) })
}

func cmdDocFind(ctx context.Context, c *cli, args []string) error {
	if len(c.o.meta) == 0 {
		return docex.Errorf(errUsage, "doc find needs at least one --meta key=value")
	}
	meta, err := parseMeta(c.o.meta)
	if err != nil {
		return err
	}
	order, err := parseOrder(c.o.order)
	if err != nil {
		return err
	}
	var filters []docex.MetaFilter
	for _, kv := range c.o.meta {
		k, _, _ := strings.Cut(kv, "=")
		filters = append(filters, docex.MetaFilter{Key: k, Value: meta[k]})
	}
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	b, err := resolveBasket(ctx, s, args[0])
	if err != nil {
		return err
	}
	docs, total, err := s.FindDocuments(ctx, b.ID, filters, docex.Page{Limit: c.o.limit, Offset: c.o.offset, Order: order})
	if err != nil {
		return err
	}
	return c.emit(docs, func(w io.Writer) {
		printDocs(w, docs)
		fmt.Fprintf(c.stderr, "%d of %d matching documents\n", len(docs), total)
	})
}

func cmdDocUpdate(ctx context.Context, c *cli, args []string) error {
	f, _, err := openFileArg(args[1])
	if err != nil {
		return err
	}
	defer f.Close()
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	d, err := s.UpdateContent(ctx, args[0], f, c.o.contentType)
	if err != nil {
		return err
	}
	return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
}

func cmdDocDelete(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	ids, err := deleteDocument(ctx, c, s, args[0])
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"deleted": args[0], "deleted_ids": ids}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted document %s", args[0])
		if len(ids) > 1 {
			fmt.Fprintf(w, " and %d derived document(s)", len(ids)-1)
		}
		fmt.Fprintln(w)
	})
}

func cmdMetaSet(ctx context.Context, c *cli, args []string) error {
	meta, err := parseMeta(args[1:])
	if err != nil {
		return err
	}
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	d, err := s.SetMetadata(ctx, args[0], meta)
	if err != nil {
		return err
	}
	return c.emit(d, func(w io.Writer) { printDocs(w, []docex.Document{d}) })
}

func cmdMetaDelete(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := s.DeleteMetadata(ctx, args[0], args[1]); err != nil {
		return err
	}
	return c.emit(map[string]any{"document": args[0], "deleted_key": args[1]}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted %s from %s\n", args[1], args[0])
	})
}

func cmdAuditList(ctx context.Context, c *cli, args []string) error {
	sys, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	page := docex.Page{Limit: c.o.limit, Offset: c.o.offset}
	var log []docex.AuditEntry
	if c.o.system {
		if page, err = page.Normalize(); err == nil {
			log, err = sys.be.SystemAudit(ctx, page)
		}
	} else {
		log, err = c.session(sys).Audit(ctx, page)
	}
	if err != nil {
		return err
	}
	return c.emit(log, func(w io.Writer) {
		fmt.Fprintln(w, "TIME\tUSER\tOPERATION\tTARGET\tOUTCOME\tERROR")
		for _, a := range log {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Time.Format(time.RFC3339), a.UserID, a.Operation, a.Target, a.Outcome, a.Error)
		}
	})
}

func cmdGC(ctx context.Context, c *cli, args []string) error {
	if c.o.grace < 0 {
		return docex.Errorf(errUsage, "--grace must not be negative")
	}
	sys, p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	rep, err := p.Sweep(ctx, c.o.grace)
	if err != nil {
		return err
	}
	return c.emit(rep, func(w io.Writer) {
		fmt.Fprintf(w, "removed %d unregistered tenant files, %d stale content directories, %d unreferenced content files\n",
			len(rep.Storage), len(rep.ContentDirs), rep.ContentFiles)
	})
}

func cmdMetaGet(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	if len(args) == 2 {
		v, err := s.Metadata(ctx, args[0], args[1])
		if err != nil {
			return err
		}
		return c.emit(v, func(w io.Writer) { fmt.Fprintln(w, v.Canonical()) })
	}
	d, err := s.Document(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(d.Metadata, func(w io.Writer) {
		for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
			fmt.Fprintf(w, "%s\t%s\t%s\n", k, d.Metadata[k].Type(), d.Metadata[k].Canonical())
		}
	})
}
