package wasmcheck

import (
	"errors"
	"fmt"
	"strings"
)

// Export names of what Instrument adds. A module that already exports a
// name starting with ReservedPrefix is rejected.
const (
	ReservedPrefix = "__docex_"
	// StopGlobal (i32): non-zero makes the guest trap at its next slow
	// path (at most Slice instruction units later).
	StopGlobal = "__docex_stop"
	// FuelGlobal (i64): instruction units left in the current slice.
	FuelGlobal = "__docex_fuel"
	// ReserveGlobal (i64): instruction units left after the current slice.
	ReserveGlobal = "__docex_reserve"
	// StartExport: the module's start function, which Instrument removes
	// from the start section so that the host can run it under a deadline
	// and a budget after instantiation.
	StartExport = "__docex_start"
	// GlobalPrefix + decimal index names an export of a defined mutable
	// global, so that the host can snapshot and restore every global.
	GlobalPrefix = "__docex_g"
)

// addedGlobals is the number of globals Instrument adds.
const addedGlobals = 4

// Version names the instrumentation's output: change it whenever Instrument
// would produce different bytes for the same input (caches key on it: the
// instrumented modules' cache, and the step cache through the guest
// environment). Dropping the custom sections (2026-12-07) changed the
// bytes but no instruction unit nor anything a guest sees: it changed
// CapsVersion, which the instrumented modules' cache also keys on, and not
// Version, so that the step cache keeps its results.
const Version = "3"

// Slice is how many instruction units a guest runs between two visits of
// the slow path, which checks StopGlobal, refills FuelGlobal from
// ReserveGlobal and exits to Go (a Go preemption point: without one, a
// garbage collection starting while a guest ran would wait for it forever,
// and with it the timer meant to stop the guest).
const Slice = 1 << 18

// A bulk instruction pays, besides the one unit the instruction itself
// costs, its length operand n shifted right by these: memory.init,
// memory.copy and memory.fill one unit per 64 bytes (memmove and memset
// move some 10 to 30 bytes per nanosecond, so such a unit takes a few
// nanoseconds, about what a plain instruction does; a slice of Slice
// units is 16 MiB of bulk work between two visits of the slow path),
// table.init, table.copy and table.fill one unit per element (an 8-byte
// reference; Harden caps all tables together at 2^20 elements).
const (
	MemoryBulkShift = 6
	TableBulkShift  = 0
)

// A grow pays, besides its one unit, its delta operand: memory.grow its
// pages shifted left by MemoryGrowShift (a 64 KiB page is 1024 units, as
// a memory.fill of 64 KiB is: the host allocates and zeroes the pages),
// table.grow one unit per element (TableBulkShift). It pays for the delta
// it asks for, before it runs, whether or not the grow succeeds.
const MemoryGrowShift = 10

// StaticBulkUnits: a bulk instruction whose length is the i32.const just
// before it, and whose length pays at most this many units (256 bytes of
// memory, 4 table elements), is charged with the region it is in, like
// any instruction, and gets no sequence of its own: such a copy costs
// about what one slow instruction does. Go's wasm backend copies and
// clears most structs so (the built-in steps hold 968 bulk instructions,
// most of them of constant lengths from 40 to 256 bytes).
const StaticBulkUnits = 4

// Info describes an instrumented module.
type Info struct {
	// HasStart: the module had a start function, now exported as StartExport.
	HasStart bool
	// MutableGlobals are the indexes of the defined mutable globals, each
	// exported as GlobalPrefix+index.
	MutableGlobals []uint32
	// MutatesTables: the code can change a table or drop a segment
	// (table.set/grow/fill/copy/init, elem.drop, data.drop), state that a
	// snapshot of memory and globals does not capture.
	MutatesTables bool
	// Checkpoints is the number of metering points added at function
	// entries and loop heads.
	Checkpoints int
	// BulkMeters is the number of bulk memory and table instructions
	// metered by their length, and of grows metered by their delta.
	BulkMeters int
	// MaxCompileMemory is the largest estimated compile memory of one of
	// the module's functions (bytes; see MaxFunctionCompileMemory).
	MaxCompileMemory uint64
	// CompiledCode is the estimated machine code of the whole module
	// (bytes; at most MaxCompiledCode): a Sandbox bounds what its loaded
	// modules hold together by it.
	CompiledCode uint64
	// InstanceBytes is the estimated host memory of one instance besides
	// its linear memory (see InstanceBase): a Sandbox charges an idle
	// instance this against Config.MaxIdleBytes.
	InstanceBytes uint64

	loops  int    // loops seen so far
	locals uint64 // locals of the function being instrumented
}

// Options selects where checkpoints go. The zero value is what Instrument
// uses: every function entry and every loop head.
type Options struct {
	// LoopsOnly puts checkpoints at loop heads only (the sandbox's former
	// scheme, which cannot stop loop-free recursion). Benchmarks only.
	LoopsOnly bool
	// None adds the globals and the slow path but no checkpoint: the guest
	// cannot be stopped. Benchmarks only.
	None bool
	// NoBulk charges bulk instructions one unit each, whatever their
	// length (the former scheme: a guest of large fills ran on).
	// Benchmarks only.
	NoBulk bool

	measure *Stats // Measure: record the measures, enforce no cap
}

// Instrument returns b (already Hardened) metered by instruction units.
//
// A checkpoint at the entry of every function and at the head of every
// loop subtracts from FuelGlobal the number of instructions that the
// function or loop body holds outside its nested loops (each nested loop
// pays for itself at its own head), and calls the slow path when the fuel
// goes negative. Between two checkpoints control only moves forward (every
// backward branch targets a loop head, every call enters a function), so
// each instruction runs at most once per payment. A region runs only once
// it is paid for.
//
// Bulk instructions (memory.init, memory.copy, memory.fill, table.init,
// table.copy, table.fill) do work proportional to their length operand n,
// not one instruction's: each pays, besides its unit in the region, n >>
// MemoryBulkShift units (memory) or n >> TableBulkShift (tables) just
// before it runs, from a fourth global ($n, not exported, past the
// module's own indexes so that guest code cannot name it, transient: it
// holds the length only across the sequence):
//
//	global.set $n  global.get $fuel  global.get $n  i64.extend_i32_u
//	[i64.const SHIFT  i64.shr_u]  i64.sub  global.set $fuel
//	global.get $fuel  i64.const 0  i64.lt_s  if  call $slow  end
//	global.get $n  <the instruction>
//
// so the stop flag and the budget are checked between two bulk
// instructions, and one instruction's own work is bounded by the memory's
// or the tables' size. A bulk instruction of a small constant length (see
// StaticBulkUnits) is charged its units with its region instead.
//
// The units charged are so an upper bound on the instructions executed
// plus the bulk instructions' units, exact for code without branches, and
// the same for the same path (deterministic).
//
// The slow path ($slow, a function appended to the module) traps when
// StopGlobal is set or when fuel and reserve are spent; otherwise it moves
// up to Slice units from the reserve to the fuel and exits to Go
// (memory.grow 0). The host sets FuelGlobal and ReserveGlobal before each
// call and reads them after it: units used = budget - fuel - reserve.
//
// Instrument also moves the start function out of the start section
// (exported as StartExport) and exports every defined mutable global (as
// GlobalPrefix+index). It decodes every instruction; an opcode it does not
// know makes it fail, so no loop can hide behind a mis-decoded immediate.
func Instrument(b []byte) ([]byte, Info, error) {
	return InstrumentWith(b, Options{})
}

// InstrumentWith is Instrument with checkpoint placement chosen by opt.
func InstrumentWith(b []byte, opt Options) ([]byte, Info, error) {
	var info Info
	c, err := count(b)
	if err == nil {
		err = c.enforce()
	}
	if err != nil {
		return nil, info, err
	}
	info.InstanceBytes = c.instanceBytes()
	type sec struct {
		id   byte
		body []byte
	}
	var secs []sec
	var imp imports
	var ft funcTypes
	var defined []uint32
	var nTypes, nFuncs, nGlobals uint32
	var globalSec []byte
	start := int64(-1)
	r := &reader{b: b[8:]}
	for r.len() > 0 {
		id, _ := r.byte()
		size, _ := r.u32()
		body, _ := r.sub(size)
		secs = append(secs, sec{id, body.b})
		var err error
		switch id {
		case 1:
			ft.types, err = parseTypes(body.b)
			nTypes = uint32(len(ft.types))
		case 2:
			imp, err = countImports(body)
		case 3:
			defined, err = parseFuncs(nil, body.b)
			nFuncs = uint32(len(defined))
		case 6:
			nGlobals, err = (&reader{b: body.b}).u32()
			globalSec = body.b
		case 7:
			err = checkNoReservedExport(&reader{b: body.b})
		case 8:
			var s uint32
			s, err = (&reader{b: body.b}).u32()
			start = int64(s)
		}
		if err != nil {
			return nil, info, err
		}
	}
	if imp.other != "" {
		return nil, info, fmt.Errorf("module imports %s: only functions may be imported", imp.other)
	}
	if nFuncs == 0 {
		return nil, info, errors.New("module defines no functions")
	}
	mut, err := mutableGlobals(globalSec)
	if err != nil {
		return nil, info, err
	}
	info.MutableGlobals = mut
	info.HasStart = start >= 0
	ft.funcs = append(imp.types, defined...)
	g := nGlobals // stop; g+1 fuel; g+2 reserve; g+3 $n (bulk lengths)
	slow := imp.funcs + nFuncs
	slowType := nTypes

	out := append([]byte(nil), b[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	newGlobals := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7e, 0x01, 0x42, 0x00, 0x0b, 0x7e, 0x01, 0x42, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b}
	added := map[byte]bool{}
	for _, s := range secs {
		// Known sections must appear in this order; sections this pass
		// adds go where they belong.
		if s.id != 0 && !added[6] && order(s.id) > order(6) {
			emit(6, append(appendU32(nil, addedGlobals), newGlobals...))
			added[6] = true
		}
		switch s.id {
		case 1:
			emit(1, appendVec(s.body, []byte{0x60, 0x00, 0x00}))
		case 3:
			emit(3, appendVec(s.body, appendU32(nil, slowType)))
		case 6:
			emit(6, appendVecN(s.body, addedGlobals, newGlobals))
			added[6] = true
		case 7:
			var ex []byte
			nex := uint32(3)
			for i, name := range []string{StopGlobal, FuelGlobal, ReserveGlobal} {
				ex = appendExport(ex, name, 0x03, g+uint32(i))
			}
			for _, gi := range mut {
				ex = appendExport(ex, fmt.Sprint(GlobalPrefix, gi), 0x03, gi)
				nex++
			}
			if start >= 0 {
				ex = appendExport(ex, StartExport, 0x00, uint32(start))
				nex++
			}
			emit(7, appendVecN(s.body, nex, ex))
			added[7] = true
		case 8: // start: moved to an export
		case 0:
			// Custom sections are dropped: the sandbox reads none, and
			// wazero decodes the name section's function and local names
			// at compilation (a probe's 60,000 functions of 60 local names
			// each, an 11 MB name section, took 10 s and 198 MB to install
			// against 2.4 s and 64 MB without it).
		case 10:
			body, err := instrumentCode(&reader{b: s.body}, g, slow, opt, &info, &ft, imp.funcs, len(out))
			if err != nil {
				return nil, info, err
			}
			emit(10, body)
		default:
			emit(s.id, s.body)
		}
	}
	if !added[7] {
		return nil, info, errors.New("module has no export section")
	}
	if !added[6] || nTypes == 0 {
		return nil, info, errors.New("module has no type or code section")
	}
	if opt.measure == nil {
		if err := limitErr("", "instrumented module size", uint64(len(out)), MaxInstrumentedBytes); err != nil {
			return nil, info, err
		}
	}
	return out, info, nil
}

// appendVec returns vector section body with one more element, elem.
func appendVec(body, elem []byte) []byte { return appendVecN(body, 1, elem) }

// appendVecN returns vector section body with n more elements, elems.
func appendVecN(body []byte, n uint32, elems []byte) []byte {
	sr := &reader{b: body}
	c, _ := sr.u32()
	out := appendU32(nil, c+n)
	out = append(out, sr.b[sr.off:]...)
	return append(out, elems...)
}

func appendExport(b []byte, name string, kind byte, idx uint32) []byte {
	b = appendU32(b, uint32(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return appendU32(b, idx)
}

// order is the position of a known section id in a module.
func order(id byte) int {
	// type, import, function, table, memory, tag, global, export, start,
	// element, data count, code, data
	for i, v := range []byte{1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11} {
		if v == id {
			return i
		}
	}
	return -1
}

// imports counts a module's imported functions and names the first
// import of another kind ("global \"env.g\""; "" if none).
type imports struct {
	funcs  uint32
	types  []uint32    // of the imported functions
	names  [][2]string // of the imported functions: module and name
	other  string
	memory bool // a memory is imported
}

func countImports(r *reader) (imports, error) {
	var c imports
	n, err := r.u32()
	for i := uint32(0); err == nil && i < n; i++ {
		var mod, name string
		if mod, err = r.nameText(); err != nil {
			break
		}
		if name, err = r.nameText(); err != nil {
			break
		}
		var kind byte
		if kind, err = r.byte(); err != nil {
			break
		}
		what := ""
		switch kind {
		case 0:
			c.funcs++
			var t uint32
			t, err = r.u32()
			c.types = append(c.types, t)
			c.names = append(c.names, [2]string{mod, name})
		case 1:
			what = "table"
			_, err = r.tableType()
		case 2:
			what, c.memory = "memory", true
			_, _, _, err = r.limits()
		case 3:
			what = "global"
			err = r.skip(2)
		case 4:
			what = "tag"
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		}
		if what != "" && c.other == "" {
			c.other = what + " " + QuoteShort(mod+"."+name)
		}
	}
	return c, err
}

// mutableGlobals returns the indexes of the mutable globals of a global
// section body (nil body: none).
// errMutableV128 refuses a mutable v128 global: the host reads and sets
// globals through wazero's api.MutableGlobal, whose Get and Set carry
// only the low 64 bits, so such a global's value could not be
// snapshotted and reset between invocations (its high half would read 0,
// then carry one invocation's value into the next).
const errMutableV128 = "module defines a mutable v128 global, which the sandbox cannot reset between invocations"

func mutableGlobals(body []byte) ([]uint32, error) {
	if body == nil {
		return nil, nil
	}
	r := &reader{b: body}
	n, err := r.u32()
	var out []uint32
	for i := uint32(0); err == nil && i < n; i++ {
		var vt, mut byte
		if vt, err = r.byte(); err != nil {
			break
		}
		if mut, err = r.byte(); err != nil {
			break
		}
		if mut == 1 && vt == 0x7b {
			return nil, fmt.Errorf("%s (global %d)", errMutableV128, i)
		}
		if mut == 1 {
			out = append(out, i)
		}
		err = r.constExpr()
	}
	return out, err
}

func checkNoReservedExport(r *reader) error {
	n, err := r.u32()
	for i := uint32(0); err == nil && i < n; i++ {
		var l uint32
		if l, err = r.count(1); err != nil {
			return err
		}
		name := string(r.b[r.off : r.off+int(l)])
		r.off += int(l)
		if strings.HasPrefix(name, ReservedPrefix) {
			return fmt.Errorf("module exports %s: names starting with %q are reserved", QuoteShort(name), ReservedPrefix)
		}
		if err = r.skip(1); err == nil {
			_, err = r.u32()
		}
	}
	return err
}

// Compile-time budgets: wazero's compiler is superlinear in the loops of
// one function (on a 2-core machine: 1,500 loops compiled in 1 s, 3,000 in
// 7.8 s, 5,000 in 33 s) and in loops times the locals they touch (20,000
// locals and 200 loops: over a minute). A module's functions may add up to
// CompileBudget of loops^3 * (100 + locals) / 100, and to LoopLocalsBudget
// of (loops * locals)^2 (docs/sandbox.md, "Compile time"). A Go guest
// (at most ~20 locals and 3 loops per function) uses a ten-thousandth of
// either.
const (
	CompileBudget    = 10_000_000_000
	LoopLocalsBudget = 250_000_000_000
)

// compileCost is the cost model of one function.
func compileCost(loops, locals uint64) uint64 {
	if loops > 1<<20 {
		loops = 1 << 20
	}
	return loops * loops * loops / 100 * (100 + locals)
}

// instrumentCode instruments a code section body; ft gives the
// signatures, imported the number of imported functions (the first code
// entry is function imported), prefix the bytes of the module before the
// code section (for MaxInstrumentedBytes).
func instrumentCode(r *reader, g, slow uint32, opt Options, info *Info, ft *funcTypes, imported uint32, prefix int) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	var cost, loopLocals, branchCost, work, code, mem uint64
	out := appendU32(nil, n+1)
	var body []byte
	var shape bodyShape
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		fr, err := r.sub(size)
		if err != nil {
			return nil, err
		}
		loops := info.loops
		fn := ft.fn(imported + i)
		shape.reset(ft, fn)
		// Errors name the function by its index in the function index
		// space (imports first), as wasm tools and wazero's traces do.
		where := fmt.Sprintf("function %d", imported+i)
		body, err = instrumentBody(fr, g, slow, opt, info, body[:0], &shape)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		// Parameters are locals to the compiler.
		locals := info.locals + uint64(fn.params)
		fl := uint64(info.loops - loops)
		cost += compileCost(fl, locals)
		loopLocals += fl * locals * fl * locals
		branchCost += shape.cost()
		work += shape.work()
		code += shape.code
		info.CompiledCode = code
		mem += shape.mem
		info.MaxCompileMemory = max(info.MaxCompileMemory, shape.mem)
		if m := opt.measure; m != nil {
			m.MaxBlockDepth = max(m.MaxBlockDepth, shape.maxDepth)
			m.MaxBrTableTargets = max(m.MaxBrTableTargets, shape.maxTargets)
			m.MaxStackHeight = max(m.MaxStackHeight, shape.maxHeight)
			m.MaxBranchCost = max(m.MaxBranchCost, shape.cost())
			m.MaxLoops, m.MaxLocals = max(m.MaxLoops, fl), max(m.MaxLocals, locals)
			m.BrTableTargets += shape.targets
			m.MaxInstructions = max(m.MaxInstructions, shape.instrs)
			m.Instructions += shape.instrs
			m.Blocks += shape.blocks
			m.Work += shape.work()
			m.MaxCompileMemory, m.CompiledCode = max(m.MaxCompileMemory, shape.mem), code
			m.CompileMemory = mem
			m.BranchCost, m.CompileCost, m.LoopLocals = branchCost, cost, loopLocals
		} else {
			if err := shape.check(where); err != nil {
				return nil, err
			}
			if cost > CompileBudget || loopLocals > LoopLocalsBudget {
				return nil, fmt.Errorf("%s: the module's compile cost exceeds the budget (this function: %d loops, memory.fill and table.fill included, %d locals; see docs/sandbox.md, \"Compile time\")", where, fl, locals)
			}
			if work > WorkBudget {
				return nil, fmt.Errorf("%s: the module's compile work is %d up to this function, the limit is %d (docs/sandbox.md, \"Compile time\")", where, work, uint64(WorkBudget))
			}
			// The compile memory caps come after the older ones, whose
			// refusals stay as they were.
			if err := limitErr(where, "estimated compile memory of one function (bytes)", shape.mem, MaxFunctionCompileMemory); err != nil {
				return nil, err
			}
			if err := limitErr(where, "estimated machine code of the module up to this function (bytes)", code, MaxCompiledCode); err != nil {
				return nil, err
			}
			if err := limitErr(where, "estimated compile memory of the module's functions up to this one, added up (bytes)", mem, CompileMemoryBudget); err != nil {
				return nil, err
			}
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		if opt.measure == nil {
			if err := limitErr(where, "instrumented module size", uint64(prefix+len(out)), MaxInstrumentedBytes); err != nil {
				return nil, err
			}
		}
	}
	sb := slowBody(g)
	out = appendU32(out, uint32(len(sb)))
	return append(out, sb...), nil
}

// slowBody is the slow path (see Instrument), with stop, fuel and reserve
// the globals g, g+1 and g+2:
//
//	if stop: unreachable
//	reserve += fuel; fuel = 0            ;; settle the overdraft
//	if reserve < 0: unreachable          ;; budget spent
//	if reserve < Slice { fuel = reserve; reserve = 0 }
//	else { fuel = Slice; reserve -= Slice }
//	memory.grow 0; drop                  ;; exit to Go
func slowBody(g uint32) []byte {
	stop, fuel, reserve := g, g+1, g+2
	get := func(b []byte, i uint32) []byte { return appendU32(append(b, 0x23), i) }
	set := func(b []byte, i uint32) []byte { return appendU32(append(b, 0x24), i) }
	slice := func(b []byte) []byte { return appendS64(append(b, 0x42), Slice) }
	b := []byte{0x00} // no locals
	b = append(get(b, stop), 0x04, 0x40, 0x00, 0x0b)
	b = append(get(get(b, reserve), fuel), 0x7c)
	b = set(b, reserve)
	b = set(append(b, 0x42, 0x00), fuel)
	b = append(get(b, reserve), 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b)
	b = append(slice(get(b, reserve)), 0x53, 0x04, 0x40)
	b = set(get(b, reserve), fuel)
	b = set(append(b, 0x42, 0x00), reserve)
	b = append(b, 0x05)
	b = set(slice(b), fuel)
	b = append(slice(get(b, reserve)), 0x7d)
	b = set(b, reserve)
	b = append(b, 0x0b)
	return append(b, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x0b)
}

// checkpoint appends the metering sequence and returns the offset of its
// 5-byte weight, patched when the region's size is known:
//
//	global.get $fuel  i64.const W  i64.sub  global.set $fuel
//	global.get $fuel  i64.const 0  i64.lt_s  if  call $slow  end
func checkpoint(out []byte, fuel, slow uint32) ([]byte, int) {
	out = appendU32(append(out, 0x23), fuel)
	out = append(out, 0x42)
	at := len(out)
	out = append(out, 0x80, 0x80, 0x80, 0x80, 0x00)
	out = appendU32(append(out, 0x7d, 0x24), fuel)
	out = appendU32(append(out, 0x23), fuel)
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40, 0x10)
	out = appendU32(out, slow)
	return append(out, 0x0b), at
}

// patchWeight writes w as a 5-byte signed LEB128 at out[at:].
func patchWeight(out []byte, at int, w int64) {
	for i := range 4 {
		out[at+i] = byte(w>>(7*i))&0x7f | 0x80
	}
	out[at+4] = byte(w>>28) & 0x3f
}

// maxWeight is the largest weight a 5-byte patch holds (2^34-1).
const maxWeight = 1<<34 - 1

func instrumentBody(r *reader, g, slow uint32, opt Options, info *Info, out []byte, shape *bodyShape) ([]byte, error) {
	// Locals are copied unchanged.
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	info.locals = 0
	for i := uint32(0); i < n; i++ {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		info.locals += uint64(c)
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	out = append(out, r.b[:r.off]...)
	fuel := g + 1
	// A region is the function body or a loop body: it is paid for at its
	// checkpoint. Blocks and ifs belong to the region around them.
	type frame struct {
		region bool
		patch  int   // weight offset in out, or -1 when not metered
		weight int64 // instructions directly in the region
	}
	regions := []frame{{region: true, patch: -1}}
	lastConst := int64(-1) // the value (as u32) of an i32.const just before, or -1
	var kinds []bool       // open blocks: true for a loop region
	if !opt.None && !opt.LoopsOnly {
		var at int
		out, at = checkpoint(out, fuel, slow)
		regions[0].patch = at
		info.Checkpoints++
	}
	closeRegion := func() {
		f := regions[len(regions)-1]
		regions = regions[:len(regions)-1]
		if f.patch >= 0 {
			patchWeight(out, f.patch, min(f.weight, maxWeight))
		}
	}
	for r.len() > 0 {
		if len(regions) == 0 {
			return nil, errors.New("instructions after the function's end")
		}
		start := r.off
		op, _ := r.byte()
		if err := skipImmediates(r, op); err != nil {
			return nil, fmt.Errorf("opcode 0x%x at %d: %w", op, start, err)
		}
		switch op {
		case 0x23, 0x24, 0x10, 0xd2: // global.get/set, call, ref.func
			// The added globals and function get indexes past the module's
			// own: an index that was out of range must stay refused, or
			// the guest could refill its own fuel.
			idx, _ := (&reader{b: r.b[start+1:]}).u32()
			if (op == 0x23 || op == 0x24) && idx >= g || (op == 0x10 || op == 0xd2) && idx >= slow {
				return nil, fmt.Errorf("opcode 0x%x at %d: index %d out of range", op, start, idx)
			}
		case 0x26: // table.set
			info.MutatesTables = true
		case 0xfc:
			if mutatesTables(r.b[start+1:]) {
				info.MutatesTables = true
			}
		}
		shape.op(op, r.b[start+1:r.off])
		regions[len(regions)-1].weight++
		if c, ok := chargedOp(op, r.b[start+1:]); ok {
			if c.fill {
				info.loops++ // wazero lowers a fill to a loop
			}
			static := lastConst >= 0 && c.units(lastConst) <= StaticBulkUnits
			if static {
				regions[len(regions)-1].weight += c.units(lastConst)
			}
			metered := !static && !opt.None && !opt.NoBulk
			shape.bulk(c, metered)
			if metered {
				out = bulkMeter(out, g, slow, c)
				info.BulkMeters++
			}
		}
		lastConst = -1
		if op == 0x41 {
			lastConst = constU32(r.b[start+1 : r.off])
		}
		out = append(out, r.b[start:r.off]...)
		switch op {
		case 0x02, 0x04: // block, if
			kinds = append(kinds, false)
		case 0x03: // loop: pays at the head of every iteration
			info.loops++
			kinds = append(kinds, true)
			f := frame{region: true, patch: -1}
			if !opt.None {
				out, f.patch = checkpoint(out, fuel, slow)
				info.Checkpoints++
			}
			regions = append(regions, f)
		case 0x0b: // end
			if len(kinds) == 0 { // the function's end
				closeRegion()
				continue
			}
			if kinds[len(kinds)-1] {
				closeRegion()
			}
			kinds = kinds[:len(kinds)-1]
		}
	}
	if len(regions) != 0 {
		return nil, errors.New("function body does not end")
	}
	return out, nil
}

// lengthCharge is how an instruction that pays for its last operand n is
// charged: n << shl >> shr units. fill: wazero compiles it to a loop (the
// fills); grow: it is memory.grow or table.grow (no memmove).
type lengthCharge struct {
	shl, shr   uint8
	fill, grow bool
}

func (c lengthCharge) units(n int64) int64 { return n << c.shl >> c.shr }

// chargedOp reports whether the instruction op (immediates at b) pays for
// its last operand, and how: the bulk instructions, by their length
// (memory.init 0xfc 8, memory.copy 10, memory.fill 11, table.init 12,
// table.copy 14, table.fill 17), and the grows, by their delta
// (memory.grow 0x40, table.grow 0xfc 15).
func chargedOp(op byte, b []byte) (lengthCharge, bool) {
	if op == 0x40 {
		return lengthCharge{shl: MemoryGrowShift, grow: true}, true
	}
	if op != 0xfc {
		return lengthCharge{}, false
	}
	sub, err := (&reader{b: b}).u32()
	if err != nil {
		return lengthCharge{}, false
	}
	switch sub {
	case 8, 10, 11:
		return lengthCharge{shr: MemoryBulkShift, fill: sub == 11}, true
	case 12, 14, 17:
		return lengthCharge{shr: TableBulkShift, fill: sub == 17}, true
	case 15:
		return lengthCharge{shr: TableBulkShift, grow: true}, true
	}
	return lengthCharge{}, false
}

// constU32 is the value of an i32.const's immediate (signed LEB128),
// as an unsigned 32-bit number.
func constU32(imm []byte) int64 {
	var v int64
	for i, c := range imm {
		if i >= 5 {
			break
		}
		v |= int64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c&0x40 != 0 && i < 4 {
				v |= -1 << (7 * (i + 1))
			}
			return int64(uint32(int32(v)))
		}
	}
	return -1
}

// bulkMeter appends the sequence that charges a bulk instruction's length
// or a grow's delta (see Instrument), with fuel and $n the globals g+1
// and g+3.
func bulkMeter(out []byte, g, slow uint32, c lengthCharge) []byte {
	fuel, n := g+1, g+3
	out = appendU32(append(out, 0x24), n)
	out = appendU32(append(out, 0x23), fuel)
	out = appendU32(append(out, 0x23), n)
	out = append(out, 0xad) // i64.extend_i32_u
	if c.shl > 0 {
		out = append(out, 0x42, c.shl, 0x86) // i64.const shl (< 64: one byte), i64.shl
	}
	if c.shr > 0 {
		out = append(out, 0x42, c.shr, 0x88) // i64.const shr (< 64: one byte), i64.shr_u
	}
	out = appendU32(append(out, 0x7d, 0x24), fuel)
	out = appendU32(append(out, 0x23), fuel)
	out = append(out, 0x42, 0x00, 0x53, 0x04, 0x40, 0x10)
	out = appendU32(out, slow)
	out = append(out, 0x0b)
	return appendU32(append(out, 0x23), n)
}

// mutatesTables reports whether the 0xfc sub-opcode at b changes tables or
// segment state: table.init (12), elem.drop (13), table.copy (14),
// table.grow (15), table.fill (17), data.drop (9).
func mutatesTables(b []byte) bool {
	sub, err := (&reader{b: b}).u32()
	if err != nil {
		return false
	}
	switch sub {
	case 9, 12, 13, 14, 15, 17:
		return true
	}
	return false
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func (r *reader) blockType() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	switch c {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return nil
	}
	if c&0xc0 == 0x40 { // any other one-byte negative s33: not a valid type
		return fmt.Errorf("bad block type 0x%x", c)
	}
	r.off--
	_, err = r.leb(5) // type index (non-negative s33)
	return err
}

func (r *reader) memarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 { // multi-memory: not enabled
		return errors.New("memory index in memarg")
	}
	_, err = r.u32()
	return err
}

func skipImmediates(r *reader, op byte) error {
	var err error
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
	case op == 0x02, op == 0x03, op == 0x04:
		err = r.blockType()
	case op == 0x0c, op == 0x0d, op == 0x10, op >= 0x20 && op <= 0x24, op == 0xd2:
		_, err = r.u32()
	case op == 0x25, op == 0x26: // table.get, table.set
		_, err = r.u32()
	case op == 0x0e: // br_table
		var n uint32
		if n, err = r.count(1); err == nil {
			for i := uint32(0); err == nil && i <= n; i++ {
				_, err = r.u32()
			}
		}
	case op == 0x11: // call_indirect
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case op == 0x1c: // select t*
		var n uint32
		if n, err = r.count(1); err == nil {
			err = r.skip(uint64(n))
		}
	case op >= 0x28 && op <= 0x3e:
		err = r.memarg()
	case op == 0x3f, op == 0x40:
		err = r.zero()
	case op == 0x41:
		_, err = r.leb(5)
	case op == 0x42:
		_, err = r.leb(10)
	case op == 0x43:
		err = r.skip(4)
	case op == 0x44:
		err = r.skip(8)
	case op >= 0x45 && op <= 0xc4:
	case op == 0xd0:
		_, err = r.byte()
	case op == 0xfc:
		err = r.prefixFC()
	case op == 0xfd:
		err = r.prefixFD()
	default:
		err = errors.New("unsupported opcode")
	}
	return err
}

func (r *reader) zero() error {
	c, err := r.byte()
	if err == nil && c != 0 {
		err = errors.New("expected 0x00")
	}
	return err
}

func (r *reader) prefixFC() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // saturating truncation
		return nil
	case sub == 8: // memory.init data 0
		if _, err = r.u32(); err == nil {
			err = r.zero()
		}
	case sub == 9, sub == 13, sub == 15, sub == 16, sub == 17:
		_, err = r.u32()
	case sub == 10: // memory.copy 0 0
		if err = r.zero(); err == nil {
			err = r.zero()
		}
	case sub == 11: // memory.fill 0
		err = r.zero()
	case sub == 12, sub == 14: // table.init, table.copy
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("unsupported 0xfc %d", sub)
	}
	return err
}

func (r *reader) prefixFD() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		return r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 21 && sub <= 34: // extract/replace lane
		return r.skip(1)
	case sub >= 84 && sub <= 91: // load/store lane
		if err = r.memarg(); err == nil {
			err = r.skip(1)
		}
		return err
	case sub <= 255: // no immediates
		return nil
	}
	return fmt.Errorf("unsupported 0xfd %d", sub)
}
