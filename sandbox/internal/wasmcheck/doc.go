// Package wasmcheck pre-screens WebAssembly binaries before wazero decodes
// them. wazero sizes allocations from counts read from the binary (a
// 200-byte module declaring 2^32 globals made the decoder allocate 85 GB
// and crash the process), and instantiates tables at their declared size
// (table.grow can ask for 32 GiB). Check walks the binary's structure and
// rejects any count larger than the bytes that follow it, functions with
// more than MaxLocals locals, and tables larger than MaxTableLength, so that
// decoding allocates at most a small multiple of the module's size. Harden
// also caps every table's maximum so that table.grow stays bounded.
//
// Check also caps what makes wazero's compilation or instantiation slow
// (types, functions, globals, exports); Instrument, which decodes every
// instruction, caps each function's block nesting, br_table targets,
// operand stack height and size, and bounds the whole module's compile
// work and instrumented size (limits.go; docs/sandbox.md, "Compile time").
// Refusals past a cap are *LimitError.
//
// It is not a validator: wazero still validates everything. It only has to
// be at least as strict as wazero about the structure it reads.
package wasmcheck
