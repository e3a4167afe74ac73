package wasmcheck

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Export kinds (the export section's kind byte).
const (
	ExportFunction byte = 0
	ExportMemory   byte = 2
)

// Surface is what a module exports, and whether it imports a memory: what
// a plugin's ABI requires of it, read before Instrument adds to it.
type Surface struct {
	// Exports maps each export's name to its kind (ExportFunction,
	// ExportMemory, ...).
	Exports map[string]byte
	// ImportsMemory is set when the module imports a memory.
	ImportsMemory bool
	// FuncImports are the imported functions, in order. When a function's
	// type cannot be found, ReadSurface returns an error.
	FuncImports []FuncImport
}

// FuncImport is an imported function: its module, name and type (value
// types as the binary encodes them, which api.ValueType's values are).
type FuncImport struct {
	Module, Name    string
	Params, Results []byte
}

// QuoteShort quotes s (strconv.Quote) in full when it is at most 64
// bytes, else its first 64 bytes, cut back to a whole character, and its
// length: "abc"... (100 bytes), so that an error never echoes a long
// name from a module.
func QuoteShort(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(Head(s, max)), len(s))
}

// ReadSurface returns b's Surface. It reads only the import and export
// sections, skipping the others unchecked; it returns an error for bytes
// that are not a WebAssembly 1.0 binary module or whose sections cannot be
// read (Check says more).
func ReadSurface(b []byte) (Surface, error) {
	s := Surface{Exports: map[string]byte{}}
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return s, errors.New("not a WebAssembly 1.0 binary module")
	}
	var types [][2][]byte
	var imp imports
	err := eachSection(&reader{b: b[8:]}, func(id byte, body *reader) error {
		switch id {
		case 1:
			n, err := body.count(1)
			for i := uint32(0); err == nil && i < n; i++ {
				var t [2][]byte
				if _, err = body.byte(); err != nil {
					break
				}
				for j := range t {
					var c uint32
					if c, err = body.count(1); err != nil {
						break
					}
					t[j] = body.b[body.off : body.off+int(c)]
					if err = body.skip(uint64(c)); err != nil {
						break
					}
				}
				types = append(types, t)
			}
			return err
		case 2:
			var err error
			imp, err = countImports(body)
			s.ImportsMemory = s.ImportsMemory || imp.memory
			return err
		case 7:
			n, err := body.count(1)
			for i := uint32(0); err == nil && i < n; i++ {
				var name string
				var kind byte
				if name, err = body.nameText(); err != nil {
					break
				}
				if kind, err = body.byte(); err != nil {
					break
				}
				if _, err = body.u32(); err == nil {
					s.Exports[name] = kind
				}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	for i, t := range imp.types {
		if int64(t) >= int64(len(types)) {
			return s, fmt.Errorf("imported function %d has type %d of %d", i, t, len(types))
		}
		s.FuncImports = append(s.FuncImports, FuncImport{Module: imp.names[i][0], Name: imp.names[i][1], Params: types[t][0], Results: types[t][1]})
	}
	return s, nil
}

// Head is s cut to at most max bytes, at the start of a character (when
// s is valid UTF-8 there; else after at most 3 bytes more are dropped).
func Head(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && n > max-3 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
