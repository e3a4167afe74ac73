package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
)

// metered returns module hardened and instrumented (internal/wasmcheck),
// with what the instrumentation found. With a CacheDir the result is also
// kept on disk by the sha256 of module and the versions of the
// instrumentation and of the caps:
// Harden and Instrument cost about as much as wazero's own decoding of a
// cached module (on a loaded 2-core machine, 0.5 s for a 2.7 MB Go guest),
// so a restart reads the result instead. The cache directory is private to
// the engine (it already holds machine code); an entry whose bytes do not
// hash to the sha256 recorded with it is ignored and rewritten.
func (sb *Sandbox) metered(hash string, module []byte) ([]byte, wasmcheck.Info, error) {
	if sb.meteredDir == "" {
		return sb.instrumentModule(module)
	}
	base := filepath.Join(sb.meteredDir, meteredName(hash))
	if out, info, ok := readMetered(base); ok {
		return out, info, nil
	}
	out, info, err := sb.instrumentModule(module)
	if err == nil {
		writeMetered(base, out, info)
	}
	return out, info, err
}

// meteredName is the cache entry's name for a module of sha256 hash: it
// names the instrumentation's version and the caps' (wasmcheck.CapsVersion),
// so that entries written before the caps changed are not used.
func meteredName(hash string) string {
	return hash + "-v" + wasmcheck.Version + "-caps" + wasmcheck.CapsVersion
}

func (sb *Sandbox) instrumentModule(module []byte) ([]byte, wasmcheck.Info, error) {
	h, err := wasmcheck.Harden(module)
	if err != nil {
		return nil, wasmcheck.Info{}, err
	}
	return sb.instrument(h)
}

// meteredEntry is the JSON written beside an instrumented module.
type meteredEntry struct {
	SHA256 string         `json:"sha256"` // of the instrumented bytes
	Info   wasmcheck.Info `json:"info"`
}

func readMetered(base string) ([]byte, wasmcheck.Info, bool) {
	raw, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil, wasmcheck.Info{}, false
	}
	var e meteredEntry
	if json.Unmarshal(raw, &e) != nil {
		return nil, wasmcheck.Info{}, false
	}
	out, err := os.ReadFile(base + ".wasm")
	if err != nil {
		return nil, wasmcheck.Info{}, false
	}
	if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != e.SHA256 {
		return nil, wasmcheck.Info{}, false
	}
	return out, e.Info, true
}

// writeMetered stores an entry, each file written to a temporary name and
// renamed, so that a crash leaves no half-written entry under its name. A
// failure only costs the next restart the instrumentation again.
func writeMetered(base string, out []byte, info wasmcheck.Info) {
	sum := sha256.Sum256(out)
	raw, err := json.Marshal(meteredEntry{SHA256: hex.EncodeToString(sum[:]), Info: info})
	if err != nil {
		return
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{base + ".wasm", out}, {base + ".json", raw}} {
		tmp := f.name + ".tmp"
		if os.WriteFile(tmp, f.data, 0o600) != nil || os.Rename(tmp, f.name) != nil {
			_ = os.Remove(tmp)
			return
		}
	}
}
