package wasmcheck

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// segmentsModule is a module with one function (docex_run, () -> i32,
// after the imports), one memory page, imports imports of docex.log,
// elemSegs passive element segments of elemEntries function references
// each (expressions when exprs), and dataSegs empty passive data segments.
func segmentsModule(imports, elemSegs, elemEntries, dataSegs int, exprs bool) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, n int, body []byte) {
		p := append(appendU32(nil, uint32(n)), body...)
		out = append(appendU32(append(out, id), uint32(len(p))), p...)
	}
	sec(1, 2, []byte("\x60\x00\x01\x7f\x60\x03\x7f\x7f\x7f\x01\x7f"))
	if imports > 0 {
		sec(2, imports, bytes.Repeat([]byte("\x05docex\x03log\x00\x01"), imports))
	}
	sec(3, 1, []byte{0})
	sec(5, 1, []byte{0, 1})
	sec(7, 2, append([]byte("\x06memory\x02\x00\x09docex_run\x00"), appendU32(nil, uint32(imports))...))
	if elemSegs > 0 {
		var seg []byte
		if exprs { // flag 5: passive, reference type, vec(expr)
			seg = appendU32([]byte{5, 0x70}, uint32(elemEntries))
			seg = append(seg, rep("\xd0\x70\x0b", elemEntries)...) // ref.null func
		} else { // flag 1: passive, element kind, vec(funcidx)
			seg = appendU32([]byte{1, 0}, uint32(elemEntries))
			seg = append(seg, rep(string(appendU32(nil, uint32(imports))), elemEntries)...)
		}
		sec(9, elemSegs, bytes.Repeat(seg, elemSegs))
	}
	if dataSegs > 0 {
		out = append(appendU32(append(out, 12), uint32(len(appendU32(nil, uint32(dataSegs))))), appendU32(nil, uint32(dataSegs))...)
	}
	sec(10, 1, []byte{4, 0, 0x41, 0, 0x0b})
	if dataSegs > 0 {
		sec(11, dataSegs, bytes.Repeat([]byte{1, 0}, dataSegs))
	}
	return out
}

// importNameModule is segmentsModule with one import, docex.log, whose
// field name (module name if n < 0) is |n| bytes instead.
func importNameModule(n int) []byte {
	long := strings.Repeat("A", max(n, -n))
	imp := append(appendU32(nil, 5), "docex"...)
	if n < 0 {
		imp = append(appendU32(nil, uint32(len(long))), long...)
	}
	if n > 0 {
		imp = append(append(imp, appendU32(nil, uint32(len(long)))...), long...)
	} else {
		imp = append(imp, "\x03log"...)
	}
	imp = append(imp, 0, 1)
	b := segmentsModule(1, 0, 0, 0, false)
	old := []byte("\x05docex\x03log\x00\x01")
	i := bytes.Index(b, old)
	// The import section: id, size, count 1, the import.
	body := append(appendU32(nil, 1), imp...)
	sec := append(appendU32([]byte{2}, uint32(len(body))), body...)
	start := i - 1 - len(appendU32(nil, uint32(1+len(old)))) - 1
	return append(append(append([]byte{}, b[:start]...), sec...), b[i+len(old):]...)
}

// exportNameModule is segmentsModule without imports whose function is
// exported as docex_validate_ followed by as many bytes as make its name
// n bytes long instead of docex_run.
func exportNameModule(n int) []byte {
	b := segmentsModule(0, 0, 0, 0, false)
	old := []byte("\x06memory\x02\x00\x09docex_run\x00\x00")
	i := bytes.Index(b, old)
	name := "docex_validate_" + strings.Repeat("a", n-len("docex_validate_"))
	exp := append(append(append([]byte{2, 6}, "memory\x02\x00"...), appendU32(nil, uint32(n))...), name...)
	exp = append(exp, 0, 0)
	// The export section: id, size, then the count and the entries.
	start := i - 1 - len(appendU32(nil, uint32(1+len(old)))) - 1
	sec := append(appendU32([]byte{7}, uint32(len(exp))), exp...)
	return append(append(append([]byte{}, b[:start]...), sec...), b[i+len(old):]...)
}

// The imports, element segments, their entries and the data segments are
// capped (wazero keeps each in the compiled module and in every instance,
// and decodes the element entries into every instance at instantiation),
// at the caps and not past them, with a *LimitError naming the cap. Before,
// a 4 MB module of one passive element segment of 4 million entries was
// accepted: 268 MB per compiled module, 3.2 s and 145 MB per instance.
func TestSegmentCaps(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  []byte
		want string // "" accepted
	}{
		{"element entries at the cap", segmentsModule(0, 1, MaxElementEntries, 0, false), ""},
		{"element entries past the cap", segmentsModule(0, 1, MaxElementEntries+1, 0, false), "entries of the element segments is 65537, the limit is 65536"},
		{"element entries in two segments", segmentsModule(0, 2, MaxElementEntries/2+1, 0, false), "entries of the element segments is 65538, the limit is 65536"},
		{"element expressions past the cap", segmentsModule(0, 1, MaxElementEntries+1, 0, true), "entries of the element segments is 65537, the limit is 65536"},
		{"element segments at the cap", segmentsModule(0, MaxElementSegments, 0, 0, false), ""},
		{"element segments past the cap", segmentsModule(0, MaxElementSegments+1, 0, 0, false), "number of element segments is 1025, the limit is 1024"},
		{"data segments at the cap", segmentsModule(0, 0, 0, MaxDataSegments, false), ""},
		{"data segments past the cap", segmentsModule(0, 0, 0, MaxDataSegments+1, false), "number of data segments is 262145, the limit is 262144"},
		{"imports at the cap", segmentsModule(MaxImports, 0, 0, 0, false), ""},
		{"imports past the cap", segmentsModule(MaxImports+1, 0, 0, 0, false), "number of imports is 1025, the limit is 1024"},
		{"import name at the cap", importNameModule(MaxImportName), ""},
		{"import name past the cap", importNameModule(MaxImportName + 1), "bytes of an import's module or field name is 257, the limit is 256"},
		{"import module name past the cap", importNameModule(-MaxImportName - 1), "bytes of an import's module or field name is 257, the limit is 256"},
		{"export name at the cap", exportNameModule(MaxExportName), ""},
		{"export name past the cap", exportNameModule(MaxExportName + 1), "bytes of an export's name is 1025, the limit is 1024"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := Harden(c.mod)
			if err == nil {
				_, _, err = Instrument(h)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `docs/sandbox.md, "Compile time"`) {
				t.Fatalf("err = %v (%T), want a *LimitError containing %q", err, err, c.want)
			}
		})
	}
}

// Info.InstanceBytes estimates what an instance holds besides its linear
// memory from the module's shape (InstanceBase and the per-item costs),
// so that an idle instance is charged it against the idle budget.
func TestInstanceBytes(t *testing.T) {
	base := uint64(InstanceBase + InstancePerFunction + InstancePerGlobal*addedGlobals)
	for _, c := range []struct {
		name string
		mod  []byte
		want uint64
	}{
		{"plain", segmentsModule(0, 0, 0, 0, false), base},
		{"element entries", segmentsModule(0, 2, 30000, 0, false), base + 2*InstancePerElemSegment + 60000*InstancePerElemEntry},
		{"data segments", segmentsModule(0, 0, 0, 100000, false), base + 100000*InstancePerDataSegment},
		{"imports", segmentsModule(1000, 0, 0, 0, false), base + 1000*(InstancePerImport+InstancePerFunction)},
		{"table", testModule{funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}, table: 1 << 20}.bytes(), base + (1<<20)*InstancePerTableElement},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, info, err := Instrument(c.mod)
			if err != nil {
				t.Fatal(err)
			}
			if info.InstanceBytes != c.want {
				t.Fatalf("InstanceBytes = %d, want %d", info.InstanceBytes, c.want)
			}
		})
	}
}

// Instrument drops the custom sections (the name section too): nothing
// reads them, and wazero decodes the name section's names at compilation.
// Before, they were copied: a probe's 11 MB name section (60,000
// functions of 60 local names) made an install take 10 s and 198 MB
// against 2.4 s and 64 MB without it.
func TestCustomSectionsDropped(t *testing.T) {
	mod := segmentsModule(0, 0, 0, 0, false)
	custom := func(name string, body []byte) []byte {
		p := append(appendU32(nil, uint32(len(name))), name...)
		p = append(p, body...)
		return append(appendU32([]byte{0}, uint32(len(p))), p...)
	}
	// A name section: function 0 named "f", its local 0 named "x".
	names := []byte{1, 4, 1, 0, 1, 'f', 2, 6, 1, 0, 1, 0, 1, 'x'}
	mod = append(mod, custom("name", names)...)
	mod = append(mod, custom("junk", bytes.Repeat([]byte{7}, 1000))...)
	out, _, err := Instrument(mod)
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{b: out[8:]}
	if err := eachSection(r, func(id byte, body *reader) error {
		if id == 0 {
			t.Errorf("custom section of %d bytes kept", body.len())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
