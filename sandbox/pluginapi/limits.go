package pluginapi

import (
	"fmt"
	"time"
)

// Limits bounds one plugin invocation. It is used twice: as the operator's
// ceilings (sandbox.Config.Ceilings) and as a plugin's effective limits (Plugin.Limits).
// A zero field means "use the default" (DefaultLimits for a plugin,
// DefaultCeilings for the operator).
type Limits struct {
	// MemoryPages is the most 64 KiB pages the guest's linear memory may grow to.
	MemoryPages uint32
	// Timeout is the wall-clock limit of one call into the guest. Creating
	// an instance (its start function and _initialize) is limited by
	// sandbox.Config.InitTimeout, and by Timeout and MaxInstructions too
	// in a module with no snapshot (one that can change a table), which
	// initialises an instance for every run. Every untrusted call has a
	// deadline.
	Timeout time.Duration
	// MaxOutputBytes bounds metadata values, derived documents and the status
	// message produced by one invocation.
	MaxOutputBytes int64
	// MaxHostCalls bounds calls from the guest into the docex host module.
	MaxHostCalls int64
	// MaxLogBytes bounds captured log text (docex.log, stdout, stderr):
	// each kept line costs its text plus 64 bytes, and a WASI fd_write
	// makes at most one line. More is dropped and
	// ResourceReport.LogsTruncated is set.
	MaxLogBytes int64
	// MaxInstructions bounds the instruction units one call may execute
	// (deterministic: the same input takes the same units; see
	// docs/sandbox.md, "Preemption and the instruction budget").
	MaxInstructions int64
}

// DefaultLimits are a plugin's limits when its manifest does not set them
// (each is further capped by the operator ceiling).
func DefaultLimits() Limits {
	return Limits{
		MemoryPages:    512, // 32 MiB
		Timeout:        5 * time.Second,
		MaxOutputBytes: 16 << 20,
		MaxHostCalls:   100_000,
		MaxLogBytes:    64 << 10,
		// 10^13 units: a Go guest is metered at about 1.5*10^11 units/s on
		// a 2-core reference machine, so by default the timeout binds first.
		MaxInstructions: 10_000_000_000_000,
	}
}

// DefaultCeilings are the operator ceilings used when sandbox.Config.Ceilings
// leaves a field zero.
func DefaultCeilings() Limits {
	return Limits{
		MemoryPages:     4096, // 256 MiB
		Timeout:         60 * time.Second,
		MaxOutputBytes:  256 << 20,
		MaxHostCalls:    10_000_000,
		MaxLogBytes:     1 << 20,
		MaxInstructions: 1_000_000_000_000_000,
	}
}

// withDefaults fills zero fields from d.
func (l Limits) withDefaults(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxHostCalls == 0 {
		l.MaxHostCalls = d.MaxHostCalls
	}
	if l.MaxLogBytes == 0 {
		l.MaxLogBytes = d.MaxLogBytes
	}
	if l.MaxInstructions == 0 {
		l.MaxInstructions = d.MaxInstructions
	}
	return l
}

// clampTo lowers every field of l to at most c.
func (l Limits) clampTo(c Limits) Limits {
	l.MemoryPages = min(l.MemoryPages, c.MemoryPages)
	l.Timeout = min(l.Timeout, c.Timeout)
	l.MaxOutputBytes = min(l.MaxOutputBytes, c.MaxOutputBytes)
	l.MaxHostCalls = min(l.MaxHostCalls, c.MaxHostCalls)
	l.MaxLogBytes = min(l.MaxLogBytes, c.MaxLogBytes)
	l.MaxInstructions = min(l.MaxInstructions, c.MaxInstructions)
	return l
}

// Ceilings returns the operator ceilings l with its zero fields taken from
// DefaultCeilings, or an error if a field is out of range (memory_pages
// above 65536, a negative value).
func Ceilings(l Limits) (Limits, error) {
	l = l.withDefaults(DefaultCeilings())
	return l, l.validate()
}

func (l Limits) validate() error {
	switch {
	case l.MemoryPages > 65536:
		return fmt.Errorf("memory_pages %d exceeds 65536", l.MemoryPages)
	case l.Timeout < 0:
		return fmt.Errorf("negative timeout %s", l.Timeout)
	case l.MaxOutputBytes < 0, l.MaxHostCalls < 0, l.MaxLogBytes < 0, l.MaxInstructions < 0:
		return fmt.Errorf("negative limit")
	}
	return nil
}

// Resolve returns the effective limits of a plugin with manifest m under
// the operator ceilings (zero ceiling fields take DefaultCeilings). Fields
// the manifest leaves unset take DefaultLimits capped by the ceiling. It
// returns an error wrapping ErrInvalidManifest if the manifest asks for
// more than a ceiling allows: limits are refused, never silently lowered.
func (m *Manifest) Resolve(ceilings Limits) (Limits, error) {
	c := ceilings.withDefaults(DefaultCeilings())
	asked := m.Limits.limits()
	type check struct {
		name      string
		got, ceil int64
	}
	for _, k := range []check{
		{"memory_pages", int64(asked.MemoryPages), int64(c.MemoryPages)},
		{"timeout_ms", asked.Timeout.Milliseconds(), c.Timeout.Milliseconds()},
		{"max_output_bytes", asked.MaxOutputBytes, c.MaxOutputBytes},
		{"max_host_calls", asked.MaxHostCalls, c.MaxHostCalls},
		{"max_log_bytes", asked.MaxLogBytes, c.MaxLogBytes},
		{"max_instructions", asked.MaxInstructions, c.MaxInstructions},
	} {
		if k.got > k.ceil {
			return Limits{}, fmt.Errorf("%w: limits.%s = %d exceeds the operator ceiling %d", ErrInvalidManifest, k.name, k.got, k.ceil)
		}
	}
	return asked.withDefaults(DefaultLimits().clampTo(c)), nil
}
