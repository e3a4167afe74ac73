package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// meteredFile is an instrumented module's entry in the cache: the sha256
// of the module as installed and the versions it was made under
// (meteredName), then ".wasm" or ".json".
var meteredFile = regexp.MustCompile(`^([0-9a-f]{64})-v([^.]+)\.(wasm|json)$`)

// PruneCache removes from the on-disk compilation cache (Config.CacheDir)
// what no installed plugin needs: the entries of modules for which keep
// returns false (keep is given a module's sha256 as installed, the
// lineage's module_sha256), entries of an older instrumentation or of
// another wazero version, and compiled code of no known module. Files
// modified after olderThan are left alone: an install in flight may be
// about to record its module. With dryRun nothing is removed. It returns
// the number of modules removed (or that would be), counting compiled code
// of no known module as one each. The cache is only a cache: a module
// removed while a plugin still needs it is checked and compiled again on
// its next load; a file that cannot be removed is left for the next
// prune. It returns 0 and nil without a CacheDir, and the count so far
// with the error when the cache cannot be listed or ctx ends.
func (sb *Sandbox) PruneCache(ctx context.Context, keep func(moduleSHA256 string) bool, olderThan time.Time, dryRun bool) (int, error) {
	if sb.meteredDir == "" {
		return 0, nil
	}
	p := cachePrune{dir: sb.meteredDir, keep: keep, cutoff: olderThan, dryRun: dryRun}
	return p.run(ctx)
}

type cachePrune struct {
	dir    string
	keep   func(string) bool
	cutoff time.Time
	dryRun bool
	n      int
}

// meteredGroup is one module's entry (its .wasm and .json).
type meteredGroup struct {
	files []string
	old   bool // every file modified before the cutoff
	drop  bool
}

func (p *cachePrune) run(ctx context.Context) (int, error) {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return 0, fmt.Errorf("sandbox: list compilation cache: %w", err)
	}
	groups := map[string]*meteredGroup{}
	var wazeroDirs, tmps []string
	for _, ent := range ents {
		name := ent.Name()
		switch m := meteredFile.FindStringSubmatch(name); {
		case m != nil && ent.Type().IsRegular():
			key := m[1] + "-v" + m[2]
			g := groups[key]
			if g == nil {
				g = &meteredGroup{old: true, drop: key != meteredName(m[1]) || !p.keep(m[1])}
				groups[key] = g
			}
			g.files = append(g.files, name)
			if !p.before(ent) {
				g.old = false
			}
		case ent.IsDir() && strings.HasPrefix(name, "wazero-"):
			wazeroDirs = append(wazeroDirs, name)
		case strings.HasSuffix(name, ".tmp") && ent.Type().IsRegular():
			tmps = append(tmps, name)
		}
	}
	// The compiled code of each entry, by the name wazero files it under.
	owner := map[string]*meteredGroup{}
	for key, g := range groups {
		keys, ok := compiledKeys(filepath.Join(p.dir, key+".wasm"))
		if !ok {
			continue
		}
		for _, k := range keys {
			owner[k] = g
		}
	}
	current := "wazero-" + wazeroVersion() + "-" + runtime.GOARCH + "-" + runtime.GOOS
	for _, d := range wazeroDirs {
		if err := p.compiled(ctx, filepath.Join(p.dir, d), owner, d == current); err != nil {
			return p.n, err
		}
	}
	for _, g := range groups {
		if !g.drop || !g.old {
			continue
		}
		p.n++
		if err := p.remove(ctx, g.files...); err != nil {
			return p.n, err
		}
	}
	for _, t := range tmps {
		if info, err := os.Lstat(filepath.Join(p.dir, t)); err == nil && info.ModTime().Before(p.cutoff) {
			if err := p.remove(ctx, t); err != nil {
				return p.n, err
			}
		}
	}
	return p.n, nil
}

// compiled prunes the compiled code in dir: everything older than the
// cutoff in a directory of another wazero version; in the current one,
// code of dropped entries and of no known entry. Directories are never
// removed: wazero writes into the current one without creating it again.
func (p *cachePrune) compiled(ctx context.Context, dir string, owner map[string]*meteredGroup, current bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sandbox: list compilation cache: %w", err)
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() || !p.before(ent) {
			continue
		}
		name := ent.Name()
		g, known := owner[name]
		if current && known && !(g.drop && g.old) {
			continue
		}
		if !strings.HasSuffix(name, ".tmp") && !(current && known) {
			p.n++ // code of no known entry; a dropped entry is counted once, with it
		}
		if err := p.remove(ctx, filepath.Join(filepath.Base(dir), name)); err != nil {
			return err
		}
	}
	return nil
}

func (p *cachePrune) before(ent fs.DirEntry) bool {
	info, err := ent.Info()
	return err == nil && info.ModTime().Before(p.cutoff)
}

func (p *cachePrune) remove(ctx context.Context, names ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.dryRun {
		return nil
	}
	for _, name := range names {
		// A file that cannot be removed (on Windows: one being read) is
		// left for the next prune; it is only a cache.
		_ = os.Remove(filepath.Join(p.dir, name))
	}
	return nil
}

// compiledKeys returns the names wazero (v1.12's optimizing compiler) may
// file the compiled code of the instrumented module in path under: the
// sha256 of the module's id (the sha256 of its bytes and of the runtime's
// ensure-termination flag, off here; no function listeners), "WAZEVO" and
// the 8-byte CPU feature flags the compiler used, of which wazero knows
// three bits. Compiled code whose name matches no entry (another wazero)
// is code of no known module: pruning it costs a compile, never a wrong
// result. TestPruneCache pins the derivation.
func compiledKeys(path string) ([]string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, false
	}
	h.Write([]byte{0}) // ensure-termination off
	id := h.Sum(nil)
	keys := make([]string, 0, 8)
	for cpu := uint64(0); cpu < 8; cpu++ {
		h.Reset()
		h.Write(id)
		h.Write([]byte("WAZEVO"))
		h.Write(binary.LittleEndian.AppendUint64(nil, cpu))
		keys = append(keys, hex.EncodeToString(h.Sum(nil)))
	}
	return keys, true
}

// wazeroVersion is the version wazero names its cache directory by: that
// of the wazero module this binary was built with, "dev" when unknown.
func wazeroVersion() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
}
