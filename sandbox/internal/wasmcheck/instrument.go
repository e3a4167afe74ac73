package wasmcheck

import (
	"errors"
	"fmt"
)

// StopGlobal is the export name of the i32 global Instrument adds. Setting
// it to non-zero makes the guest trap ("unreachable") at its next loop
// iteration.
const StopGlobal = "__docex_stop"

// YieldEvery is how many loop iterations run between two exits to Go.
const YieldEvery = 65536

// loopCheck returns what Instrument inserts after every loop opcode, with
// stop and budget the indexes of the two added globals:
//
//	global.get $stop  if  unreachable  end            ;; preempted: trap
//	global.get $budget  i32.const -1  i32.add  global.set $budget
//	global.get $budget  i32.eqz
//	if  i32.const 0  memory.grow  drop                ;; exits to Go: lets the
//	    i32.const YieldEvery  global.set $budget      ;; GC stop this goroutine
//	end
//
// The yield matters: wazero-compiled code has no Go preemption points, so a
// guest that looped without ever leaving it would block every
// stop-the-world garbage collection, including the timer that is to stop
// it (a whole-process deadlock).
func loopCheck(stop, budget uint32) []byte {
	b := appendU32([]byte{0x23}, stop)
	b = append(b, 0x04, 0x40, 0x00, 0x0b)
	b = appendU32(append(b, 0x23), budget)
	b = appendU32(append(b, 0x41, 0x7f, 0x6a, 0x24), budget)
	b = appendU32(append(b, 0x23), budget)
	b = append(b, 0x45, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a)
	b = append(b, 0x41)
	b = appendS32(b, YieldEvery)
	b = appendU32(append(b, 0x24), budget)
	return append(b, 0x0b)
}

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Instrument returns b (already Hardened) with a mutable i32 global,
// exported as StopGlobal, that is tested at the head of every loop, and a
// loop budget that makes the guest exit to Go every YieldEvery iterations
// (see loopCheck). This is the sandbox's preemption point: a loop cannot run
// past the moment the host sets the global, at the cost of a few
// instructions per iteration (wazero's WithCloseOnContextDone exits to Go at
// every loop header, 10-100x dearer). Straight-line code needs no check:
// without loops a function ends or recurses into the call-stack limit.
//
// It decodes every instruction; any opcode it does not know makes it fail,
// so no loop can hide behind a mis-decoded immediate.
func Instrument(b []byte) ([]byte, error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	type sec struct {
		id   byte
		body []byte
	}
	var secs []sec
	r := &reader{b: b[8:]}
	importedGlobals, definedGlobals := uint32(0), uint32(0)
	for r.len() > 0 {
		id, _ := r.byte()
		size, _ := r.u32()
		body, _ := r.sub(size)
		secs = append(secs, sec{id, body.b})
		switch id {
		case 2:
			n, err := countImportedGlobals(body)
			if err != nil {
				return nil, err
			}
			importedGlobals = n
		case 6:
			definedGlobals, _ = (&reader{b: body.b}).u32()
		case 7:
			if err := checkNoExport(&reader{b: body.b}, StopGlobal); err != nil {
				return nil, err
			}
		}
	}
	gidx := importedGlobals + definedGlobals // stop; gidx+1 is the budget
	check := loopCheck(gidx, gidx+1)

	out := append([]byte(nil), b[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	newGlobals := append([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}, // stop = 0,
		append(appendS32(nil, YieldEvery), 0x0b)...) // budget = YieldEvery
	addedGlobal, addedExport := false, false
	for _, s := range secs {
		// Known sections must appear in this order; the new global section
		// goes before the export section (or code, if there is no export).
		if !addedGlobal && s.id != 0 && order(s.id) > order(6) {
			emit(6, append(appendU32(nil, 2), newGlobals...))
			addedGlobal = true
		}
		switch s.id {
		case 6:
			sr := &reader{b: s.body}
			n, _ := sr.u32()
			body := append(appendU32(nil, n+2), sr.b[sr.off:]...)
			emit(6, append(body, newGlobals...))
			addedGlobal = true
		case 7:
			sr := &reader{b: s.body}
			n, _ := sr.u32()
			body := append(appendU32(nil, n+1), sr.b[sr.off:]...)
			body = appendU32(body, uint32(len(StopGlobal)))
			body = append(body, StopGlobal...)
			body = append(body, 0x03)
			emit(7, appendU32(body, gidx))
			addedExport = true
		case 10:
			body, err := instrumentCode(&reader{b: s.body}, check)
			if err != nil {
				return nil, err
			}
			emit(10, body)
		default:
			emit(s.id, s.body)
		}
	}
	if !addedExport {
		return nil, errors.New("module has no export section")
	}
	if !addedGlobal { // only custom sections after the export section... unreachable
		return nil, errors.New("could not place the stop global")
	}
	return out, nil
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

func countImportedGlobals(r *reader) (uint32, error) {
	n, err := r.u32()
	globals := uint32(0)
	for i := uint32(0); err == nil && i < n; i++ {
		if err = r.name(); err != nil {
			break
		}
		if err = r.name(); err != nil {
			break
		}
		var kind byte
		if kind, err = r.byte(); err != nil {
			break
		}
		switch kind {
		case 0:
			_, err = r.u32()
		case 1:
			err = r.tableType()
		case 2:
			_, _, _, err = r.limits()
		case 3:
			globals++
			err = r.skip(2)
		case 4:
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		}
	}
	return globals, err
}

func checkNoExport(r *reader, name string) error {
	n, err := r.u32()
	for i := uint32(0); err == nil && i < n; i++ {
		start := r.off
		if err = r.name(); err != nil {
			return err
		}
		if l, _ := (&reader{b: r.b[start:]}).u32(); int(l) == len(name) && string(r.b[r.off-len(name):r.off]) == name {
			return fmt.Errorf("module already exports %q", name)
		}
		if err = r.skip(1); err == nil {
			_, err = r.u32()
		}
	}
	return err
}

func instrumentCode(r *reader, check []byte) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	var body []byte
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		fr, err := r.sub(size)
		if err != nil {
			return nil, err
		}
		body, err = instrumentBody(fr, check, body[:0])
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

func instrumentBody(r *reader, check, out []byte) ([]byte, error) {
	// Locals are copied unchanged.
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	out = append(out, r.b[:r.off]...)
	for r.len() > 0 {
		start := r.off
		op, _ := r.byte()
		if err := skipImmediates(r, op); err != nil {
			return nil, fmt.Errorf("opcode 0x%x at %d: %w", op, start, err)
		}
		out = append(out, r.b[start:r.off]...)
		if op == 0x03 { // loop: check at the head of every iteration
			out = append(out, check...)
		}
	}
	return out, nil
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
	case op == 0x0c, op == 0x0d, op == 0x10, op >= 0x20 && op <= 0x26, op == 0xd2:
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
