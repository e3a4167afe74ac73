package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/spf13/pflag"
)

func pluginCommands() []*command {
	var system bool
	var params []string
	systemFlag := func(usage string) func(fs *pflag.FlagSet) {
		return func(fs *pflag.FlagSet) { fs.BoolVar(&system, "system", false, usage) }
	}
	return []*command{
		{path: "plugin install", args: "DIR", access: "admin; --system: operator", minArgs: 1, maxArgs: 1, plugins: true,
			summary: "install a built plugin for the tenant (--system: for all)",
			help: `The module's sha256 must match the manifest; the engine stores the module
bytes, so changing the files later changes nothing. The first install of a
module compiles it (seconds for a Go plugin); the compiled code is cached.
A plugin's source directory must be built first (docs/writing-plugins.md).
builtin:NAME (or builtin:all) with --system reinstalls built-in steps
(docs/steps.md), for example after removing one or upgrading docex.

Examples:
  docex plugin install testplugins/wordcount
  docex plugin install --system builtin:all`,
			flags: systemFlag("install for every tenant (operator; a run still acts as the calling tenant)"),
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdPluginInstall(ctx, c, args[0], system)
			}},
		{path: "plugin list", access: "reader; --system: operator", maxArgs: 0,
			summary: "list the plugins the tenant can run",
			help: `Examples:
  docex plugin list
  docex plugin list --system`,
			flags: systemFlag("list only the system-wide plugins (operator)"),
			run: func(ctx context.Context, c *cli, args []string) error {
				sys, err := c.system(ctx)
				if err != nil {
					return err
				}
				var ps []engine.PluginInfo
				if system {
					ps, err = sys.eng.Provisioner(c.g.user).SystemPlugins(ctx)
				} else {
					ps, err = sys.eng.As(c.userContext()).Plugins(ctx)
				}
				if err != nil {
					return err
				}
				return c.emit(ps, func(w io.Writer) { printPlugins(w, ps) })
			}},
		{path: "plugin show", args: "NAME", access: "reader", minArgs: 1, maxArgs: 1,
			summary: "show a plugin, the content types it accepts and its parameters",
			help: `Example:
  docex plugin show wordcount`,
			run: func(ctx context.Context, c *cli, args []string) error {
				s, err := c.session(ctx)
				if err != nil {
					return err
				}
				p, err := s.Plugin(ctx, args[0])
				if err != nil {
					return unknownPluginHint(err, args[0])
				}
				return c.emit(p, func(w io.Writer) { printPlugin(w, p) })
			}},
		{path: "plugin remove", args: "NAME", access: "admin; --system: operator", minArgs: 1, maxArgs: 1,
			summary: "remove a plugin (--system: a system-wide one)",
			help: `Example:
  docex plugin remove wordcount`,
			flags: systemFlag("remove a system-wide plugin (operator)"),
			run: func(ctx context.Context, c *cli, args []string) error {
				sys, err := c.system(ctx)
				if err != nil {
					return err
				}
				if system {
					err = sys.eng.Provisioner(c.g.user).RemoveSystemPlugin(ctx, args[0])
				} else {
					err = sys.eng.As(c.userContext()).RemovePlugin(ctx, args[0])
					if errors.Is(err, docex.ErrNotFound) {
						// The tenant has none of that name, but it may run a
						// system-wide one (a built-in step): say so.
						if p, perr := sys.eng.As(c.userContext()).Plugin(ctx, args[0]); perr == nil && p.System {
							return withHint(err, fmt.Sprintf("%s is a system-wide plugin, which every tenant runs: an operator removes it with docex plugin remove --system %s", args[0], args[0]))
						}
					}
				}
				if err != nil {
					return err
				}
				if !system {
					usedBy(ctx, c, sys.eng.As(c.userContext()), args[0])
				}
				return c.emit(pluginRemoved{Name: args[0], System: system, Deleted: true}, func(w io.Writer) { writef(w, "removed plugin %s\n", args[0]) })
			}},
		{path: "run", args: "PLUGIN DOC_ID", access: "writer", minArgs: 2, maxArgs: 2, plugins: true,
			summary: "run a plugin on a document",
			help: `A successful run writes the metadata the plugin set and adds its derived
documents to the document's basket, in one transaction; a failed run writes
nothing: exit 6 when the plugin failed (a trap, a limit, output refused),
4 when it used a capability it was not granted, 3 or 5 when the document
was deleted or given new content while it ran, 1 (host_capacity) when
the host had no room for it. Parameters the plugin's manifest or its own check
(docex_validate) refuses are refused before the run (exit 2). Every run's
resource report is in the audit log; a run that failed once the plugin
ran (docex_validate included) prints it on stderr after the error
("report: ..."; --json: "ran" and "report" beside "error").

It prints the plugin's status and message, the metadata it set ("metadata
set:", not the document's other keys), the documents it derived, its logs
and its resource report ("report: " and its figures); --json prints the
run's result instead (docs/json.md, RunResult: the document with all its
metadata, the documents derived, status, message, logs and the report).

Example:
  docex run wordcount DOC_ID --json`,
			flags: func(fs *pflag.FlagSet) {
				fs.StringArrayVar(&params, "param", nil, "plugin parameter key=value (repeatable)")
			},
			run: func(ctx context.Context, c *cli, args []string) error {
				return cmdRun(ctx, c, args[0], args[1], params)
			}},
	}
}

// pluginRemoved is the JSON result of plugin remove.
type pluginRemoved struct {
	Name    string `json:"name"`
	System  bool   `json:"system"`
	Deleted bool   `json:"deleted"`
}

func cmdPluginInstall(ctx context.Context, c *cli, path string, system bool) error {
	if spec, ok := strings.CutPrefix(path, builtinPrefix); ok {
		return cmdInstallBuiltins(ctx, c, spec, system)
	}
	// The configuration first, as pipeline create.
	sys, err := c.system(ctx)
	if err != nil {
		return err
	}
	manifest, module, rerr := readPlugin(path)
	if rerr != nil { // refused before the engine saw it: audited all the same
		if system {
			return sys.eng.Provisioner(c.g.user).RefuseInstall(ctx, path, rerr)
		}
		return sys.eng.As(c.userContext()).RefuseInstall(ctx, path, rerr)
	}
	// Said only when the install takes a while (a compile): a denial, a
	// refused manifest or a cached module answers before, and a caller
	// who may not install is not told it is being installed.
	slow := c.progressAfter(500*time.Millisecond, "installing %s: checking and compiling the module (slow the first time only; the compiled code is cached in %s)", path, sys.file.Sandbox.CacheDir)
	start := time.Now()
	var info engine.PluginInfo
	if system {
		info, err = sys.eng.Provisioner(c.g.user).InstallSystemPluginFrom(ctx, path, manifest, module)
	} else {
		info, err = sys.eng.As(c.userContext()).InstallPluginFrom(ctx, path, manifest, module)
	}
	slow()
	if errors.Is(err, pluginapi.ErrInvalidModule) || errors.Is(err, pluginapi.ErrHashMismatch) {
		// The sandbox names the plugin and its module file; this names
		// where they are: "invalid plugin: DIR: sandbox: invalid module:
		// plugin "p", module p.wasm: function 3: ...", "invalid plugin:
		// DIR: sandbox: module sha256 does not match manifest: ...".
		return &relabelled{msg: fmt.Sprintf("%s: %s: %s", docex.ErrPluginInvalid, path, strings.TrimPrefix(err.Error(), docex.ErrPluginInvalid.Error()+": ")), errs: []error{err}}
	}
	if err != nil {
		return err
	}
	took := time.Since(start).Round(10 * time.Millisecond)
	return c.emit(info, func(w io.Writer) {
		scope := "for tenant " + c.g.tenant
		if system {
			scope = "for every tenant"
		}
		writef(w, "installed plugin %s %s %s in %s (module sha256 %s)\n", info.Name, info.Version, scope, took, info.ModuleSHA256)
	})
}

// cmdInstallBuiltins (re)installs built-in steps as system plugins.
func cmdInstallBuiltins(ctx context.Context, c *cli, spec string, system bool) error {
	if !system {
		return docex.Errorf(errUsage, "built-in steps are system plugins: add --system")
	}
	p, err := c.provisioner(ctx)
	if err != nil {
		return err
	}
	steps, err := builtinSteps(spec)
	if err != nil { // refused before the engine saw it: audited all the same
		return p.RefuseInstall(ctx, builtinPrefix+spec, err)
	}
	c.progress("installing %d built-in steps (one shared module, compiled once and cached in %s)", len(steps), c.sys.file.Sandbox.CacheDir)
	infos, took, err := installBuiltins(ctx, p, steps)
	if err != nil {
		return err
	}
	return c.emit(infos, func(w io.Writer) {
		for _, info := range infos {
			fmt.Fprintf(w, "installed built-in step %s %s for every tenant (module sha256 %s)\n", info.Name, info.Version, info.ModuleSHA256)
		}
		fmt.Fprintf(w, "took %s\n", took.Round(10*time.Millisecond))
	})
}

// readPlugin reads a plugin directory (or its plugin.toml) and the module
// the manifest names, confined to that directory. The engine verifies the
// hash (and audits a refused install).
func readPlugin(path string) (manifest, module []byte, err error) {
	dir := path
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fileErr(docex.ErrInvalid, "plugin "+path, err)
	}
	if !st.IsDir() {
		if filepath.Base(path) != pluginapi.ManifestFile {
			return nil, nil, docex.Errorf(docex.ErrInvalid, "%s: want a plugin directory (holding %s and the module it names)", path, pluginapi.ManifestFile)
		}
		dir = filepath.Dir(path)
	}
	manifest, module, err = pluginapi.ReadPluginDir(dir)
	if errors.Is(err, fs.ErrNotExist) && hasGoSource(dir) {
		mod := moduleName(dir)
		return nil, nil, withHint(docex.Errorf(docex.ErrPluginInvalid, "%s holds a plugin's source, not its built module %s", dir, mod),
			fmt.Sprintf("build it first (docs/writing-plugins.md):\n"+
				"  (cd %s && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o %s . && sha256sum %s)\n"+
				"then set sha256 in its plugin.toml to the printed sum; or install the built copy in testplugins/", escape(dir), escape(mod), escape(mod)))
	}
	if fdlimit.IsExhaustion(err) { // says nothing of the plugin
		return nil, nil, fdlimit.Wrap(fmt.Errorf("plugin %s: %w", dir, err))
	}
	if err != nil {
		// "invalid plugin: DIR/plugin.toml line 4, key abi_version: ...",
		// without the sandbox's own prefix.
		if rest, ok := strings.CutPrefix(err.Error(), pluginapi.ErrInvalidManifest.Error()+": "); ok {
			sep := ": "
			if strings.HasPrefix(rest, "line ") {
				sep = " "
			}
			return nil, nil, &relabelled{msg: fmt.Sprintf("%s: %s%s%s", docex.ErrPluginInvalid, filepath.Join(dir, pluginapi.ManifestFile), sep, rest), errs: []error{docex.ErrPluginInvalid, err}}
		}
		return nil, nil, fmt.Errorf("%w: %s: %w", docex.ErrPluginInvalid, dir, err)
	}
	return manifest, module, nil
}

// relabelled is an error with a message of its own that matches each of
// errs (errors.Is, errors.As, docex.Code: the first one's code).
type relabelled struct {
	msg  string
	errs []error
}

func (e *relabelled) Error() string   { return e.msg }
func (e *relabelled) Unwrap() []error { return e.errs }

// moduleName returns the module file a plugin directory's manifest names
// (for advice only: the engine parses manifests strictly).
func moduleName(dir string) string {
	var m struct {
		Module string `toml:"module"`
	}
	if _, err := toml.DecodeFile(filepath.Join(dir, pluginapi.ManifestFile), &m); err != nil || m.Module == "" {
		return "MODULE.wasm"
	}
	return m.Module
}

func hasGoSource(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

func printPlugins(w io.Writer, ps []engine.PluginInfo) {
	fmt.Fprintln(w, "NAME\tVERSION\tSCOPE\tCAPABILITIES\tMODULE\tDESCRIPTION")
	for _, p := range ps {
		scope := "tenant"
		if p.System {
			scope = "system"
		}
		writef(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Version, scope, strings.Join(p.Capabilities, ","), p.ModuleSHA256[:min(12, len(p.ModuleSHA256))], p.Description)
	}
}

// printPlugin is plugin show: the plugin's row, the content types it
// accepts and its parameters.
func printPlugin(w io.Writer, p engine.PluginInfo) {
	printPlugins(w, []engine.PluginInfo{p})
	accepts := "any"
	if len(p.AcceptedContentTypes) > 0 {
		accepts = strings.Join(p.AcceptedContentTypes, ", ")
	}
	writef(w, "\naccepts: %s\n", accepts)
	if len(p.Parameters) == 0 {
		writef(w, "parameters: none\n")
		return
	}
	fmt.Fprintln(w, "\nPARAMETER\tTYPE\tREQUIRED\tALLOWED\tDESCRIPTION")
	for _, q := range p.Parameters {
		req := "no"
		if q.Required {
			req = "yes"
		}
		writef(w, "%s\t%s\t%s\t%s\t%s\n", q.Name, q.Type, req, allowedValues(q), q.Description)
	}
}

// allowedValues describes a parameter's declared range or values: "1..100",
// ">= 0", "a|b|c", or "any", then "< OTHER" when it must be less than
// another parameter.
func allowedValues(q engine.PluginParameter) string {
	if q.LessThan != "" {
		r := q
		r.LessThan = ""
		if a := allowedValues(r); a != "any" {
			return a + ", < " + q.LessThan
		}
		return "< " + q.LessThan
	}
	switch {
	case len(q.Values) > 0:
		return strings.Join(q.Values, "|")
	case q.Min != "" && q.Max != "":
		return q.Min + ".." + q.Max
	case q.Min != "":
		return ">= " + q.Min
	case q.Max != "":
		return "<= " + q.Max
	}
	return "any"
}

// unknownPluginHint gives err, when it says that plugin name does not
// exist (not the document), the command that lists those that do.
func unknownPluginHint(err error, name string) error {
	if errors.Is(err, docex.ErrNotFound) && strings.HasPrefix(err.Error(), fmt.Sprintf("plugin %q not found", name)) {
		return withHint(err, "docex plugin list shows the plugins this tenant can run; docex plugin install adds one")
	}
	return err
}

func cmdRun(ctx context.Context, c *cli, plugin, docID string, kvs []string) error {
	params := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return docex.Errorf(errUsage, "--param %q: want key=value", kv)
		}
		if old, dup := params[k]; dup && old != v {
			return docex.Errorf(errUsage, "--param %q given twice (%s=%s, %s=%s): give each parameter once", k, k, old, k, v)
		}
		params[k] = v
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	res, err := s.RunPlugin(ctx, plugin, docID, params)
	if err != nil {
		return unknownPluginHint(err, plugin)
	}
	return c.emit(res, func(w io.Writer) {
		writef(w, "status: %s\n", res.Status)
		if res.Message != "" {
			writef(w, "message: %s\n", res.Message)
		}
		// What the plugin set, not the document's other metadata (--json
		// gives the document with all of it).
		if len(res.MetadataSet) > 0 {
			writef(w, "metadata set: %s\n", formatMeta(res.MetadataSet))
		}
		for _, d := range res.Derived {
			writef(w, "derived: %s %s (%d bytes)\n", d.ID, d.Name, d.Size)
		}
		for _, l := range res.Logs {
			writef(w, "log %s: %s\n", l.Level, l.Text)
		}
		r := res.Report
		writef(w, "report: %.3f ms, peak memory %d bytes, %d host calls, %d bytes in, %d bytes out\n", r.DurationMS, r.PeakMemoryBytes, r.HostCalls, r.BytesIn, r.BytesOut)
	})
}

// usedBy notes, after a tenant's plugin was removed, the tenant's
// pipelines whose steps name it when no plugin of that name is left (a
// system-wide one takes its place otherwise): their jobs will fail until
// it is installed again. Errors reading the pipelines are not reported: the
// removal is done.
func usedBy(ctx context.Context, c *cli, s *engine.Session, name string) {
	if _, err := s.Plugin(ctx, name); !errors.Is(err, docex.ErrNotFound) {
		return
	}
	ps, err := s.Pipelines(ctx)
	if err != nil {
		return
	}
	var using []string
	for _, p := range ps {
		if !p.Deleted && slices.ContainsFunc(p.Steps, func(st engine.Step) bool { return st.Plugin == name }) {
			using = append(using, p.Name)
		}
	}
	if len(using) > 0 {
		c.progress("note: pipeline(s) %s run plugin %s: their jobs fail until it is installed again (docex plugin install), then docex job retry ID runs a failed one", strings.Join(using, ", "), name)
	}
}
