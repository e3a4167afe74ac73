package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero/api"
)

// FuzzHostCallBounds calls every docex host function, through the oob test
// plugin's pass-through exports, with arbitrary arguments. The host must
// survive; the only acceptable outcomes are a return code, a trap for an
// out-of-bounds pointer, or a limit error.
func FuzzHostCallBounds(f *testing.F) {
	names := make([]string, 0, 13)
	for _, h := range hostFuncs() {
		names = append(names, h.name)
	}
	for i := range names {
		f.Add(uint8(i), uint32(0), uint32(16), uint32(65530), uint32(100), uint32(0xFFFFFFFF), uint32(1), int64(0))
		f.Add(uint8(i), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), int64(-1))
		f.Add(uint8(i), uint32(1), uint32(65535), uint32(1), uint32(8), uint32(8), uint32(0x40000000), int64(1<<62))
	}
	p := plugin(f, "oob")
	f.Fuzz(func(t *testing.T, which uint8, a, b, c, d, e, g uint32, off int64) {
		name := names[int(which)%len(names)]
		entry := "fuzz_" + name
		def := p.c.cm.ExportedFunctions()[entry]
		raw := []uint32{a, b, c, d, e, g}
		var args []uint64
		for i, pt := range def.ParamTypes() {
			if pt == api.ValueTypeI64 {
				args = append(args, uint64(off))
			} else {
				args = append(args, uint64(raw[i%len(raw)]))
			}
		}
		host := &fakeHost{tenant: "t", store: map[string]map[string]string{"t": {"key": "v"}, "u": {"key": "x"}}, leak: true}
		r, err := p.run(context.Background(), pluginapi.Call{TenantID: "t", Input: textDoc("in", "input text"),
			Params: map[string]string{"fn": "a"}, Host: host}, callOpts{entry: entry, args: args})
		switch {
		case err == nil, errors.Is(err, pluginapi.ErrPluginStatusError), errors.Is(err, pluginapi.ErrPluginOutputTooLarge):
		case errors.Is(err, pluginapi.ErrPluginTrap) && strings.Contains(err.Error(), "out-of-bounds memory access"):
		default:
			t.Fatalf("%s%v: unexpected error %v", name, args, err)
		}
		if err != nil && (r.Metadata != nil || r.Derived != nil) {
			t.Fatalf("failed run carries output")
		}
		if bad := host.openedForeign(); len(bad) > 0 {
			t.Fatalf("opened foreign refs %v", bad)
		}
	})
}

// FuzzLoadModule feeds arbitrary bytes to Load: it must return
// pluginapi.ErrInvalidModule (or succeed), never panic or hang.
func FuzzLoadModule(f *testing.F) {
	for _, name := range []string{"echo", "oob", "badimport", "wasi", "forge"} {
		_, mod := readPlugin(f, name)
		f.Add(mod)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	sb := newSandbox(f, Config{MaxCompiled: 1 << 20})
	f.Fuzz(func(t *testing.T, mod []byte) {
		sum := sha256.Sum256(mod)
		m := &pluginapi.Manifest{Name: "f", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "f.wasm", SHA256: hex.EncodeToString(sum[:])}
		p, err := sb.Load(context.Background(), m, mod)
		if err != nil {
			if !errors.Is(err, pluginapi.ErrInvalidModule) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		p.Close(context.Background())
	})
}
