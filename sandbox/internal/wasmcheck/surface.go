package wasmcheck

import "errors"

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
	err := eachSection(&reader{b: b[8:]}, func(id byte, body *reader) error {
		switch id {
		case 2:
			imp, err := countImports(body)
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
	return s, err
}
