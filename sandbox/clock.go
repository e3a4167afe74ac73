package sandbox

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
)

// UnitsPerNanosecond is the rate of a guest's clocks: both advance one
// nanosecond per this many instruction units the guest has run (about the
// rate of a Go guest on the reference machine, docs/sandbox.md
// "Determinism").
const UnitsPerNanosecond = 16

// fakeEpoch is the guest's wall clock at its monotonic clock's zero:
// midnight UTC 2022-01-01, in nanoseconds since the Unix epoch.
const fakeEpoch = 1_640_995_200 * 1_000_000_000

// randSeed seeds the guest's random_get stream (any fixed 32 bytes).
const randSeed = "docex sandbox random_get stream!"

// guestEnvVersion is bumped whenever something a guest sees changes
// that the constants GuestEnvironment names do not cover (a host
// function's answers, how clocks move at checkpoints, ...).
const guestEnvVersion = 1

// GuestEnvironment returns what a guest of sb sees besides its inputs, as
// a string that changes whenever that could change: the environment's
// version, the instrumentation's (whose units drive the clocks), the
// clocks' rate and epoch, and the sha256 of the random stream's seed. It
// never fails. The engine makes it part of the step cache key
// (engine.GuestEnvironment), so a docex whose guests would see other
// clocks or random bytes does not reuse results computed before.
func (sb *Sandbox) GuestEnvironment() string {
	seed := sha256.Sum256([]byte(randSeed))
	return fmt.Sprintf("docex-guest-env/%d instrument/%s units-per-ns=%d epoch-ns=%d random=chacha8:%x",
		guestEnvVersion, wasmcheck.Version, UnitsPerNanosecond, int64(fakeEpoch), seed[:8])
}

// guestClock is what an instance's WASI clocks, sleeps and random_get see.
// Nothing in it depends on the host: the clocks are the instruction units
// the guest has run since it was created (plus the time it asked to
// sleep), and random_get reads a fixed stream. It is part of the state a
// snapshot holds, so every invocation from the snapshot sees the same
// times and bytes whatever ran on the instance before, however loaded the
// host: a guest whose runtime paces its garbage collector by the clock (Go)
// makes the same decisions, and uses the same memory and instruction
// units, every time.
type guestClock struct {
	in      *instance
	elapsed int64 // units run (and slept) before the current call
	running bool  // in a metered call: add the units it has run so far
	budget  int64 // the current call's units (fuel and reserve at its start)
	rng     rand.ChaCha8
}

func newGuestClock() *guestClock {
	return &guestClock{rng: *rand.NewChaCha8([32]byte([]byte(randSeed)))}
}

// units returns the units the guest has run and slept until now.
func (c *guestClock) units() int64 {
	u := c.elapsed
	if c.running {
		left := int64(c.in.fuel.Get()) + int64(c.in.reserve.Get())
		u = satAdd(u, min(max(c.budget-left, 0), c.budget))
	}
	return u
}

// nanotime is the monotonic clock (WASI clock_time_get, monotonic).
func (c *guestClock) nanotime() int64 { return c.units() / UnitsPerNanosecond }

// walltime is the wall clock (WASI clock_time_get, realtime): fakeEpoch
// plus the monotonic clock.
func (c *guestClock) walltime() (int64, int32) {
	t := satAdd(fakeEpoch, c.nanotime())
	return t / 1e9, int32(t % 1e9)
}

// sleep (WASI poll_oneoff on a clock) returns at once, having moved both
// clocks on by ns.
func (c *guestClock) sleep(ns int64) {
	if ns > 0 {
		step := int64(math.MaxInt64)
		if ns < math.MaxInt64/UnitsPerNanosecond {
			step = ns * UnitsPerNanosecond
		}
		c.elapsed = satAdd(c.elapsed, step)
	}
}

// Read is random_get's source.
func (c *guestClock) Read(p []byte) (int, error) { return c.rng.Read(p) }

// begin starts a metered call of budget units; end adds the units it ran.
func (c *guestClock) begin(budget int64) { c.running, c.budget = true, budget }

func (c *guestClock) end(used int64) {
	c.running = false
	c.elapsed = satAdd(c.elapsed, used)
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
