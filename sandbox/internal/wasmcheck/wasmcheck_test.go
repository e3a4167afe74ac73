package wasmcheck

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/docex-dev/docex/testplugins"
)

func testModules(tb testing.TB) map[string][]byte {
	tb.Helper()
	mods := map[string][]byte{}
	fsys, _ := testplugins.Dir(".")
	paths, err := fs.Glob(fsys, "*/*.wasm")
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range paths {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			tb.Fatal(err)
		}
		mods[p] = b
	}
	return mods
}

func TestCheckAcceptsTestPlugins(t *testing.T) {
	for name, b := range testModules(t) {
		err := Check(b)
		if strings.HasPrefix(name, "notwasm/") {
			if err == nil {
				t.Errorf("%s accepted", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	tests := map[string]string{
		"2^32 globals":        hdr + "\x06\x05\xff\xff\xff\xff\x0f",
		"2^32 locals":         hdr + "\x0a\x09\x01\x07\x01\xff\xff\xff\xff\x0f\x7f",
		"huge data":           hdr + "\x0b\x08\x01\x01\xff\xff\xff\xff\x0f",
		"huge name":           hdr + "\x00\x06\xff\xff\xff\xff\x0f\x00",
		"huge type params":    hdr + "\x01\x07\x01\x60\xff\xff\xff\xff\x0f",
		"huge table":          hdr + "\x04\x08\x01\x70\x00\xff\xff\xff\xff\x0f",
		"section past end":    hdr + "\x01\x10\x00",
		"unknown section":     hdr + "\x20\x00",
		"names: 2^32 entries": hdr + "\x00\x0b\x04name\x01\x05\xff\xff\xff\xff\x0f",
	}
	for name, mod := range tests {
		if err := Check([]byte(mod)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := Check([]byte(hdr + "\x04\x05\x01\x70\x01\x01\x02")); err != nil {
		t.Errorf("small table: %v", err)
	}
}

func TestHardenCapsTables(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	noMax := hdr + "\x04\x04\x01\x70\x00\x05" + "\x05\x03\x01\x00\x01"
	got, err := Harden([]byte(noMax))
	if err != nil {
		t.Fatal(err)
	}
	want := hdr + "\x04\x07\x01\x70\x01\x05\x80\x80\x40" + "\x05\x03\x01\x00\x01"
	if string(got) != want {
		t.Fatalf("Harden = %q, want %q", got, want)
	}
	small := []byte(hdr + "\x04\x05\x01\x70\x01\x01\x02")
	if got, _ := Harden(small); &got[0] != &small[0] {
		t.Fatal("unchanged module was copied")
	}
}

func FuzzCheck(f *testing.F) {
	for _, b := range testModules(f) {
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Harden(b) // must not panic
		if err == nil {
			if err := Check(h); err != nil {
				t.Fatalf("hardened module fails Check: %v", err)
			}
		}
	})
}

func TestInstrumentTestPlugins(t *testing.T) {
	for name, b := range testModules(t) {
		if strings.HasPrefix(name, "notwasm/") {
			continue
		}
		h, err := Harden(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _, err := Instrument(h)
		if refused := strings.HasPrefix(name, "importglobal/") || strings.HasPrefix(name, "refuel/"); refused != (err != nil) {
			t.Errorf("%s: refused=%v, err = %v", name, refused, err)
			continue
		}
		if err != nil {
			continue
		}
		if err := Check(got); err != nil {
			t.Errorf("%s: instrumented module fails Check: %v", name, err)
		}
		if _, _, err := Instrument(got); err == nil {
			t.Errorf("%s: instrumented twice", name)
		}
	}
}

// Indexes past the module's own globals and functions would reach what
// Instrument adds (the guest could refill its fuel or clear the stop
// flag): they must stay invalid.
func TestInstrumentRefusesAddedIndexes(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00" + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x05\x03\x01\x00\x01" + "\x07\x05\x01\x01m\x02\x00"
	for name, body := range map[string]string{
		"global.set 0": "\x00\x42\x00\x24\x00\x0b",
		"global.get 1": "\x00\x23\x01\x1a\x0b",
		"call 1":       "\x00\x10\x01\x0b",
	} {
		code := "\x0a" + string(rune(len(body)+2)) + "\x01" + string(rune(len(body))) + body
		if _, _, err := Instrument([]byte(hdr + code)); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	ok := "\x0a\x04\x01\x02\x00\x0b"
	if _, info, err := Instrument([]byte(hdr + ok)); err != nil || info.Checkpoints != 1 {
		t.Fatalf("plain module: %v, %+v", err, info)
	}
}

// Every function entry and loop head is metered; a start function becomes
// an export; mutable globals are exported for snapshots.
func TestInstrumentInfo(t *testing.T) {
	mods := testModules(t)
	for name, want := range map[string]Info{
		"fanout/fanout.wasm":       {Checkpoints: 8, MutableGlobals: []uint32{0}},
		"startspin/startspin.wasm": {Checkpoints: 3, HasStart: true},
		"tablebomb/tablebomb.wasm": {Checkpoints: 1, MutatesTables: true},
	} {
		h, err := Harden(mods[name])
		if err != nil {
			t.Fatal(err)
		}
		_, info, err := Instrument(h)
		if err != nil {
			t.Fatal(err)
		}
		if info.Checkpoints != want.Checkpoints || info.HasStart != want.HasStart || info.MutatesTables != want.MutatesTables ||
			len(info.MutableGlobals) != len(want.MutableGlobals) {
			t.Errorf("%s: info = %+v, want %+v", name, info, want)
		}
	}
}

// Modules whose compile time would run away are refused before wazero
// sees them (issue 7, defect 4).
func TestCompileBudgetRefuses(t *testing.T) {
	for name, mod := range map[string][]byte{
		"3000 loops":              genModule(20, 3000),
		"20000 locals":            denseModule(20000, 200, 100),
		"200 loops x 4000 locals": denseModule(4000, 200, 100),
		// wazero compiles memory.fill and table.fill to loops: a function
		// of 10,000 fills took 27.5 s to install, 40,000 over 87 s of CPU
		// (a probe). They were accepted before.
		"3000 fills":       bulkModule(3000, false),
		"20000 fills":      bulkModule(20000, false),
		"40000 fills":      bulkModule(40000, false),
		"3000 table fills": testModule{funcs: []uint32{0}, table: 1, bodies: [][]byte{append(append([]byte{0}, rep("\x41\x00\xd0\x70\x41\x01\xfc\x11\x00", 3000)...), 0x0b)}}.bytes(),
		// Each metered bulk instruction adds an if, and its join deepens
		// the dominator tree: 20,000 copies in sequence.
		"20000 copies": bulkModule(20000, true),
	} {
		h, err := Harden(mod)
		if err == nil {
			_, _, err = Instrument(h)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "function 0: ") {
			t.Errorf("%s: %v, want it to name function 0", name, err)
		}
	}
	for name, mod := range map[string][]byte{
		"1500 loops":              genModule(20, 1500),
		"122 loops x 4096 locals": denseModule(4096, 122, 100),
		"2000 fills":              bulkModule(2000, false),
		// 8,000 (under the work budget) are over MaxFunctionCompileMemory:
		// 312 MiB estimated (224 MB of RSS measured).
		"6000 copies": bulkModule(6000, true),
	} {
		h, err := Harden(mod)
		if err == nil {
			_, _, err = Instrument(h)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
