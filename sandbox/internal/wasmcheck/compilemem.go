package wasmcheck

// Compile memory and machine code. wazero's optimising compiler holds, while
// it compiles one function, memory proportional to the function's
// instructions, and several times more for the instructions that can trap
// (each gets its own exit path) and for SIMD; and it keeps the machine code
// of every function of a module resident (and in the on-disk cache) for as
// long as the module is loaded. The work budget (WorkBudget) models the
// time of plain code; these two caps bound the memory: each instruction is
// weighed by its class (opCost), measured on a 2-core machine with one
// function of 50,000 to 100,000 instructions of each class compiled by
// wazero v1.12.0 (peak RSS and the size of the compiled code; see
// docs/sandbox.md, "Compile time", for the measurements behind the
// weights, which are upper bounds of them).
const (
	// MaxFunctionCompileMemory bounds the estimated memory wazero holds to
	// compile one function (bytes). The sandbox compiles one module at a
	// time and with no more concurrent workers than this cap divided by the
	// module's largest function estimate (Info.MaxCompileMemory), so that
	// the compilers' memory together stays within it.
	MaxFunctionCompileMemory = 256 << 20
	// MaxCompiledCode bounds the estimated machine code of a whole module
	// (bytes), what stays resident while the module is loaded.
	MaxCompiledCode = 160 << 20
	// CompileMemoryBudget bounds the estimated compile memory of a
	// module's functions added up (bytes). The functions are compiled one
	// after another, so that much is never held at once; it bounds the
	// time: wazero takes about 1 us of CPU per KiB of it.
	CompileMemoryBudget = 14 << 30
)

// Classes of instructions by their compile cost: memory (bytes held while
// the function compiles) and machine code (bytes kept).
const (
	memPlain, codePlain         = 1 << 10, 16   // everything else
	memHeavy, codeHeavy         = 6 << 10, 96   // SIMD, call, memory.size/grow, scalar float min/max/abs/neg/copysign, convert_i64_u, trunc_sat
	memTrap, codeTrap           = 10 << 10, 80  // loads, stores, table.get/set, bulk memory and tables
	memDiv, codeDiv             = 8 << 10, 128  // integer division and remainder
	memTrunc, codeTrunc         = 10 << 10, 192 // float-to-integer truncations that trap
	memIndirect, codeIndirect   = 32 << 10, 256 // call_indirect
	memTarget, codeTarget       = 2 << 10, 16   // each target of a br_table
	memFunction, codeFunction   = 16 << 10, 256 // each function, besides its instructions
	memCheckpoint, codeCheckpnt = 10*memPlain + memHeavy, 10*codePlain + codeHeavy
)

// opCost is the compile memory and machine code of one instruction (the
// targets of a br_table are added by bodyShape).
func opCost(op byte, imm []byte) (mem, code uint64) {
	switch {
	case op >= 0x28 && op <= 0x3e, // loads and stores
		op == 0x25, op == 0x26: // table.get, table.set
		return memTrap, codeTrap
	case op >= 0x6d && op <= 0x70, op >= 0x7f && op <= 0x82: // div, rem
		return memDiv, codeDiv
	case op >= 0xa8 && op <= 0xab, op >= 0xae && op <= 0xb1: // trunc
		return memTrunc, codeTrunc
	case op == 0x11: // call_indirect
		return memIndirect, codeIndirect
	case op == 0x10, op == 0x3f, op == 0x40, // call, memory.size, memory.grow
		op == 0x96, op == 0x97, op == 0xa4, op == 0xa5, // f32/f64 min, max
		op == 0x8b, op == 0x8c, op == 0x99, op == 0x9a, // f32/f64 abs, neg
		op == 0x98, op == 0xa6, // f32/f64 copysign
		op == 0xb5, op == 0xba: // f32/f64 convert_i64_u
		return memHeavy, codeHeavy
	case op == 0xfc:
		sub, _ := (&reader{b: imm}).u32()
		if sub <= 7 { // trunc_sat
			return memHeavy, codeHeavy
		}
		return memTrap, codeTrap // bulk memory and tables
	case op == 0xfd:
		sub, _ := (&reader{b: imm}).u32()
		if sub <= 11 || sub >= 84 && sub <= 93 { // loads, stores, lanes
			return memTrap, codeTrap
		}
		return memHeavy, codeHeavy
	}
	return memPlain, codePlain
}
