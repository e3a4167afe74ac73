package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/plugins/builtin"
)

// builtinPrefix names built-in steps where a plugin directory is expected:
// "docex plugin install --system builtin:chunk" (or builtin:all).
const builtinPrefix = "builtin:"

// noBuiltinEnv, when "1", makes docex init skip the built-in steps.
const noBuiltinEnv = "DOCEX_NO_BUILTIN_STEPS"

// builtinSteps returns the built-in steps named by spec ("all" or a
// comma-separated list). It returns docex.ErrInvalid for an unknown name.
func builtinSteps(spec string) ([]builtin.Step, error) {
	all, err := builtin.Steps()
	if err != nil {
		return nil, err
	}
	if spec == "all" {
		return all, nil
	}
	var out []builtin.Step
	for _, n := range strings.Split(spec, ",") {
		found := false
		for _, s := range all {
			if s.Name == strings.TrimSpace(n) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, docex.Errorf(docex.ErrInvalid, "%s%s: no such built-in step (want all or some of %s)", builtinPrefix, n, strings.Join(builtin.Names(), ", "))
		}
	}
	return out, nil
}

// installBuiltins installs steps as system plugins. They share one module,
// so the first install compiles it (into the sandbox's compilation cache)
// and the others reuse it.
func installBuiltins(ctx context.Context, p *engine.TenantProvisioner, steps []builtin.Step) ([]engine.PluginInfo, time.Duration, error) {
	start := time.Now()
	out := []engine.PluginInfo{}
	for _, s := range steps {
		info, err := p.InstallSystemPluginFrom(ctx, builtinPrefix+s.Name, s.Manifest, s.Module)
		if err != nil {
			return nil, 0, fmt.Errorf("built-in step %s: %w", s.Name, err)
		}
		out = append(out, info)
	}
	return out, time.Since(start), nil
}

// outdatedBuiltins returns the built-in steps installed system-wide whose
// module or manifest is not this binary's (installed by another docex
// version: a new parameter, limit or check can change the manifest
// alone).
func outdatedBuiltins(ctx context.Context, eng *engine.Engine) ([]string, error) {
	ps, err := eng.Provisioner("docex init").SystemPlugins(ctx)
	if err != nil {
		return nil, err
	}
	steps, err := builtin.Steps()
	if err != nil {
		return nil, err
	}
	manifests := map[string]string{}
	for _, s := range steps {
		sum := sha256.Sum256(s.Manifest)
		manifests[s.Name] = hex.EncodeToString(sum[:])
	}
	out, sum := []string{}, builtin.ModuleSHA256()
	for _, p := range ps {
		if m, ok := manifests[p.Name]; ok && (p.ModuleSHA256 != sum || p.ManifestSHA256 != m) {
			out = append(out, p.Name)
		}
	}
	return out, nil
}
