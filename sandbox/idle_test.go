package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// elemModule is a module whose docex_run (function 0) returns 0, with one
// page of memory and one passive element segment of n references to it.
func elemModule(n int) (*pluginapi.Manifest, []byte) {
	b := []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x05\x03\x01\x00\x01" +
		"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x00")
	seg := append(binary.AppendUvarint([]byte{1, 1, 0}, uint64(n)), bytes.Repeat([]byte{0}, n)...)
	b = append(binary.AppendUvarint(append(b, 0x09), uint64(len(seg))), seg...)
	b = append(b, "\x0a\x06\x01\x04\x00\x41\x00\x0b"...)
	sum := sha256.Sum256(b)
	return &pluginapi.Manifest{Name: "elem", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "elem.wasm", SHA256: hex.EncodeToString(sum[:])}, b
}

// An idle instance is charged against MaxIdleBytes what its module's shape
// makes it hold (wasmcheck.Info.InstanceBytes), not a fixed 64 KiB: an
// instance of a module with a passive element segment of 60,000 entries
// holds some 2.5 MB of Go heap. Before, it was charged its memory plus 64
// KiB, whatever its segments.
func TestIdleInstanceChargedItsSegments(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	const n = 60000
	m, mod := elemModule(n)
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	r, err := p.Run(ctx, pluginapi.Call{TenantID: "a"})
	if err != nil || r.Status != pluginapi.StatusOK {
		t.Fatalf("run: %v %+v", err, r)
	}
	_, snap := sb.idle.snapStats()
	n0, all := sb.idle.stats()
	if n0 != 1 {
		t.Fatalf("%d idle instances, want 1", n0)
	}
	want := int64(n * wasmcheck.InstancePerElemEntry)
	if got := all - snap; got < want || got < int64(p.c.info.InstanceBytes) {
		t.Fatalf("the idle instance is charged %d bytes, want at least %d (its %d element entries; estimate %d)", got, want, n, p.c.info.InstanceBytes)
	}
}

// Load refuses a module past the element entries cap before wazero sees
// it, with ErrInvalidModule naming the plugin, its module and the cap
// (plugin_invalid in the CLI). Before, a module of one passive segment of
// 4 million entries loaded in 2.7 s and held 268 MB.
func TestLoadRefusesElementFlood(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	m, mod := elemModule(wasmcheck.MaxElementEntries + 1)
	want := fmt.Sprintf(`plugin "elem", module elem.wasm: entries of the element segments is %d, the limit is %d (docs/sandbox.md, "Compile time")`, wasmcheck.MaxElementEntries+1, wasmcheck.MaxElementEntries)
	if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInvalidModule, want)
	}
}

// A cold run reports the making of its instance (wazero's instantiation of
// the element segment, here) as InstantiateDuration, apart from Duration;
// a warm run 0. Before, instantiation was in no report (a module of 4
// million element entries took 3.2 s per instance, init_duration_ms 0).
func TestInstantiateDurationReported(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	m, mod := elemModule(60000)
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for i, cold := range []bool{true, false} {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: "a"})
		if err != nil || r.Report.ColdStart != cold {
			t.Fatalf("run %d: %v %+v", i, err, r)
		}
		if got := r.Report.InstantiateDuration; cold && got <= 0 || !cold && got != 0 {
			t.Fatalf("run %d (cold %v): InstantiateDuration %v", i, cold, got)
		}
	}
}
