package wasmcheck

import (
	"fmt"
	"math"
)

// Caps on what makes wazero's compilation or instantiation slow, checked
// before wazero sees a module (docs/sandbox.md, "Compile time", gives the
// measurements behind them and what the repository's plugins use of each).
// Check enforces the module-level counts; Instrument, which decodes every
// instruction, the per-function ones, the branch budget and the size of
// its output.
const (
	// MaxTypes: entries of the type section.
	MaxTypes = 4096
	// MaxTypeParams and MaxTypeResults: parameters and results of one
	// function type (multi-value results are spilled on every call).
	MaxTypeParams  = 128
	MaxTypeResults = 8
	// MaxFunctions: imported plus defined functions. wazero compiles
	// every function, and instantiates a module in time linear in them.
	MaxFunctions = 65536
	// MaxGlobals and MaxMutableGlobals: defined globals; every mutable one
	// is exported and snapshotted, restored after every call.
	MaxGlobals        = 4096
	MaxMutableGlobals = 1024
	// MaxExports: entries of the export section.
	MaxExports = 4096
	// MaxImports: entries of the import section. wazero resolves and
	// keeps every import in every instance (about 44 bytes each).
	MaxImports = 1024
	// MaxImportName: bytes of an import's module or field name. No host
	// function has a longer name, so no such import could be resolved;
	// before, a module importing a 10 MB name was compiled and then
	// refused with a 10 MB error naming the import.
	MaxImportName = 256
	// MaxExportName: bytes of an export's name. The names the sandbox
	// calls are at most 64 bytes (docex_run_ and 54 more) and the
	// repository's plugins export none longer than 27 (Go, TinyGo, Rust,
	// C, AssemblyScript); C++ names exported mangled are longer, seldom
	// past a few hundred. Before, a name was bounded only by the module's
	// size: a module exporting a 10 MB docex_validate_ name of the wrong
	// signature was compiled, then refused with a 10 MB error naming it.
	MaxExportName = 1024
	// MaxElementSegments and MaxDataSegments: segments of the element and
	// data sections. wazero keeps every segment in the compiled module and
	// in every instance (a passive element segment about 32 bytes besides
	// its entries, a data segment about 24 bytes): 7 million empty passive
	// data segments held 400 MB per compiled module and 160 MB per
	// instance. Go's linker writes a data segment per data symbol (the
	// built-in steps, 5.6 MB, have 55,818): 2^18 is more than a Go guest
	// of the module size limit would have at that density.
	MaxElementSegments = 1024
	MaxDataSegments    = 1 << 18
	// MaxElementEntries: the entries of all element segments together
	// (function references or constant expressions). wazero decodes them
	// into every instance (about 42 bytes each) at instantiation: one
	// passive segment of 4 million entries, in a 4 MB module, took 3.2 s
	// and 145 MB per instance. As many as the functions a module may have:
	// a table holding every function once.
	MaxElementEntries = 65536

	// MaxBlockDepth: blocks, loops and ifs open at once in one function.
	MaxBlockDepth = 65536
	// MaxBrTableTargets: targets of one br_table (default included).
	MaxBrTableTargets = 65536
	// MaxStackHeight: values on the operand stack at once in one function.
	MaxStackHeight = 1024
	// MaxInstrumentedBytes: the size of the instrumented module, which is
	// what wazero compiles: each checkpoint adds about 23 bytes (a module
	// of 3 million empty functions grew 7x; within WorkBudget a 16 MiB
	// module grows by at most about 4.5 MB; the built-in steps by 2%).
	MaxInstrumentedBytes = 20 << 20

	// MaxFunctionInstructions: instructions in one function body (the
	// compiler is superlinear in a function's size: one function of 1.7
	// million instructions took 11 s).
	MaxFunctionInstructions = 2 << 20
	// WorkBudget bounds the compile work of the whole module, about
	// wazero's time in microseconds at load average 20 on a 2-core machine
	// (see the weights below and bodyShape). For instance a 3.7 MB module
	// of 20,000 functions of 60 empty loops (work 1.4 * 10^7) took 14.4 s,
	// 20,000 empty blocks in sequence in one function (1.3 * 10^7) 6 s; the
	// built-in steps (5.6 MB) are 2.5 * 10^6.
	WorkBudget = 8_000_000
)

// CapsVersion names the caps: change it whenever they change, so that a
// cache of instrumented modules (keyed on it and Version) does not keep
// serving a module accepted under other caps.
const CapsVersion = "9"

// LimitError is a module refused for exceeding one of the caps above.
type LimitError struct {
	Where string // "function 3" (index in the function index space: imported functions first), or "" for the module
	What  string // "block nesting depth"
	Value uint64
	Limit uint64
}

func (e *LimitError) Error() string {
	s := fmt.Sprintf("%s is %d, the limit is %d (docs/sandbox.md, \"Compile time\")", e.What, e.Value, e.Limit)
	if e.Where != "" {
		s = e.Where + ": " + s
	}
	return s
}

func limitErr(where, what string, value, limit uint64) error {
	if value <= limit {
		return nil
	}
	return &LimitError{Where: where, What: what, Value: value, Limit: limit}
}

// counts are what Check counts of a module's sections.
type counts struct {
	types, funcImports, funcs, globals, mutableGlobals, exports uint64
	imports, elemSegments, elemEntries, dataSegments            uint64
	tableElements                                               uint64 // the tables' minima, imported or defined
	maxImportName                                               uint64 // the longest import module or field name
	maxExportName                                               uint64 // the longest export name
	maxParams, maxResults                                       uint64
	bodies                                                      uint64 // function bodies read so far
}

func (c *counts) section(id byte, n uint32) {
	switch id {
	case 1:
		c.types += uint64(n)
	case 2:
		c.imports += uint64(n)
	case 9:
		c.elemSegments += uint64(n)
	case 11:
		c.dataSegments += uint64(n)
	case 3:
		c.funcs += uint64(n)
	case 6:
		c.globals += uint64(n)
	case 7:
		c.exports += uint64(n)
	}
}

func (c *counts) typeArity(results bool, n uint32) {
	if results {
		c.maxResults = max(c.maxResults, uint64(n))
	} else {
		c.maxParams = max(c.maxParams, uint64(n))
	}
}

func (c *counts) enforce() error {
	for _, l := range []struct {
		what         string
		value, limit uint64
	}{
		{"number of types", c.types, MaxTypes},
		{"parameters of a function type", c.maxParams, MaxTypeParams},
		{"results of a function type", c.maxResults, MaxTypeResults},
		{"number of functions (imported and defined)", c.funcImports + c.funcs, MaxFunctions},
		{"number of globals", c.globals, MaxGlobals},
		{"number of mutable globals", c.mutableGlobals, MaxMutableGlobals},
		{"number of exports", c.exports, MaxExports},
		{"number of imports", c.imports, MaxImports},
		{"bytes of an import's module or field name", c.maxImportName, MaxImportName},
		{"bytes of an export's name", c.maxExportName, MaxExportName},
		{"number of element segments", c.elemSegments, MaxElementSegments},
		{"entries of the element segments", c.elemEntries, MaxElementEntries},
		{"number of data segments", c.dataSegments, MaxDataSegments},
	} {
		if err := limitErr("", l.what, l.value, l.limit); err != nil {
			return err
		}
	}
	return nil
}

// What one instance of a module holds in the host's memory besides its
// linear memory, as InstanceBytes estimates it: wazero's module instance
// and the sandbox's state of it (InstanceBase), and per item of the
// module what wazero v1.12.0 keeps in every instance (Go heap per instance
// of modules of 20,000 to 1,000,000 such items, 2026-12-07, rounded up:
// 42 bytes per element entry, 32 per element segment besides its entries,
// 24 per data segment, 44 per import, 4 per function, 107 per global, 9
// per table element).
const (
	InstanceBase            = 64 << 10
	InstancePerElemEntry    = 48
	InstancePerElemSegment  = 32
	InstancePerDataSegment  = 32
	InstancePerImport       = 48
	InstancePerFunction     = 8
	InstancePerGlobal       = 128
	InstancePerTableElement = 16
)

// instanceBytes estimates the host memory of one instance besides its
// linear memory (see InstanceBase); the globals Instrument adds included.
func (c *counts) instanceBytes() uint64 {
	return InstanceBase + InstancePerElemEntry*c.elemEntries + InstancePerElemSegment*c.elemSegments +
		InstancePerDataSegment*c.dataSegments + InstancePerImport*c.imports +
		InstancePerFunction*(c.funcImports+c.funcs) + InstancePerGlobal*(c.globals+addedGlobals) +
		InstancePerTableElement*c.tableElements
}

// Stats are a module's measures against the caps above (see Measure).
type Stats struct {
	Types, MaxTypeParams, MaxTypeResults  uint64
	Functions, Globals, MutableGlobals    uint64
	Exports                               uint64
	MaxBlockDepth, MaxBrTableTargets      uint64
	MaxStackHeight, MaxBranchCost         uint64
	BranchCost, Bytes, InstrumentedBytes  uint64
	BrTableTargets                        uint64 // in all br_tables of the module
	MaxLoops, MaxLocals, CompileCost      uint64
	LoopLocals                            uint64
	MaxInstructions, Instructions, Blocks uint64 // per function, in all; basic blocks in all
	Work                                  uint64
	MaxCompileMemory, CompileMemory       uint64 // estimated: of the largest function, of all
	CompiledCode                          uint64 // estimated machine code of the module
	Imports, ElementSegments              uint64
	ElementEntries, DataSegments          uint64
	InstanceBytes                         uint64 // estimated host memory of an instance (Info.InstanceBytes)
}

// Measure returns b's measures against the caps, enforcing none of them
// (b must otherwise be a module that Harden and Instrument accept).
func Measure(b []byte) (Stats, error) {
	c, err := count(b)
	if err != nil {
		return Stats{}, err
	}
	h, err := Harden(b)
	if err != nil {
		return Stats{}, err
	}
	var st Stats
	out, _, err := InstrumentWith(h, Options{measure: &st})
	if err != nil {
		return Stats{}, err
	}
	st.Types, st.MaxTypeParams, st.MaxTypeResults = c.types, c.maxParams, c.maxResults
	st.Functions, st.Globals, st.MutableGlobals, st.Exports = c.funcImports+c.funcs, c.globals, c.mutableGlobals, c.exports
	st.Bytes, st.InstrumentedBytes = uint64(len(b)), uint64(len(out))
	st.Imports, st.ElementSegments, st.ElementEntries, st.DataSegments = c.imports, c.elemSegments, c.elemEntries, c.dataSegments
	st.InstanceBytes = c.instanceBytes()
	return st, nil
}

// sig is a function type's arity.
type sig struct{ params, results uint32 }

// funcTypes are the signatures a module's code refers to.
type funcTypes struct {
	types []sig
	funcs []uint32 // type index of every function, imported first
}

func (ft *funcTypes) typ(i uint32) sig {
	if int(i) < len(ft.types) {
		return ft.types[i]
	}
	return sig{} // invalid: wazero refuses the module
}

func (ft *funcTypes) fn(i uint32) sig {
	if int(i) < len(ft.funcs) {
		return ft.typ(ft.funcs[i])
	}
	return sig{}
}

// parseTypes reads the arities of a type section body.
func parseTypes(body []byte) ([]sig, error) {
	r := &reader{b: body}
	n, err := r.u32()
	out := make([]sig, 0, n)
	for i := uint32(0); err == nil && i < n; i++ {
		var s sig
		if _, err = r.byte(); err != nil {
			break
		}
		if s.params, err = r.count(1); err != nil {
			break
		}
		if err = r.skip(uint64(s.params)); err != nil {
			break
		}
		if s.results, err = r.count(1); err != nil {
			break
		}
		err = r.skip(uint64(s.results))
		out = append(out, s)
	}
	return out, err
}

// parseFuncs appends the type indexes of a function section body.
func parseFuncs(dst []uint32, body []byte) ([]uint32, error) {
	r := &reader{b: body}
	n, err := r.u32()
	for i := uint32(0); err == nil && i < n; i++ {
		var t uint32
		t, err = r.u32()
		dst = append(dst, t)
	}
	return dst, err
}

// bodyShape follows one function body's control flow and operand stack
// height (an upper bound: it does not type-check; wazero does).
//
// Branch cost: wazero's loop detection walks, for every edge of the
// control-flow graph, from the edge's source up the dominator tree, and
// its handling of a block's predecessors is quadratic in their number.
// bodyShape follows the basic blocks wazero creates (a loop's head, an
// if's arms, the code after a br_if, the join after a block or an if that
// something reaches) with an upper bound of their depth in the dominator
// tree (a join is at most one deeper than the shallowest of its
// predecessors; the false edge of an if without else comes from an else
// block of its own), and charges every edge the depth of its source / 16, and
// every join its predecessors squared / 512 (20,000 empty blocks in
// sequence, 2*10^8 / 16: 6 s; a br_table of 100,000 targets over two
// blocks, 5*10^9 / 512: 8 s).
type bodyShape struct {
	ft     *funcTypes
	frames []shapeFrame
	height uint64
	live   bool   // the current code is reachable
	depth  uint64 // of the current basic block

	maxDepth, maxHeight, maxTargets, targets uint64
	dom, joins                               uint64
	instrs, blocks, calls, callValues        uint64 // instructions, basic blocks, calls, their arguments and results
	added                                    uint64 // instructions of the checkpoints
	mem, code                                uint64 // estimated compile memory and machine code (opCost)
}

// work is the function's compile work (see WorkBudget), the checkpoints
// Instrument adds included.
func (s *bodyShape) work() uint64 {
	return workPerFunction + workPerBlock*s.blocks + (s.instrs+s.added)/4 + workPerCall*s.calls + workPerCallValue*s.callValues + s.cost()
}

// checkpoint counts what Instrument adds at a function's entry or a loop's
// head: 10 instructions, an if (2 basic blocks) and a call.
func (s *bodyShape) checkpoint() {
	s.added += 10
	s.blocks += 2
	s.calls++
	s.mem += memCheckpoint
	s.code += codeCheckpnt
}

// bulk counts a bulk memory or table instruction or a grow (see
// chargedOp) and what Instrument adds before it when metered: the metering
// sequence (15 instructions, an if whose join the code after it lives in,
// a call); and, for a bulk instruction, wazero's own lowering, a call of
// memmove (3 arguments) and, for memory.fill and table.fill, a loop of 3
// basic blocks (the fill's loop also counts as a loop in compileCost).
// Each puts the code after it one level deeper in the dominator tree. Code
// that cannot be reached is not compiled.
func (s *bodyShape) bulk(c lengthCharge, metered bool) {
	if !s.live {
		return
	}
	d := s.depth
	if metered {
		s.added += 15
		s.mem += 15*memPlain + memHeavy
		s.code += 15*codePlain + codeHeavy
		s.calls++ // $slow
		// The if: its arm (d+1) and the join (from the arm and the false
		// edge).
		s.dom += d + d + 1 + d
		s.joins += 2 * 2
		s.blocks += 2
		d++
	}
	if c.grow {
		s.depth = d
		return
	}
	s.calls++ // memmove
	s.callValues += 3
	s.mem += memHeavy
	s.code += codeHeavy
	if c.fill {
		// Before the loop (d+1), the loop (d+2) and the code after it
		// (from d and the loop); the loop's head from before it and its
		// own back edge.
		s.dom += d + d + (d + 1) + 2*(d+2)
		s.joins += 2*2 + 2*2
		s.blocks += 3
		d++
	}
	s.depth = d
}

type shapeFrame struct {
	base, params, results uint64 // operand stack
	kind                  byte   // 0x02 block (and the function), 0x03 loop, 0x04 if
	dead, hasElse         bool   // dead: opened in unreachable code
	preds, sumDepth       uint64 // edges to the join after the frame
	minDepth, ifDepth     uint64
}

// cost is the function's branch cost (see bodyShape), in compile work.
func (s *bodyShape) cost() uint64 { return s.dom/16 + s.joins/512 }

func (s *bodyShape) reset(ft *funcTypes, fn sig) {
	*s = bodyShape{ft: ft, live: true, mem: memFunction, code: codeFunction,
		frames: append(s.frames[:0], shapeFrame{kind: 0x02, results: uint64(fn.results), minDepth: math.MaxUint64})}
	s.checkpoint()
}

func (s *bodyShape) push(n uint64) {
	s.height += n
	s.maxHeight = max(s.maxHeight, s.height)
}

func (s *bodyShape) pop(n uint64) {
	base := uint64(0)
	if len(s.frames) > 0 {
		base = s.frames[len(s.frames)-1].base
	}
	if s.height < base+n {
		s.height = base // unreachable code (polymorphic stack) or invalid
		return
	}
	s.height -= n
}

// unreachable: after br, br_table, return, unreachable.
func (s *bodyShape) unreachable() {
	if len(s.frames) > 0 {
		s.height = s.frames[len(s.frames)-1].base
	}
	s.live = false
}

// newBlock: the code goes on in a new basic block whose only predecessor
// is the current one.
func (s *bodyShape) newBlock() {
	if s.live {
		s.dom += s.depth
		s.depth++
		s.blocks++
	}
}

// branch records an edge from the current block to label.
func (s *bodyShape) branch(label uint32) {
	i := len(s.frames) - 1 - int(label)
	if !s.live || i < 0 || int(label) < 0 {
		return
	}
	f := &s.frames[i]
	if f.kind == 0x03 { // to a loop's head, which dominates the source
		s.dom += s.depth
		return
	}
	f.preds++
	f.sumDepth += s.depth
	f.minDepth = min(f.minDepth, s.depth)
}

func (s *bodyShape) blockSig(imm []byte) sig {
	if len(imm) == 0 {
		return sig{}
	}
	switch c := imm[0]; {
	case c == 0x40:
		return sig{}
	case c&0xc0 == 0x40: // a value type
		return sig{results: 1}
	}
	i, err := (&reader{b: imm}).leb(5)
	if err != nil || i > 0xffffffff {
		return sig{}
	}
	return s.ft.typ(uint32(i))
}

func (s *bodyShape) end() {
	if len(s.frames) == 0 {
		return
	}
	f := s.frames[len(s.frames)-1]
	s.frames = s.frames[:len(s.frames)-1]
	s.height = f.base
	s.push(f.results)
	switch {
	case f.dead:
		s.live = false
	case f.kind == 0x03:
		s.newBlock() // unreachable after a loop that never falls through
	default:
		if s.live {
			f.preds++
			f.sumDepth += s.depth
			f.minDepth = min(f.minDepth, s.depth)
		}
		if f.kind == 0x04 && !f.hasElse { // the if's false edge
			// wazero gives an if without else an empty else block that
			// jumps to the join. When nothing else reaches the join (the
			// true arm ends in unreachable, or branches out), the join is
			// a child of that else block, two levels below the if's
			// block: a chain of such ifs is a chain of dominators two
			// blocks deeper per if (P9: 11,000 "if unreachable end" in
			// one function took 18 s of CPU, within the budget as one
			// block deeper per if).
			if f.preds == 0 {
				s.dom += f.ifDepth
				s.blocks++
				f.minDepth = f.ifDepth + 1
				f.sumDepth += f.ifDepth + 1
			} else {
				f.minDepth = min(f.minDepth, f.ifDepth)
				f.sumDepth += f.ifDepth
			}
			f.preds++
		}
		s.live = f.preds > 0
		if s.live {
			s.dom += f.sumDepth
			s.joins += f.preds * f.preds
			s.depth = f.minDepth + 1
			s.blocks++
		}
	}
}

// op accounts for one instruction, imm its immediates.
func (s *bodyShape) op(op byte, imm []byte) {
	s.instrs++
	mem, code := opCost(op, imm)
	s.mem += mem
	s.code += code
	u32 := func(b []byte) uint32 {
		v, _ := (&reader{b: b}).u32()
		return v
	}
	switch {
	case op == 0x00: // unreachable
		s.unreachable()
	case op == 0x0c: // br
		s.branch(u32(imm))
		s.unreachable()
	case op == 0x0f: // return
		s.branch(uint32(len(s.frames) - 1))
		s.unreachable()
	case op == 0x01: // nop
	case op == 0x02, op == 0x03, op == 0x04: // block, loop, if
		if op == 0x04 {
			s.pop(1)
		}
		bt := s.blockSig(imm)
		s.pop(uint64(bt.params))
		s.frames = append(s.frames, shapeFrame{base: s.height, params: uint64(bt.params), results: uint64(bt.results),
			kind: op, dead: !s.live, minDepth: math.MaxUint64, ifDepth: s.depth})
		s.push(uint64(bt.params))
		s.maxDepth = max(s.maxDepth, uint64(len(s.frames)-1))
		if op != 0x02 {
			s.newBlock() // the loop's head, the if's true arm
		}
		if op == 0x03 {
			s.checkpoint()
		}
	case op == 0x05: // else
		if len(s.frames) > 0 {
			f := &s.frames[len(s.frames)-1]
			s.height = f.base
			s.push(f.params)
			if !f.dead {
				if s.live {
					f.preds++
					f.sumDepth += s.depth
					f.minDepth = min(f.minDepth, s.depth)
				}
				f.hasElse = true
				s.live, s.depth = true, f.ifDepth
				s.newBlock()
			}
		}
	case op == 0x0b: // end
		s.end()
	case op == 0x0d: // br_if
		s.pop(1)
		s.branch(u32(imm))
		s.newBlock()
	case op == 0x0e: // br_table
		r := &reader{b: imm}
		n, _ := r.u32()
		s.maxTargets = max(s.maxTargets, uint64(n)+1)
		s.targets += uint64(n) + 1
		s.mem += memTarget * (uint64(n) + 1)
		s.code += codeTarget * (uint64(n) + 1)
		s.pop(1)
		for i := uint32(0); i <= n; i++ {
			l, err := r.u32()
			if err != nil {
				break
			}
			s.branch(l)
		}
		s.unreachable()
	case op == 0x10: // call
		f := s.ft.fn(u32(imm))
		s.calls++
		s.callValues += uint64(f.params) + uint64(f.results)
		s.pop(uint64(f.params))
		s.push(uint64(f.results))
	case op == 0x11: // call_indirect
		f := s.ft.typ(u32(imm))
		s.calls++
		s.callValues += uint64(f.params) + uint64(f.results)
		s.pop(1 + uint64(f.params))
		s.push(uint64(f.results))
	case op == 0x1a, op == 0x21, op == 0x24: // drop, local.set, global.set
		s.pop(1)
	case op == 0x1b, op == 0x1c: // select
		s.pop(3)
		s.push(1)
	case op == 0x20, op == 0x23, op == 0x3f, op >= 0x41 && op <= 0x44, op == 0xd0, op == 0xd2:
		s.push(1) // local.get, global.get, memory.size, consts, ref.null, ref.func
	case op == 0x22, op == 0x25, op >= 0x28 && op <= 0x35, op == 0x40, op == 0x45, op == 0x50, op == 0xd1:
		// local.tee, table.get, loads, memory.grow, eqz, ref.is_null: one in, one out
	case op == 0x26, op >= 0x36 && op <= 0x3e: // table.set, stores
		s.pop(2)
	case op >= 0x46 && op <= 0x4f, op >= 0x51 && op <= 0x66: // comparisons
		s.pop(1)
	case op >= 0x67 && op <= 0xc4:
		if unaryNumeric(op) {
			break
		}
		s.pop(1)
	case op == 0xfc:
		switch sub := u32(imm); {
		case sub <= 7, sub == 9, sub == 13: // trunc_sat, data.drop, elem.drop
		case sub == 15: // table.grow
			s.pop(1)
		case sub == 16: // table.size
			s.push(1)
		default: // memory.init/copy/fill, table.init/copy/fill
			s.pop(3)
		}
	case op == 0xfd:
		s.simd(u32(imm))
	}
}

// unaryNumeric: numeric opcodes in 0x67-0xc4 that take one operand.
func unaryNumeric(op byte) bool {
	switch {
	case op >= 0x67 && op <= 0x69, op >= 0x79 && op <= 0x7b, // clz, ctz, popcnt
		op >= 0x8b && op <= 0x91, op >= 0x99 && op <= 0x9f, // float unary
		op >= 0xa7 && op <= 0xc4: // conversions, sign extension
		return true
	}
	return false
}

func (s *bodyShape) simd(sub uint32) {
	switch {
	case sub <= 10, sub >= 15 && sub <= 22, sub == 24, sub == 25, sub == 27, sub == 29, sub == 31, sub == 33,
		sub == 77, sub == 83, sub == 92, sub == 93, sub == 94, sub == 95:
		// loads, splats, extract_lane, not, any_true, load_zero, demote/promote
	case sub == 12: // v128.const
		s.push(1)
	case sub == 11, sub >= 88 && sub <= 91: // store, store_lane
		s.pop(2)
	case sub == 82: // bitselect
		s.pop(2)
	case sub >= 96 && simdUnary[sub-96]:
	default: // binary (shuffle, swizzle, replace_lane, comparisons, arithmetic, load_lane)
		s.pop(1)
	}
}

// simdUnary marks the one-operand SIMD opcodes from 96 on.
var simdUnary = func() (u [160]bool) {
	for _, op := range []uint32{96, 97, 98, 99, 100, 103, 104, 105, 106, 116, 117, 122, 124, 125, 126, 127,
		128, 129, 131, 132, 135, 136, 137, 138, 148, 160, 161, 163, 164, 167, 168, 169, 170,
		192, 193, 195, 196, 199, 200, 201, 202, 224, 225, 227, 236, 237, 239,
		248, 249, 250, 251, 252, 253, 254, 255} {
		u[op-96] = true
	}
	return u
}()

// check returns the first per-function cap the body exceeds.
func (s *bodyShape) check(where string) error {
	if err := limitErr(where, "block nesting depth", s.maxDepth, MaxBlockDepth); err != nil {
		return err
	}
	if err := limitErr(where, "targets of one br_table", s.maxTargets, MaxBrTableTargets); err != nil {
		return err
	}
	if err := limitErr(where, "operand stack height", s.maxHeight, MaxStackHeight); err != nil {
		return err
	}
	return limitErr(where, "instructions in one function", s.instrs, MaxFunctionInstructions)
}

// Weights of the compile work, in about a microsecond each of wazero's
// time on a 2-core machine at load average 20: an empty function took
// 58 us, a basic block 4.5-5.5 us, a plain instruction 0.27 us (1/4), a
// call 7 us per argument or result (16-result calls: 113 us each).
const (
	workPerFunction  = 64
	workPerBlock     = 5
	workPerCall      = 8
	workPerCallValue = 8
)
