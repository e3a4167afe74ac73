package wasmcheck

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// bulkInstance instruments mod (its function 0 exported as "f") and
// instantiates it on wazero's compiler.
func bulkInstance(t *testing.T, mod []byte) (api.Module, func()) {
	t.Helper()
	h, err := Harden(mod)
	if err != nil {
		t.Fatal(err)
	}
	ins, _, err := Instrument(h)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	m, err := rt.Instantiate(ctx, ins)
	if err != nil {
		rt.Close(ctx)
		t.Fatal(err)
	}
	return m, func() { rt.Close(ctx) }
}

// runMetered calls f with the stop flag, fuel and reserve set and returns
// the units it used and its error.
func runMetered(t *testing.T, m api.Module, stop, fuel, reserve int64) (int64, error) {
	t.Helper()
	g := func(name string) api.MutableGlobal { return m.ExportedGlobal(name).(api.MutableGlobal) }
	g(StopGlobal).Set(uint64(stop))
	g(FuelGlobal).Set(uint64(fuel))
	g(ReserveGlobal).Set(uint64(reserve))
	_, err := m.ExportedFunction("f").Call(context.Background())
	return fuel + reserve - int64(g(FuelGlobal).Get()) - int64(g(ReserveGlobal).Get()), err
}

func fillModule(body []byte, locals bool) []byte {
	decl := []byte{0}
	if locals {
		decl = []byte{1, 1, 0x7f} // one i32
	}
	return testModule{funcs: []uint32{0}, bodies: [][]byte{append(append(decl, body...), 0x0b)},
		exports: appendExport(nil, "f", 0, 0), nExports: 1}.bytes()
}

// fill64K is memory.fill(0, 0, 65536): a whole page, 1024 units.
var fill64K = []byte{0x41, 0, 0x41, 0, 0x41, 0x80, 0x80, 0x04, 0xfc, 11, 0}

func isTrap(err error) bool {
	var exit *sys.ExitError
	return err != nil && !errors.As(err, &exit) && strings.Contains(err.Error(), "unreachable")
}

// A bulk instruction pays for its length: each unit of n >> shift before it
// runs, and nothing else changes. Before, each cost one unit whatever its
// length.
func TestBulkUnitsByLength(t *testing.T) {
	var body []byte
	body = append(body, fill64K...)                                               // 1024
	body = append(body, 0x41, 0, 0x41, 0, 0x41, 0x80, 0x80, 0x04, 0xfc, 10, 0, 0) // memory.copy 65536: 1024
	body = append(body, 0x41, 0, 0x41, 0, 0x41, 0x80, 0x05, 0xfc, 8, 0, 0)        // memory.init 640: 10
	body = append(body, 0x41, 0, 0xd0, 0x70, 0x41, 16, 0xfc, 17, 0)               // table.fill 16: 16
	body = append(body, 0x41, 0, 0x41, 0, 0x41, 16, 0xfc, 14, 0, 0)               // table.copy 16: 16
	body = append(body, 0x41, 0, 0x41, 0, 0x41, 63, 0xfc, 11, 0)                  // memory.fill 63: 0, with the region
	body = append(body, 0x41, 0, 0x41, 0, 0x41, 0x80, 0x02, 0xfc, 10, 0, 0)       // memory.copy 256: 4, with the region
	mod := testModule{funcs: []uint32{0}, bodies: [][]byte{append(append([]byte{0}, body...), 0x0b)},
		exports: appendExport(nil, "f", 0, 0), nExports: 1, data: make([]byte, 640), table: 16}.bytes()
	h, err := Harden(mod)
	if err != nil {
		t.Fatal(err)
	}
	if _, info, err := Instrument(h); err != nil || info.BulkMeters != 5 {
		t.Fatalf("BulkMeters = %d (%v), want 5: the two of small constant lengths go with their region", info.BulkMeters, err)
	}
	m, done := bulkInstance(t, mod)
	defer done()
	const instrs = 7*4 + 1 // the function's entry pays for its 29 instructions
	units, err := runMetered(t, m, 0, 1<<40, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(instrs + 1024 + 1024 + 10 + 16 + 16 + 0 + 4); units != want {
		t.Errorf("units = %d, want %d", units, want)
	}
}

func TestConstU32(t *testing.T) {
	for imm, want := range map[string]int64{
		"\x00": 0, "\x3f": 63, "\x40": 0xffffffc0, "\x7f": 0xffffffff, "\xc0\x00": 64, "\x80\x02": 256,
		"\x80\x80\x80\x80\x08": 0x80000000, "\xff\xff\xff\xff\x0f": 0xffffffff, "\x80\x80\x04": 65536,
		"\x80": -1, // truncated
	} {
		if got := constU32([]byte(imm)); got != want {
			t.Errorf("constU32(%x) = %d, want %d", imm, got, want)
		}
	}
}

// A loop of page-sized fills pays 1024 units per fill: a budget of 10^5
// units stops it at the 97th of 1,000 fills. Before, each iteration cost
// 10 units and the loop ran to its end on 10,004.
func TestBulkBudgetStopsFills(t *testing.T) {
	var body []byte
	body = append(body, 0x41, 0xe8, 0x07, 0x21, 0) // local.set 0 (i32.const 1000)
	body = append(body, 0x03, 0x40)                // loop
	body = append(body, fill64K...)
	// br_if 0 (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))
	body = append(body, 0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b)
	m, done := bulkInstance(t, fillModule(body, true))
	defer done()
	units, err := runMetered(t, m, 0, 1<<40, 0)
	if err != nil {
		t.Fatal(err)
	}
	if units < 1000*1024 {
		t.Fatalf("a run of 1,000 page fills used %d units, want at least %d", units, 1000*1024)
	}
	if _, err := runMetered(t, m, 0, 100_000, 0); !isTrap(err) {
		t.Fatalf("1,000 page fills on 10^5 units: err = %v, want the budget's trap", err)
	}
}

// The stop flag is seen between straight-line fills: 64 page fills (65,536
// units) in one function, with 10,000 units of fuel, reach the slow path.
// Before, the function's entry paid 257 units for all of them, and the
// stop flag was never checked.
func TestBulkStopFlag(t *testing.T) {
	var body []byte
	for range 64 {
		body = append(body, fill64K...)
	}
	m, done := bulkInstance(t, fillModule(body, false))
	defer done()
	if _, err := runMetered(t, m, 0, 10_000, 1<<40); err != nil {
		t.Fatalf("not stopped: %v", err)
	}
	if _, err := runMetered(t, m, 1, 10_000, 1<<40); !isTrap(err) {
		t.Fatalf("stop flag set: err = %v, want the stop's trap", err)
	}
}

// memory.grow and table.grow pay for their delta before they run, whether
// or not the grow succeeds: 1024 units per page (as a memory.fill of 64
// KiB), one per table element. Before, each cost one unit: a grow of 4095
// pages (256 MiB allocated and zeroed by the host) in a call of 5 units.
func TestGrowUnitsByDelta(t *testing.T) {
	var body []byte
	body = append(body, 0x41, 2, 0x40, 0, 0x1a)                  // memory.grow 2: 2048
	body = append(body, 0x41, 0x80, 0x80, 0x04, 0x40, 0, 0x1a)   // memory.grow 65536, refused: 2^26
	body = append(body, 0x41, 0, 0x40, 0, 0x1a)                  // memory.grow 0: 0, with the region
	body = append(body, 0xd0, 0x70, 0x41, 16, 0xfc, 15, 0, 0x1a) // table.grow 16: 16
	body = append(body, 0xd0, 0x70, 0x41, 4, 0xfc, 15, 0, 0x1a)  // table.grow 4: 4, with the region
	mod := testModule{funcs: []uint32{0}, bodies: [][]byte{append(append([]byte{0}, body...), 0x0b)},
		exports: appendExport(nil, "f", 0, 0), nExports: 1, table: 1}.bytes()
	h, err := Harden(mod)
	if err != nil {
		t.Fatal(err)
	}
	if _, info, err := Instrument(h); err != nil || info.BulkMeters != 3 {
		t.Fatalf("BulkMeters = %d (%v), want 3: the grows of small constant deltas go with their region", info.BulkMeters, err)
	}
	m, done := bulkInstance(t, mod)
	defer done()
	const instrs = 3*3 + 2*4 + 1 // the function's entry pays for its 18 instructions
	units, err := runMetered(t, m, 0, 1<<40, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(instrs + 2048 + 1<<26 + 0 + 16 + 4); units != want {
		t.Errorf("units = %d, want %d", units, want)
	}
	if got := m.Memory().Size(); got != 3*65536 {
		t.Errorf("memory is %d bytes, want 3 pages: the grows must still run", got)
	}
}

// A loop of refused grows of 65,536 pages pays 2^26 units per grow: a
// budget of 10^8 units stops it at the second of 1,000. Before, each
// iteration cost 9 units and the loop ran to its end on about 9,000.
func TestGrowBudgetStopsLoop(t *testing.T) {
	var body []byte
	body = append(body, 0x41, 0xe8, 0x07, 0x21, 0)                      // local.set 0 (i32.const 1000)
	body = append(body, 0x03, 0x40)                                     // loop
	body = append(body, 0x41, 0x80, 0x80, 0x04, 0x40, 0, 0x1a)          // drop (memory.grow 65536)
	body = append(body, 0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b) // br_if 0 (local.tee 0 (local.get 0 - 1))
	m, done := bulkInstance(t, fillModule(body, true))
	defer done()
	units, err := runMetered(t, m, 0, 1<<40, 0)
	if err != nil {
		t.Fatal(err)
	}
	if units < 1000<<26 {
		t.Fatalf("1,000 grows of 65,536 pages used %d units, want at least %d", units, 1000<<26)
	}
	if _, err := runMetered(t, m, 0, 100_000_000, 0); !isTrap(err) {
		t.Fatalf("1,000 grows on 10^8 units: err = %v, want the budget's trap", err)
	}
}
