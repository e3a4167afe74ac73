package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox"
)

// readPlugin reads a plugin directory (or its plugin.toml) and the module
// the manifest names, confined to that directory. The engine verifies the
// hash (and audits a refused install).
func readPlugin(path string) (manifest, module []byte, err error) {
	dir := path
	if st, err := os.Stat(path); err != nil {
		return nil, nil, docex.Errorf(docex.ErrInvalid, "plugin %s: %v", path, err)
	} else if !st.IsDir() {
		if filepath.Base(path) != sandbox.ManifestFile {
			return nil, nil, docex.Errorf(docex.ErrInvalid, "%s: want a plugin directory or its %s", path, sandbox.ManifestFile)
		}
		dir = filepath.Dir(path)
	}
	manifest, module, err = sandbox.ReadPluginDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", docex.ErrPluginInvalid, err)
	}
	return manifest, module, nil
}

func printPlugins(w io.Writer, ps []engine.PluginInfo) {
	fmt.Fprintln(w, "NAME\tVERSION\tSCOPE\tCAPABILITIES\tMODULE\tDESCRIPTION")
	for _, p := range ps {
		scope := "tenant"
		if p.System {
			scope = "system"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Version, scope, strings.Join(p.Capabilities, ","), p.ModuleSHA256[:min(12, len(p.ModuleSHA256))], p.Description)
	}
}

func cmdPluginInstall(ctx context.Context, c *cli, args []string) error {
	manifest, module, err := readPlugin(args[0])
	if err != nil {
		return err
	}
	sys, err := c.openWithSandbox(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	var info engine.PluginInfo
	if c.o.system {
		info, err = sys.eng.Provisioner(c.g.user).InstallSystemPlugin(ctx, manifest, module)
	} else {
		info, err = c.session(sys).InstallPlugin(ctx, manifest, module)
	}
	if err != nil {
		return err
	}
	return c.emit(info, func(w io.Writer) {
		fmt.Fprintf(w, "installed plugin %s %s (%s)\n", info.Name, info.Version, info.ModuleSHA256)
	})
}

func cmdPluginList(ctx context.Context, c *cli, args []string) error {
	sys, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	var ps []engine.PluginInfo
	if c.o.system {
		ps, err = sys.eng.Provisioner(c.g.user).SystemPlugins(ctx)
	} else {
		ps, err = c.session(sys).Plugins(ctx)
	}
	if err != nil {
		return err
	}
	return c.emit(ps, func(w io.Writer) { printPlugins(w, ps) })
}

func cmdPluginShow(ctx context.Context, c *cli, args []string) error {
	s, done, err := c.userSession(ctx)
	if err != nil {
		return err
	}
	defer done()
	p, err := s.Plugin(ctx, args[0])
	if err != nil {
		return err
	}
	return c.emit(p, func(w io.Writer) { printPlugins(w, []engine.PluginInfo{p}) })
}

func cmdPluginRemove(ctx context.Context, c *cli, args []string) error {
	sys, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	if c.o.system {
		err = sys.eng.Provisioner(c.g.user).RemoveSystemPlugin(ctx, args[0])
	} else {
		err = c.session(sys).RemovePlugin(ctx, args[0])
	}
	if err != nil {
		return err
	}
	return c.emit(map[string]any{"removed": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "removed plugin %s\n", args[0]) })
}

func cmdRun(ctx context.Context, c *cli, args []string) error {
	params := map[string]string{}
	for _, kv := range c.o.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return docex.Errorf(errUsage, "--param %q: want key=value", kv)
		}
		params[k] = v
	}
	sys, err := c.openWithSandbox(ctx)
	if err != nil {
		return err
	}
	defer sys.Close()
	res, err := c.session(sys).RunPlugin(ctx, args[0], args[1], params)
	if err != nil {
		return err
	}
	return c.emit(res, func(w io.Writer) {
		fmt.Fprintf(w, "status: %s\n", res.Status)
		if res.Message != "" {
			fmt.Fprintf(w, "message: %s\n", res.Message)
		}
		if len(res.Document.Metadata) > 0 {
			fmt.Fprintf(w, "metadata: %s\n", formatMeta(res.Document.Metadata))
		}
		for _, d := range res.Derived {
			fmt.Fprintf(w, "derived: %s %s (%d bytes)\n", d.ID, d.Name, d.Size)
		}
		for _, l := range res.Logs {
			fmt.Fprintf(w, "log %s: %s\n", l.Level, l.Text)
		}
		r := res.Report
		fmt.Fprintf(w, "report: %s, peak memory %d bytes, %d host calls, %d bytes in, %d bytes out\n", r.Duration, r.PeakMemoryBytes, r.HostCalls, r.BytesIn, r.BytesOut)
	})
}
