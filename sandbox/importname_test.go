package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// importModule returns a module that imports mod.name, a function of type
// () -> i32 (kind 0) or an immutable i32 global (kind 3), and exports its
// memory and a docex_run returning 0.
func importModule(mod, name string, kind byte) []byte {
	leb := func(b []byte, v uint32) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	str := func(b []byte, s string) []byte { return append(leb(b, uint32(len(s))), s...) }
	sec := func(b []byte, id byte, body []byte) []byte {
		return append(leb(append(b, id), uint32(len(body))), body...)
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = sec(out, 1, []byte{1, 0x60, 0, 1, 0x7f})
	imp := str(str([]byte{1}, mod), name)
	run := byte(0)
	if kind == 0 {
		imp, run = append(imp, 0, 0), 1
	} else {
		imp = append(imp, 3, 0x7f, 0)
	}
	out = sec(out, 2, imp)
	out = sec(out, 3, []byte{1, 0})
	out = sec(out, 5, []byte{1, 0, 1})
	out = sec(out, 7, append(str(append(str([]byte{2}, "memory"), 2, 0), "docex_run"), 0, run))
	return sec(out, 10, []byte{1, 4, 0, 0x41, 0, 0x0b})
}

// An import's name in Load's error is cut to 64 bytes with its length,
// and an unknown function import is refused before the module is
// instrumented and compiled. Before, the whole name went into the error
// (a 10 MB name: a 10,000,136-byte error from `docex plugin install`),
// after the module was compiled.
func TestLoadBoundsImportName(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("a", 100_000)
	tests := []struct {
		name    string
		mod     []byte
		want    string
		compile bool // the refusal comes after the compile
	}{
		{"unknown module", importModule("env"+long, "f", 0), "imports function envaaaa", false},
		{"unknown function", importModule("docex", long, 0), "imports function docex.aaaa", false},
		{"short unknown", importModule("docex", "format_disk", 0), "imports function docex.format_disk, which does not exist", false},
		{"control characters", importModule("docex", "a\nb\x1b", 0), `imports function docex.a\nb\x1b, which does not exist`, false},
		{"signature", importModule("docex", "log", 0), "imports function docex.log with signature () -> (i32), want (i32, i32, i32) -> (i32)", false},
		// Under the 256-byte cap on import names (wasmcheck refuses a
		// longer one first, naming the cap), over the 64 bytes shown.
		{"global", importModule("env", long[:200], 3), `module imports global "env.aaaa`, true},
	}
	lengths := map[string]string{"unknown module": "... (100005 bytes)", "unknown function": "... (100006 bytes)", "global": "... (204 bytes)"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			instrumented := false
			sb.instrument = func(b []byte) ([]byte, wasmcheck.Info, error) {
				instrumented = true
				return wasmcheck.Instrument(b)
			}
			sum := sha256.Sum256(tt.mod)
			m := &pluginapi.Manifest{Name: "imp", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "imp.wasm", SHA256: hex.EncodeToString(sum[:])}
			_, err := sb.Load(ctx, m, tt.mod)
			if !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %.300v, want %v containing %q", err, pluginapi.ErrInvalidModule, tt.want)
			}
			if n := len(err.Error()); n > 300 {
				t.Fatalf("error of %d bytes: %.300s", n, err)
			}
			if l := lengths[tt.name]; !strings.Contains(err.Error(), l) {
				t.Fatalf("err = %v, want the name's length %q", err, l)
			}
			if instrumented != tt.compile {
				t.Fatalf("module instrumented (and compiled): %v, want %v", instrumented, tt.compile)
			}
		})
	}
}

// exportModule returns a module that exports its memory, a docex_run
// returning 0, and a function of type () -> () as name.
func exportModule(name string) []byte {
	leb := func(b []byte, v uint32) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	str := func(b []byte, s string) []byte { return append(leb(b, uint32(len(s))), s...) }
	sec := func(b []byte, id byte, body []byte) []byte {
		return append(leb(append(b, id), uint32(len(body))), body...)
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = sec(out, 1, []byte{2, 0x60, 0, 1, 0x7f, 0x60, 0, 0})
	out = sec(out, 3, []byte{2, 0, 1})
	out = sec(out, 5, []byte{1, 0, 1})
	exp := append(str(append(str([]byte{3}, "memory"), 2, 0), "docex_run"), 0, 0)
	out = sec(out, 7, append(str(exp, name), 0, 1))
	return sec(out, 10, []byte{2, 4, 0, 0x41, 0, 0x0b, 2, 0, 0x0b})
}

// An export's name is at most wasmcheck.MaxExportName bytes, refused
// past it before the module is instrumented and compiled, naming the
// cap; under it, an error naming the export cuts it to 64 bytes with its
// length. Before, a module exporting a 10 MB docex_validate_ name of the
// wrong signature was compiled, then refused with a 10 MB error naming
// it.
func TestLoadBoundsExportName(t *testing.T) {
	ctx := context.Background()
	pre := "docex_validate_"
	tests := []struct {
		name    string
		mod     []byte
		want    string
		compile bool // the refusal comes after the compile
	}{
		{"over the cap", exportModule(pre + strings.Repeat("a", 10_000_000)), "bytes of an export's name is 10000015, the limit is 1024", false},
		{"at the cap", exportModule(pre + strings.Repeat("a", wasmcheck.MaxExportName-len(pre))), `export "docex_validate_aaaa`, true},
		{"short", exportModule(pre + "x\n"), `export "docex_validate_x\n" has signature () -> (), want () -> i32`, true},
	}
	lengths := map[string]string{"at the cap": `aaa"... (1024 bytes) has signature () -> (), want () -> i32`}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			instrumented := false
			sb.instrument = func(b []byte) ([]byte, wasmcheck.Info, error) {
				instrumented = true
				return wasmcheck.Instrument(b)
			}
			sum := sha256.Sum256(tt.mod)
			m := &pluginapi.Manifest{Name: "exp", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "exp.wasm", SHA256: hex.EncodeToString(sum[:])}
			_, err := sb.Load(ctx, m, tt.mod)
			if !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %.300v, want %v containing %q", err, pluginapi.ErrInvalidModule, tt.want)
			}
			if n := len(err.Error()); n > 300 {
				t.Fatalf("error of %d bytes: %.300s", n, err)
			}
			if l := lengths[tt.name]; !strings.Contains(err.Error(), l) {
				t.Fatalf("err = %v, want the name's length %q", err, l)
			}
			if instrumented != tt.compile {
				t.Fatalf("module instrumented (and compiled): %v, want %v", instrumented, tt.compile)
			}
		})
	}
}
