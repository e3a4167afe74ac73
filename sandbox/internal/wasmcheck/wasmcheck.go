package wasmcheck

import (
	"errors"
	"fmt"
)

// Bounds enforced by Check.
const (
	MaxLocals      = 4096    // per function (Go guests use at most ~20)
	MaxTableLength = 1 << 20 // elements of all tables together
)

// Check returns nil if b's structure is bounded as described in the package
// comment, or an error saying what is not.
func Check(b []byte) error {
	c, err := count(b)
	if err != nil {
		return err
	}
	return c.enforce()
}

// count walks b's structure as Check does and returns its counts, without
// enforcing the caps on them.
func count(b []byte) (counts, error) {
	var c counts
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return c, errors.New("not a WebAssembly 1.0 binary module")
	}
	err := eachSection(&reader{b: b[8:]}, func(id byte, body *reader) error {
		if err := section(id, body, &c); err != nil {
			if le := (*LimitError)(nil); errors.As(err, &le) {
				return err // names its function, as the other caps do
			}
			return fmt.Errorf("section %d: %w", id, err)
		}
		return nil
	})
	return c, err
}

// eachSection calls fn for each (id, size-prefixed body) in r: the layout
// of the module's sections and of the name section's subsections.
func eachSection(r *reader, fn func(id byte, body *reader) error) error {
	for r.len() > 0 {
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		body, err := r.sub(size)
		if err != nil {
			return fmt.Errorf("section %d: %w", id, err)
		}
		if err := fn(id, body); err != nil {
			return err
		}
	}
	return nil
}

var errTruncated = errors.New("truncated or oversized")

type reader struct {
	b   []byte
	off int
}

func (r *reader) len() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// leb reads an unsigned LEB128 of at most maxBytes bytes.
func (r *reader) leb(maxBytes int) (uint64, error) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("LEB128 too long")
}

func (r *reader) u32() (uint32, error) {
	v, err := r.leb(5)
	if v > 0xffffffff {
		return 0, errors.New("u32 out of range")
	}
	return uint32(v), err
}

func (r *reader) skip(n uint64) error {
	if n > uint64(r.len()) {
		return errTruncated
	}
	r.off += int(n)
	return nil
}

func (r *reader) sub(n uint32) (*reader, error) {
	start := r.off
	if err := r.skip(uint64(n)); err != nil {
		return nil, err
	}
	return &reader{b: r.b[start:r.off]}, nil
}

// count reads a vector length whose elements take at least minSize bytes.
func (r *reader) count(minSize int) (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(r.len()) {
		return 0, fmt.Errorf("vector of %d elements in %d bytes", n, r.len())
	}
	return n, nil
}

// nameText reads a name and returns it (its bytes, not checked as UTF-8).
func (r *reader) nameText() (string, error) {
	n, err := r.count(1)
	if err != nil {
		return "", err
	}
	s := string(r.b[r.off : r.off+int(n)])
	return s, r.skip(uint64(n))
}

func (r *reader) name() error {
	n, err := r.count(1)
	if err != nil {
		return err
	}
	return r.skip(uint64(n))
}

// limits reads table or memory limits and returns (min, max, hasMax).
func (r *reader) limits() (uint64, uint64, bool, error) {
	flag, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	if flag > 3 { // 64-bit and custom-page-size limits are not enabled
		return 0, 0, false, fmt.Errorf("unsupported limits flag 0x%x", flag)
	}
	min, err := r.u32()
	if err != nil {
		return 0, 0, false, err
	}
	if flag&1 == 0 {
		return uint64(min), 0, false, nil
	}
	max, err := r.u32()
	return uint64(min), uint64(max), true, err
}

// tableType reads a table type and returns its minimum.
func (r *reader) tableType() (uint64, error) {
	if _, err := r.byte(); err != nil { // reftype
		return 0, err
	}
	min, _, _, err := r.limits()
	if err != nil {
		return 0, err
	}
	if min > MaxTableLength {
		return 0, fmt.Errorf("table of %d elements: at most %d allowed", min, MaxTableLength)
	}
	return min, nil
}

// constExpr skips a constant expression up to and including its end opcode.
func (r *reader) constExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x42, 0x23, 0xd2: // i32.const, i64.const, global.get, ref.func
			_, err = r.leb(10)
		case 0x43:
			err = r.skip(4)
		case 0x44:
			err = r.skip(8)
		case 0xd0: // ref.null t
			_, err = r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		case 0xfd: // v128.const
			var sub uint32
			if sub, err = r.u32(); err == nil {
				if sub != 12 {
					return fmt.Errorf("unsupported constant opcode 0xfd %d", sub)
				}
				err = r.skip(16)
			}
		default:
			return fmt.Errorf("unsupported constant opcode 0x%x", op)
		}
		if err != nil {
			return err
		}
	}
}

// vecU32 skips a vector of u32s and returns its length.
func (r *reader) vecU32() (uint32, error) {
	n, err := r.count(1)
	for i := uint32(0); err == nil && i < n; i++ {
		_, err = r.u32()
	}
	return n, err
}

// vecExpr skips a vector of constant expressions and returns its length.
func (r *reader) vecExpr() (uint32, error) {
	n, err := r.count(2)
	for i := uint32(0); err == nil && i < n; i++ {
		err = r.constExpr()
	}
	return n, err
}

func section(id byte, r *reader, c *counts) error {
	if id == 0 {
		return custom(r)
	}
	if id == 8 { // start
		_, err := r.u32()
		return err
	}
	if id == 12 { // data count
		_, err := r.u32()
		return err
	}
	minSize := map[byte]int{1: 3, 2: 4, 3: 1, 4: 3, 5: 2, 6: 3, 7: 3, 9: 2, 10: 2, 11: 2, 13: 2}[id]
	if minSize == 0 {
		return fmt.Errorf("unknown section id %d", id)
	}
	n, err := r.count(minSize)
	c.section(id, n)
	for i := uint32(0); err == nil && i < n; i++ {
		err = entry(id, r, c)
	}
	return err
}

func entry(id byte, r *reader, c *counts) error {
	switch id {
	case 1: // type
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("unsupported type form 0x%x", form)
		}
		for i := range 2 { // params, results: one byte per value type
			n, err := r.count(1)
			if err != nil {
				return err
			}
			c.typeArity(i == 1, n)
			if err := r.skip(uint64(n)); err != nil {
				return err
			}
		}
		return nil
	case 2: // import
		for range 2 { // module and field names
			n, err := r.count(1)
			if err != nil {
				return err
			}
			c.maxImportName = max(c.maxImportName, uint64(n))
			if err := r.skip(uint64(n)); err != nil {
				return err
			}
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0: // func
			c.funcImports++
			_, err = r.u32()
		case 1:
			var n uint64
			n, err = r.tableType()
			c.tableElements += n
		case 2:
			_, _, _, err = r.limits()
		case 3: // global
			err = r.skip(2)
		case 4: // tag
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			err = fmt.Errorf("unknown import kind %d", kind)
		}
		return err
	case 3: // function
		_, err := r.u32()
		return err
	case 4: // table
		n, err := r.tableType()
		c.tableElements += n
		return err
	case 5: // memory
		_, _, _, err := r.limits()
		return err
	case 6: // global
		if _, err := r.byte(); err != nil {
			return err
		}
		mut, err := r.byte()
		if err != nil {
			return err
		}
		if mut == 1 {
			c.mutableGlobals++
		}
		return r.constExpr()
	case 7: // export
		n, err := r.count(1)
		if err != nil {
			return err
		}
		c.maxExportName = max(c.maxExportName, uint64(n))
		if err := r.skip(uint64(n)); err != nil {
			return err
		}
		if err := r.skip(1); err != nil {
			return err
		}
		_, err = r.u32()
		return err
	case 9:
		return element(r, c)
	case 10:
		// Functions are named by their index in the function index space
		// (imported functions first), as the caps of Instrument name them.
		c.bodies++
		return code(r, fmt.Sprintf("function %d", c.funcImports+c.bodies-1))
	case 11:
		return data(r)
	case 13: // tag
		if _, err := r.byte(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	}
	return nil
}

func element(r *reader, c *counts) error {
	flag, err := r.u32()
	if err != nil {
		return err
	}
	if flag > 7 {
		return fmt.Errorf("unknown element segment flag %d", flag)
	}
	if flag == 2 || flag == 6 { // explicit table index
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if flag&1 == 0 { // active: offset expression
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	if flag&3 != 0 { // element kind or reference type
		if _, err := r.byte(); err != nil {
			return err
		}
	}
	if flag&4 == 0 {
		n, err := r.vecU32()
		c.elemEntries += uint64(n)
		return err
	}
	n, err := r.vecExpr()
	c.elemEntries += uint64(n)
	return err
}

// code checks one function body; where names it in the error.
func code(r *reader, where string) error {
	size, err := r.u32()
	if err != nil {
		return err
	}
	body, err := r.sub(size)
	if err != nil {
		return err
	}
	n, err := body.count(2)
	if err != nil {
		return err
	}
	var total uint64
	for i := uint32(0); i < n; i++ {
		c, err := body.u32()
		if err != nil {
			return err
		}
		if _, err := body.byte(); err != nil {
			return err
		}
		total += uint64(c) // at most 2^31 entries of at most 2^32-1: no overflow
	}
	return limitErr(where, "locals in one function (parameters not counted)", total, MaxLocals)
}

func data(r *reader) error {
	flag, err := r.u32()
	if err != nil {
		return err
	}
	switch flag {
	case 0:
		err = r.constExpr()
	case 1:
	case 2:
		if _, err = r.u32(); err == nil {
			err = r.constExpr()
		}
	default:
		err = fmt.Errorf("unknown data segment flag %d", flag)
	}
	if err != nil {
		return err
	}
	return r.name() // vec(byte)
}

// custom checks the "name" section, which wazero decodes; others are only
// copied (bounded by the section size).
func custom(r *reader) error {
	n, err := r.count(1)
	if err != nil {
		return err
	}
	nameStart := r.off
	if err := r.skip(uint64(n)); err != nil {
		return err
	}
	if string(r.b[nameStart:r.off]) != "name" {
		return nil
	}
	return eachSection(r, func(id byte, sub *reader) error {
		var err error
		switch id {
		case 0: // module name
			err = sub.name()
		case 1: // function names: vec(idx, name)
			err = nameMap(sub)
		case 2: // local names: vec(idx, vec(idx, name))
			var m uint32
			m, err = sub.count(2)
			for i := uint32(0); err == nil && i < m; i++ {
				if _, err = sub.u32(); err == nil {
					err = nameMap(sub)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("name section: %w", err)
		}
		return nil
	})
}

func nameMap(r *reader) error {
	n, err := r.count(2)
	for i := uint32(0); err == nil && i < n; i++ {
		if _, err = r.u32(); err == nil {
			err = r.name()
		}
	}
	return err
}

// Harden runs Check and returns the module with every table's maximum set
// to at most MaxTableLength (table.grow beyond it then fails with -1, which
// the spec allows). It returns b itself when nothing needed changing.
func Harden(b []byte) ([]byte, error) {
	if err := Check(b); err != nil {
		return nil, err
	}
	out := append([]byte(nil), b[:8]...)
	changed := false
	r := &reader{b: b[8:]}
	for r.len() > 0 {
		start := r.off
		id, _ := r.byte()
		size, _ := r.u32()
		body, _ := r.sub(size)
		if id != 4 {
			out = append(out, r.b[start:r.off]...)
			continue
		}
		payload, mod, err := capTables(body)
		if err != nil {
			return nil, err
		}
		changed = changed || mod
		out = append(out, 4)
		out = appendU32(out, uint32(len(payload)))
		out = append(out, payload...)
	}
	if !changed {
		return b, nil
	}
	return out, nil
}

// capTables rewrites a table section so that the tables' maxima add up to
// at most MaxTableLength elements: each table keeps its minimum and gets an
// equal share of what the minima leave. Minima adding up to more are
// refused.
func capTables(r *reader) ([]byte, bool, error) {
	n, err := r.count(3)
	if err != nil {
		return nil, false, err
	}
	type table struct {
		ref      byte
		min, max uint64
		hasMax   bool
	}
	tables := make([]table, n)
	var mins uint64
	for i := range tables {
		t := &tables[i]
		if t.ref, err = r.byte(); err != nil {
			return nil, false, err
		}
		if t.min, t.max, t.hasMax, err = r.limits(); err != nil {
			return nil, false, err
		}
		mins += t.min
	}
	if mins > MaxTableLength {
		return nil, false, fmt.Errorf("tables of %d elements in all: at most %d allowed", mins, MaxTableLength)
	}
	share := uint64(0)
	if n > 0 {
		share = (MaxTableLength - mins) / uint64(n)
	}
	out := appendU32(nil, n)
	changed := false
	for _, t := range tables {
		if limit := t.min + share; !t.hasMax || t.max > limit {
			t.max, changed = limit, true
		}
		out = append(out, t.ref, 1)
		out = appendU32(out, uint32(t.min))
		out = appendU32(out, uint32(t.max))
	}
	return out, changed, nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
