package wasmcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testModule builds a module with one memory (exported as "memory"),
// the given types, functions and globals, and more exports.
type testModule struct {
	types    [][]byte // encoded function types
	funcs    []uint32 // type index of each defined function
	bodies   [][]byte // code entries (locals and instructions), no size
	globals  []byte   // encoded globals
	nGlobals int
	exports  []byte // encoded exports besides "memory"
	nExports int
	data     []byte // contents of one passive data segment
	table    uint32 // elements of one funcref table (none if 0)
}

func funcType(params, results int) []byte {
	b := appendU32([]byte{0x60}, uint32(params))
	b = append(b, bytes.Repeat([]byte{0x7f}, params)...)
	b = appendU32(b, uint32(results))
	return append(b, bytes.Repeat([]byte{0x7f}, results)...)
}

func (m testModule) bytes() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, n int, body []byte) {
		p := appendU32(nil, uint32(n))
		p = append(p, body...)
		out = append(out, id)
		out = appendU32(out, uint32(len(p)))
		out = append(out, p...)
	}
	if m.types == nil {
		m.types = [][]byte{funcType(0, 0)}
	}
	sec(1, len(m.types), bytes.Join(m.types, nil))
	var fs []byte
	for _, t := range m.funcs {
		fs = appendU32(fs, t)
	}
	sec(3, len(m.funcs), fs)
	if m.table > 0 {
		sec(4, 1, appendU32([]byte{0x70, 0}, m.table))
	}
	sec(5, 1, []byte{0, 1})
	if m.nGlobals > 0 {
		sec(6, m.nGlobals, m.globals)
	}
	sec(7, m.nExports+1, append(appendExport(nil, "memory", 2, 0), m.exports...))
	if m.data != nil {
		sec(12, 1, nil) // data count, for memory.init
	}
	var code []byte
	for _, b := range m.bodies {
		code = appendU32(code, uint32(len(b)))
		code = append(code, b...)
	}
	sec(10, len(m.bodies), code)
	if m.data != nil {
		sec(11, 1, append(appendU32([]byte{1}, uint32(len(m.data))), m.data...))
	}
	return out
}

// oneFunc is a module whose only function, of type () -> (), has body
// (no locals; the final end is added).
func oneFunc(body []byte) []byte {
	return testModule{funcs: []uint32{0}, bodies: [][]byte{append(append([]byte{0}, body...), 0x0b)}}.bytes()
}

func rep(s string, n int) []byte { return bytes.Repeat([]byte(s), n) }

// manyFuncs is a module of n functions with body each.
func manyFuncs(n int, body []byte) testModule {
	m := testModule{}
	for range n {
		m.funcs = append(m.funcs, 0)
		m.bodies = append(m.bodies, append(append([]byte{0}, body...), 0x0b))
	}
	return m
}

// brTable is a br_table of targets targets (the default included) over two
// blocks.
func brTable(targets int) []byte {
	b := append(rep("\x02\x40", 2), 0x41, 0, 0x0e)
	b = appendU32(b, uint32(targets-1))
	b = append(b, rep("\x00\x01", targets/2+1)[:targets]...)
	return append(b, rep("\x0b", 2)...)
}

// limitModules are modules just past each cap, and what the refusal must
// name. The code before the caps accepted every one of them.
func limitModules() map[string]struct {
	mod  []byte
	want string
} {
	type c = struct {
		mod  []byte
		want string
	}
	types := testModule{funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}}
	for range MaxTypes + 1 {
		types.types = append(types.types, funcType(0, 0))
	}
	globals := func(n int, mut byte) []byte {
		return testModule{funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}, nGlobals: n,
			globals: rep(string([]byte{0x7f, mut, 0x41, 0, 0x0b}), n)}.bytes()
	}
	exports := testModule{funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}, nExports: MaxExports}
	for i := range MaxExports {
		exports.exports = appendExport(exports.exports, fmt.Sprint("e", i), 0, 0)
	}
	stack := append(rep("\x41\x00", MaxStackHeight+1), rep("\x1a", MaxStackHeight+1)...)
	params := testModule{types: [][]byte{funcType(0, 0), funcType(MaxTypeParams+1, 0)}, funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}}
	results := testModule{types: [][]byte{funcType(0, 0), funcType(0, MaxTypeResults+1)}, funcs: []uint32{0}, bodies: [][]byte{{0, 0x0b}}}
	// Loops add a checkpoint each (23 bytes): 3,300 functions of 60 loops
	// beside data up to 16 MiB in all instrument to over 20 MiB.
	big := manyFuncs(3300, rep("\x03\x40\x0b", 60))
	big.data = make([]byte, 16<<20-len(big.bytes())-16)
	work := "up to this function, the limit is 8000000"
	return map[string]c{
		"types":            {types.bytes(), "number of types is 4097, the limit is 4096"},
		"type params":      {params.bytes(), "parameters of a function type is 129, the limit is 128"},
		"type results":     {results.bytes(), "results of a function type is 9, the limit is 8"},
		"functions":        {manyFuncs(MaxFunctions+1, nil).bytes(), "number of functions (imported and defined) is 65537, the limit is 65536"},
		"globals":          {globals(MaxGlobals+1, 0), "number of globals is 4097, the limit is 4096"},
		"mutable globals":  {globals(MaxMutableGlobals+1, 1), "number of mutable globals is 1025, the limit is 1024"},
		"exports":          {exports.bytes(), "number of exports is 4097, the limit is 4096"},
		"nested blocks":    {oneFunc(append(rep("\x02\x40", MaxBlockDepth+1), rep("\x0b", MaxBlockDepth+1)...)), fmt.Sprintf("function 0: block nesting depth is %d, the limit is %d", MaxBlockDepth+1, MaxBlockDepth)},
		"nested ifs":       {oneFunc(append(rep("\x41\x01\x04\x40", MaxBlockDepth+1), rep("\x0b", MaxBlockDepth+1)...)), fmt.Sprintf("function 0: block nesting depth is %d, the limit is %d", MaxBlockDepth+1, MaxBlockDepth)},
		"br_table targets": {oneFunc(brTable(MaxBrTableTargets + 1)), fmt.Sprintf("function 0: targets of one br_table is %d, the limit is %d", MaxBrTableTargets+1, MaxBrTableTargets)},
		// Function 0 declares exactly the cap; function 1 one more, in
		// two entries.
		"locals": {testModule{funcs: []uint32{0, 0}, bodies: [][]byte{
			append(appendU32([]byte{1}, MaxLocals), 0x7f, 0x0b),
			append(appendU32(append(appendU32([]byte{2}, MaxLocals-3), 0x7f), 4), 0x7e, 0x0b),
		}}.bytes(), fmt.Sprintf("function 1: locals in one function (parameters not counted) is %d, the limit is %d", MaxLocals+1, MaxLocals)},
		"stack height":  {oneFunc(stack), "function 0: operand stack height is 1025, the limit is 1024"},
		"function size": {oneFunc(rep("\x01", MaxFunctionInstructions)), fmt.Sprintf("function 0: instructions in one function is %d, the limit is %d", MaxFunctionInstructions+1, MaxFunctionInstructions)},
		// Blocks in sequence: no nesting, no branch, but a chain of
		// dominators 16,500 long.
		"sequential blocks":           {oneFunc(rep("\x02\x40\x0b", 16500)), "function 0: the module's compile work is 8"},
		"br_ifs in many functions":    {manyFuncs(40, rep("\x02\x40\x41\x00\x0d\x00\x0b", 2000)).bytes(), work},
		"br_tables in many functions": {manyFuncs(40, brTable(MaxBrTableTargets)).bytes(), work},
		"empty loops":                 {manyFuncs(20000, rep("\x03\x40\x0b", 60)).bytes(), work},
		"calls with 8 results":        {mresults(), work},
		"instrumented size":           {big.bytes(), "instrumented module size is 2"},
		// Compile memory (opCost): chains in one function, each just past
		// the cap, of loads, float-to-integer truncations, SIMD, integer
		// divisions, call_indirects and plain instructions, and a module
		// of functions each under that cap whose machine code is past
		// MaxCompiledCode. Before, a probe's one function of 1 million
		// loads installed in 64 s and 4.66 GB, 2 million i8x16.popcnt in
		// 1m54s and 6.49 GB.
		"loads":         {oneFunc(chain("\x41\x00", "\x28\x02\x00", 26300, "\x1a")), memErr(26300*memTrap + 2*memPlain)},
		"truncations":   {oneFunc(chain("\x41\x00", "\xb2\xa8", 23900, "\x1a")), memErr(23900*(memPlain+memTrunc) + 2*memPlain)},
		"SIMD":          {oneFunc(chain(v128zero, "\xfd\x62", 43700, "\x1a")), memErr((43700+1)*memHeavy + memPlain)},
		"divisions":     {oneFunc(chain("\x41\x01", "\x41\x01\x6d", 29200, "\x1a")), memErr(29200*(memPlain+memDiv) + 2*memPlain)},
		"call_indirect": {indirect(8000), memErr(8000 * (memPlain + memIndirect))},
		"plain":         {oneFunc(chain("\x41\x00", "\x45", 262200, "\x1a")), memErr(262200*memPlain + 2*memPlain)},
		// Instructions weighed plain until P9 found them heavier: a
		// function just under the cap of f64.convert_i64_u and
		// i64.reinterpret_f64 pairs (2 KiB each then) held 442 MB.
		"unsigned conversions": {oneFunc(chain("\x42\x00", "\xba\xbd", 37445, "\x1a")), memErr(37445*(memHeavy+memPlain) + 2*memPlain)},
		"copysign":             {oneFunc(chain(f64zero, f64zero+"\xa6", 37445, "\x1a")), memErr(37445*(memPlain+memHeavy) + 2*memPlain)},
		"abs":                  {oneFunc(chain(f64zero, "\x99", 43685, "\x1a")), memErr(43685*memHeavy + 2*memPlain)},
		"memory.size":          {oneFunc(chain("\x3f\x00", "\x3f\x00\x6a", 37445, "\x1a")), memErr(37445*(memHeavy+memPlain) + memHeavy + memPlain)},
		// P9: a chain of ifs whose true arm ends in unreachable (or
		// branches out) is two dominator levels deeper per if in wazero;
		// 11,000 of them in one function were accepted (work 7.6 * 10^6)
		// and compiled in 18 s of CPU.
		"ifs of unreachable": {ifChain("\x20\x00\x04\x40\x00\x0b", 11000, false), "function 0: the module's compile work is 22863610 up to this function, the limit is 8000000"},
		"ifs branching out":  {ifChain("\x20\x00\x04\x40\x0c\x01\x0b", 11000, true), "function 0: the module's compile work is 30662487 up to this function, the limit is 8000000"},
		"machine code": {manyFuncs(41, chain(v128zero, "\xfd\x62", 43000, "\x1a")).bytes(),
			fmt.Sprintf("function 40: estimated machine code of the module up to this function (bytes) is %d, the limit is %d", 41*(codeFunction+codeCheckpnt+43001*codeHeavy+2*codePlain), MaxCompiledCode)},
		"module compile memory": {manyFuncs(60, chain("\x41\x00", "\x28\x02\x00", 25000, "\x1a")).bytes(),
			fmt.Sprintf("function 58: estimated compile memory of the module's functions up to this one, added up (bytes) is %d, the limit is %d", 59*(memFunction+memCheckpoint+25000*memTrap+3*memPlain), uint64(CompileMemoryBudget))},
	}
}

// f64zero is f64.const 0.
const f64zero = "\x44\x00\x00\x00\x00\x00\x00\x00\x00"

// ifChain is a module whose function 0 (one i32 local) is n times unit,
// inside a block when outer.
func ifChain(unit string, n int, outer bool) []byte {
	body := []byte{1, 1, 0x7f}
	if outer {
		body = append(body, 0x02, 0x40)
	}
	body = append(body, rep(unit, n)...)
	if outer {
		body = append(body, 0x0b)
	}
	return testModule{funcs: []uint32{0}, bodies: [][]byte{append(body, 0x0b)}}.bytes()
}

// v128zero is v128.const 0.
const v128zero = "\xfd\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// chain is first, then unit n times, then last: a chain of dependent
// instructions.
func chain(first, unit string, n int, last string) []byte {
	return append(append([]byte(first), rep(unit, n)...), last...)
}

// memErr is the refusal of function 0 (no locals) whose instructions,
// the function's final end included, weigh body: the function's own
// weight and its entry checkpoint's are added.
func memErr(body uint64) string {
	return fmt.Sprintf("function 0: estimated compile memory of one function (bytes) is %d, the limit is %d", memFunction+memCheckpoint+body+memPlain, MaxFunctionCompileMemory)
}

// indirect is a module with a table whose function 0 makes n call_indirects
// of type 0.
func indirect(n int) []byte {
	return testModule{funcs: []uint32{0}, table: 1, bodies: [][]byte{append(append([]byte{0}, rep("\x41\x00\x11\x00\x00", n)...), 0x0b)}}.bytes()
}

// mresults is a module whose function 0 calls function 1, of 8 results,
// 160,000 times in 16 functions (each under MaxFunctionCompileMemory).
func mresults() []byte {
	m := testModule{types: [][]byte{funcType(0, 0), funcType(0, MaxTypeResults)}, funcs: []uint32{1}, bodies: [][]byte{append(append([]byte{0}, rep("\x41\x00", MaxTypeResults)...), 0x0b)}}
	call := append([]byte{0x10, 0}, rep("\x1a", MaxTypeResults)...)
	for range 16 {
		m.funcs = append(m.funcs, 0)
		m.bodies = append(m.bodies, append(append([]byte{0}, bytes.Repeat(call, 10000)...), 0x0b))
	}
	return m.bytes()
}

// Modules past each cap are refused before compilation, with an error
// naming the limit, the value and the cap.
func TestLimitsRefuse(t *testing.T) {
	for name, c := range limitModules() {
		t.Run(name, func(t *testing.T) {
			h, err := Harden(c.mod)
			if err == nil {
				_, _, err = Instrument(h)
			}
			if err == nil {
				t.Fatalf("accepted (%d bytes)", len(c.mod))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			var le *LimitError
			if !strings.Contains(err.Error(), "compile work") && !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), not a *LimitError", err, err)
			}
		})
	}
}

// realModules are the repository's test plugins and the built-in steps.
func realModules(t *testing.T) map[string][]byte {
	mods := testModules(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "plugins", "builtin", "steps.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mods["builtin/steps.wasm"] = b
	for name := range mods {
		if strings.HasPrefix(name, "notwasm/") || strings.HasPrefix(name, "importglobal/") || strings.HasPrefix(name, "refuel/") {
			delete(mods, name)
		}
	}
	return mods
}

// The repository's plugins (Go guests, WAT test plugins, the built-in
// steps) are accepted, each measure at most an eighth of its cap (the
// headroom docs/sandbox.md states).
func TestLimitsAdmitRealPlugins(t *testing.T) {
	var most Stats
	for name, b := range realModules(t) {
		h, err := Harden(b)
		if err == nil {
			_, _, err = Instrument(h)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		st, err := Measure(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range []struct {
			what       string
			value, cap uint64
		}{
			{"types", st.Types, MaxTypes},
			{"type params", st.MaxTypeParams, MaxTypeParams},
			{"type results", st.MaxTypeResults, MaxTypeResults},
			{"functions", st.Functions, MaxFunctions},
			{"globals", st.Globals, MaxGlobals},
			{"mutable globals", st.MutableGlobals, MaxMutableGlobals},
			{"exports", st.Exports, MaxExports},
			{"block depth", st.MaxBlockDepth, MaxBlockDepth},
			{"br_table targets", st.MaxBrTableTargets, MaxBrTableTargets},
			{"stack height", st.MaxStackHeight, MaxStackHeight},
			{"instructions in one function", st.MaxInstructions, MaxFunctionInstructions},
			{"imports", st.Imports, MaxImports},
			{"element segments", st.ElementSegments, MaxElementSegments},
			{"element entries", st.ElementEntries, MaxElementEntries},
		} {
			if m.value*8 > m.cap {
				t.Errorf("%s: %s %d: less than 8x headroom below the cap %d", name, m.what, m.value, m.cap)
			}
		}
		// The compile memory and machine code estimates and the data
		// segments: at most a third of their caps (csqlite's largest
		// function is 26% of one, the built-in steps' code 22% of the
		// other, their data segments 21% of the third).
		for _, m := range []struct {
			what       string
			value, cap uint64
		}{
			{"compile memory of one function", st.MaxCompileMemory, MaxFunctionCompileMemory},
			{"machine code", st.CompiledCode, MaxCompiledCode},
			// Go's data segments grow with the program (the built-in
			// steps have 55,818): the cap is set by the module size limit.
			{"data segments", st.DataSegments, MaxDataSegments},
		} {
			if m.value*3 > m.cap {
				t.Errorf("%s: %s %d: less than 3x headroom below the cap %d", name, m.what, m.value, m.cap)
			}
		}
		most = Stats{
			Functions: max(most.Functions, st.Functions), MaxBlockDepth: max(most.MaxBlockDepth, st.MaxBlockDepth),
			MaxBrTableTargets: max(most.MaxBrTableTargets, st.MaxBrTableTargets), MaxStackHeight: max(most.MaxStackHeight, st.MaxStackHeight),
			BranchCost: max(most.BranchCost, st.BranchCost), MaxBranchCost: max(most.MaxBranchCost, st.MaxBranchCost),
			MaxInstructions: max(most.MaxInstructions, st.MaxInstructions), Work: max(most.Work, st.Work),
			InstrumentedBytes: max(most.InstrumentedBytes, st.InstrumentedBytes),
			MaxCompileMemory:  max(most.MaxCompileMemory, st.MaxCompileMemory), CompiledCode: max(most.CompiledCode, st.CompiledCode),
			Imports: max(most.Imports, st.Imports), ElementSegments: max(most.ElementSegments, st.ElementSegments),
			ElementEntries: max(most.ElementEntries, st.ElementEntries), DataSegments: max(most.DataSegments, st.DataSegments),
			InstanceBytes: max(most.InstanceBytes, st.InstanceBytes),
		}
		t.Logf("%s: imports %d, element segments %d, element entries %d, data segments %d, instance bytes %d", name, st.Imports, st.ElementSegments, st.ElementEntries, st.DataSegments, st.InstanceBytes)
	}
	t.Logf("largest measures: %+v", most)
}

// goDispatch is a function shaped as Go's wasm backend shapes one with n
// call sites (or a switch of that many cases): n blocks nested, a
// br_table of n targets at the innermost, and code after each block's
// end.
func goDispatch(n int) []byte {
	b := append(rep("\x02\x40", n), 0x41, 0, 0x0e)
	b = appendU32(b, uint32(n-1))
	for i := range n {
		b = appendU32(b, uint32(i))
	}
	return append(b, rep("\x0b\x01", n)...)
}

// Go functions with thousands of call sites or switch cases (a probe's
// 4,000-case string switch nested 9,848 blocks deep; a 3,000-entry map
// literal, a br_table of 21,005 targets in a function of 372,115
// instructions) compile in 1 to 3 s and are accepted; the first caps
// (8,192 deep, 16,384 targets, 262,144 instructions) refused them.
func TestLimitsAdmitGoShapes(t *testing.T) {
	for _, n := range []int{9848, 21005, 40000} {
		h, err := Harden(oneFunc(goDispatch(n)))
		if err == nil {
			_, _, err = Instrument(h)
		}
		if err != nil {
			t.Errorf("a Go-shaped dispatch of %d: %v", n, err)
		}
	}
}

// QuoteShort quotes a short name in full and a long one cut at a whole
// character, with its length; Head cuts at the start of a character.
func TestQuoteShort(t *testing.T) {
	long := strings.Repeat("a", 63) + "é" + strings.Repeat("b", 100)
	tests := []struct{ in, want string }{
		{"env.g", `"env.g"`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", 64), `"` + strings.Repeat("x", 64) + `"`},
		{long, `"` + strings.Repeat("a", 63) + `"... (165 bytes)`},
		{strings.Repeat("\xff", 100), `"` + strings.Repeat(`\xff`, 64) + `"... (100 bytes)`},
	}
	for _, tt := range tests {
		if got := QuoteShort(tt.in); got != tt.want {
			t.Errorf("QuoteShort(%.80q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
