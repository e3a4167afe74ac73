package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// Test modules for the snapshot's memory (built with wat2wasm).
const (
	// zeroWAT: 1024 pages (64 MiB) that initialisation leaves all zero;
	// each call checks that bytes 100 and 60 MiB read zero, then writes 9
	// to both (returns 1 or 2 when a previous call's write is still there).
	zeroWAT = `(module (memory (export "memory") 1024)
  (func (export "docex_run") (result i32)
    (if (i32.ne (i32.load8_u (i32.const 100)) (i32.const 0)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 62914560)) (i32.const 0)) (then (return (i32.const 2))))
    (i32.store8 (i32.const 100) (i32.const 9))
    (i32.store8 (i32.const 62914560) (i32.const 9))
    (i32.const 0)))`
	zeroHex = "0061736d010000000105016000017f03020100050401008008071602066d656d6f7279020009646f6365785f72756e00000a3801360041e4002d0000410047044041010f0b418080801e2d0000410047044041020f0b41e40041093a0000418080801e41093a000041000b"
	// sevensWAT: its start function fills its 16 pages (1 MiB) with 7s;
	// each call checks bytes 100 and 1048000 are 7, then writes 9 there.
	sevensWAT = `(module (memory (export "memory") 16)
  (func $init (memory.fill (i32.const 0) (i32.const 7) (i32.const 1048576)))
  (start $init)
  (func (export "docex_run") (result i32)
    (if (i32.ne (i32.load8_u (i32.const 100)) (i32.const 7)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 1048000)) (i32.const 7)) (then (return (i32.const 2))))
    (i32.store8 (i32.const 100) (i32.const 9))
    (i32.store8 (i32.const 1048000) (i32.const 9))
    (i32.const 0)))`
	sevensHex = "0061736d010000000108026000006000017f03030200010503010010071602066d656d6f7279020009646f6365785f72756e00010801000a45020e0041004107418080c000fc0b000b340041e4002d0000410747044041010f0b41c0fb3f2d0000410747044041020f0b41e40041093a000041c0fb3f41093a000041000b"
)

// loadHex loads the module hexMod as plugin name, with memory_pages pages.
func loadHex(tb testing.TB, sb *Sandbox, name, hexMod string, pages uint32) *Plugin {
	tb.Helper()
	mod, err := hex.DecodeString(hexMod)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(mod)
	m := &pluginapi.Manifest{Name: name, Version: "1", ABIVersion: pluginapi.ABIVersion, Module: name + ".wasm",
		SHA256: hex.EncodeToString(sum[:]), Limits: pluginapi.ManifestLimits{MemoryPages: pages}}
	p, err := sb.Load(context.Background(), m, mod)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return p
}

// snapshotMemory returns the memory s restores.
func snapshotMemory(s *snapshot) []byte {
	b := make([]byte, s.size)
	s.copyTo(b)
	return b
}

// TestSnapshotHoldsNonZeroPagesOnce checks what a snapshot holds: only
// its non-zero pages, once (the memfd image where instances map it, else a
// Go copy), charged to the idle cache. Before, a snapshot held its whole
// memory twice (a Go copy and every byte, zeros included, in the memfd),
// uncounted: a 64 MiB memory left all zero cost 128 MiB per plugin.
func TestSnapshotHoldsNonZeroPagesOnce(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"pages", "copy"} {
		t.Run(mode, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			sb.copyReset = mode == "copy"
			zero := loadHex(t, sb, "zero", zeroHex, 2048)
			sevens := loadHex(t, sb, "sevens", sevensHex, 0)
			for i := range 3 {
				for _, p := range []*Plugin{zero, sevens} {
					if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")}); err != nil {
						t.Fatalf("%s run %d: %v", p.manifest.Name, i, err)
					}
				}
			}
			image := mode == "pages" && sb.pm != nil
			for _, tc := range []struct {
				p     *Plugin
				pages int   // host pages held
				max   int64 // bytes charged
			}{
				{zero, 0, 1024 * pageSize / int64(pageBytes) / 8},
				{sevens, 16 * pageSize / pageBytes, 16*pageSize + 64},
			} {
				s := tc.p.snap
				if s == nil {
					t.Fatalf("%s: no snapshot", tc.p.manifest.Name)
				}
				if (s.img != nil) != image || s.img != nil && s.data != nil {
					t.Fatalf("%s: image %v, Go copy of %d bytes", tc.p.manifest.Name, s.img != nil, len(s.data))
				}
				if n := s.nonZeroPages(); n != tc.pages {
					t.Fatalf("%s: snapshot holds %d pages, want %d", tc.p.manifest.Name, n, tc.pages)
				}
				if b := s.bytes(); b > tc.max || tc.pages > 0 && b < int64(tc.pages*pageBytes) {
					t.Fatalf("%s: snapshot charged %d bytes, want %d pages' worth (at most %d)", tc.p.manifest.Name, b, tc.pages, tc.max)
				}
				want := make([]byte, s.size)
				if tc.p == sevens {
					for i := range want {
						want[i] = 7
					}
				}
				if !bytes.Equal(snapshotMemory(s), want) {
					t.Fatalf("%s: snapshot memory differs", tc.p.manifest.Name)
				}
			}
			n, snapBytes := sb.idle.snapStats()
			_, all := sb.idle.stats()
			if n != 2 || snapBytes != zero.snap.bytes()+sevens.snap.bytes() || all < snapBytes {
				t.Fatalf("idle cache: %d snapshots, %d bytes (%d in all)", n, snapBytes, all)
			}
			zero.Close(ctx)
			if n, b := sb.idle.snapStats(); n != 1 || b != sevens.snap.bytes() {
				t.Fatalf("after Close: %d snapshots, %d bytes", n, b)
			}
		})
	}
}

// TestSnapshotsWithinIdleBudget checks that snapshots count against
// MaxIdleBytes with the idle instances: eight plugins with 1 MiB of
// non-zero memory each, a 4 MiB budget; the least recently used snapshots
// are dropped, and a plugin whose snapshot was dropped starts from a fresh
// initialisation (every call still sees the initial state). Concurrent
// runs race evictions against resets (-race).
func TestSnapshotsWithinIdleBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 4 << 20
	for _, mode := range []string{"pages", "copy"} {
		t.Run(mode, func(t *testing.T) {
			sb := newSandbox(t, Config{MaxIdleBytes: budget})
			sb.copyReset = mode == "copy"
			var ps []*Plugin
			for i := range 8 {
				ps = append(ps, loadHex(t, sb, fmt.Sprintf("sevens%d", i), sevensHex, 0))
			}
			check := func(when string) {
				t.Helper()
				n, snapBytes := sb.idle.snapStats()
				_, all := sb.idle.stats()
				if all > budget || snapBytes > all || n > 3 {
					t.Fatalf("%s: %d snapshots of %d bytes, %d bytes in all (budget %d)", when, n, snapBytes, all, budget)
				}
			}
			for round := range 2 {
				for i, p := range ps {
					for j := range 2 {
						if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")}); err != nil {
							t.Fatalf("round %d plugin %d run %d: %v", round, i, j, err)
						}
						check(fmt.Sprintf("round %d plugin %d run %d", round, i, j))
					}
				}
			}
			if n, _ := sb.idle.snapStats(); n == 0 {
				t.Fatal("no snapshot kept")
			}
			kept := 0
			for _, p := range ps {
				p.mu.Lock()
				if p.snap != nil {
					kept++
				}
				p.mu.Unlock()
			}
			if n, _ := sb.idle.snapStats(); kept != n {
				t.Fatalf("%d plugins hold a snapshot, the cache counts %d", kept, n)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 8*10)
			for i, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 10 {
						if _, err := p.Run(ctx, pluginapi.Call{TenantID: fmt.Sprint("t", j%2), Input: textDoc("x", "x")}); err != nil {
							errs <- fmt.Errorf("plugin %d run %d: %w", i, j, err)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			check("after the concurrent runs")
			for _, p := range ps {
				p.Close(ctx)
			}
			if n, b := sb.idle.snapStats(); n != 0 || b != 0 {
				t.Fatalf("after Close: %d snapshots, %d bytes", n, b)
			}
		})
	}
}

// TestSnapshotLargerThanBudget: a snapshot larger than MaxIdleBytes alone
// is not kept; every invocation initialises a new instance.
func TestSnapshotLargerThanBudget(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{MaxIdleBytes: 512 << 10})
	p := loadHex(t, sb, "sevens", sevensHex, 0)
	for i := range 3 {
		res, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !res.Report.ColdStart || !res.Report.InstanceRetired {
			t.Fatalf("run %d: cold start %v, retired %v", i, res.Report.ColdStart, res.Report.InstanceRetired)
		}
	}
	if p.snap != nil || !p.noSnap {
		t.Fatal("a snapshot larger than the budget was kept")
	}
	if n, b := sb.idle.snapStats(); n != 0 || b != 0 {
		t.Fatalf("idle cache: %d snapshots, %d bytes", n, b)
	}
}

// TestSnapshotIdleTTL: a plugin's snapshot unused for IdleTTL is closed
// like an idle instance, when any instance is next taken or parked (of
// this plugin or another); one in use stays. Before, snapshots were not
// subject to IdleTTL: a plugin used once kept its snapshot until memory
// pressure evicted it or the plugin closed.
func TestSnapshotIdleTTL(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{IdleTTL: time.Minute})
	now := time.Now()
	sb.idle.now = func() time.Time { return now }
	a := loadHex(t, sb, "sevens-a", sevensHex, 0)
	b := loadHex(t, sb, "sevens-b", sevensHex, 0)
	run := func(p *Plugin) pluginapi.ResourceReport {
		t.Helper()
		res, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", "x")})
		if err != nil {
			t.Fatalf("%s: %v", p.manifest.Name, err)
		}
		return res.Report
	}
	snap := func(p *Plugin) *snapshot {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.snap
	}
	if r := run(a); !r.ColdStart || r.InitInstructions == 0 || snap(a) == nil {
		t.Fatalf("first run: cold %v, init units %d, snapshot %v", r.ColdStart, r.InitInstructions, snap(a) != nil)
	}
	// Used every 50 s (warm runs), for longer than the TTL: kept.
	for i := range 4 {
		now = now.Add(50 * time.Second)
		if r := run(a); r.ColdStart {
			t.Fatalf("warm run %d was cold", i)
		}
	}
	s := snap(a)
	if s == nil {
		t.Fatal("a snapshot in use was dropped")
	}
	// Unused for longer than the TTL: another plugin's run closes it
	// (and a's idle instance).
	now = now.Add(2 * time.Minute)
	run(b)
	if snap(a) != nil || !s.isClosed() {
		t.Fatal("a snapshot unused past IdleTTL was kept when another plugin ran")
	}
	if n, bytes := sb.idle.snapStats(); n != 1 || bytes != snap(b).bytes() {
		t.Fatalf("idle cache: %d snapshots, %d bytes; want b's alone", n, bytes)
	}
	if n, _ := sb.idle.stats(); n != 1 {
		t.Fatalf("idle cache: %d instances, want b's alone", n)
	}
	// a initialises anew, takes another snapshot and runs from it.
	if r := run(a); !r.ColdStart || r.InitInstructions == 0 {
		t.Fatalf("run after expiry: cold %v, init units %d; want a new initialisation", r.ColdStart, r.InitInstructions)
	}
	if snap(a) == nil || snap(a) == s {
		t.Fatal("no new snapshot after expiry")
	}
	// The plugin's own next run after the TTL also initialises anew.
	now = now.Add(2 * time.Minute)
	if r := run(b); !r.ColdStart || r.InitInstructions == 0 {
		t.Fatalf("b after its TTL: cold %v, init units %d; want a new initialisation", r.ColdStart, r.InitInstructions)
	}
	if n, _ := sb.idle.snapStats(); n != 1 || snap(a) != nil {
		t.Fatalf("%d snapshots kept (a's: %v), want b's alone", n, snap(a) != nil)
	}
}
