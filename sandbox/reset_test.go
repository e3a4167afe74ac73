package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestResetRestoresSnapshot checks the state reset byte for byte: after
// every run, the instance parked in the pool has exactly the snapshot's
// memory and globals, whichever way it was reset (copy-on-write pages or
// a full copy), for guests that keep state (stash), Go guests (wordcount)
// and inputs that touch many pages.
func TestResetRestoresSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"pages", "copy"} {
		t.Run(mode, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			sb.copyReset = mode == "copy"
			if mode == "pages" && sb.pm == nil {
				t.Skip("no pagemap on this system: resets copy the whole memory (the copy case covers it)")
			}
			var pages []int
			sb.onReset = func(_ time.Duration, dirty int) { pages = append(pages, dirty) }
			for _, name := range []string{"stash", "wordcount", "echo"} {
				m, mod := readPlugin(t, name)
				p, err := sb.Load(ctx, m, mod)
				if err != nil {
					t.Fatal(err)
				}
				for i, text := range []string{"a b c", words(20000), "secret " + fmt.Sprint(name), words(3)} {
					if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("x", text)}); err != nil {
						t.Fatalf("%s run %d: %v", name, i, err)
					}
					pl, err := p.pool("t")
					if err != nil {
						t.Fatal(err)
					}
					in := pl.takeIdle(ctx)
					if in == nil {
						t.Fatalf("%s run %d: no idle instance", name, i)
					}
					if mode == "pages" && !in.mem.cow {
						t.Fatalf("%s: instance memory does not map the snapshot image", name)
					}
					want := make([]byte, p.snap.size)
					p.snap.copyTo(want)
					if !bytes.Equal(in.mem.buf, want) {
						t.Fatalf("%s run %d (%s reset): memory differs from the snapshot", name, i, mode)
					}
					for j, g := range in.globals {
						if g.Get() != p.snap.globals[j] {
							t.Fatalf("%s run %d: global %d differs from the snapshot", name, i, j)
						}
					}
					pl.put(ctx, in)
				}
			}
			t.Logf("%s reset: pages written per call %v", mode, pages)
		})
	}
}

// readzeroHex: its start function writes byte 0 (the snapshot's image is
// one host page); each call checks that bytes 100 and 8192 read zero,
// reads one byte of every other host page of its 16 pages (1 MiB), then
// writes bytes 100 and 8192 (built with wat2wasm).
const readzeroHex = "0061736d010000000108026000006000017f03030200010503010010071602066d656d6f7279020009646f6365785f72756e00010801000a71020900410041073a00000b6501027f41e4002d0000410047044041010f0b4180c0002d0000410047044041020f0b41802021000340200120002d00006a210120004180206a21002000418080c000490d000b2001410047044041030f0b41e40041093a00004180c00041093a000041000b"

// Pages past the snapshot's image that a call only reads are not counted
// as written: a call that reads all 256 host pages of its memory and
// writes 2 (one in the image, one past it) resets 2 pages, the
// copy-on-write way, and the next call finds both as the snapshot has
// them. Before, every page read past the image (the kernel's zero page,
// which pagemap reports as private) counted: 256 pages, more than a
// quarter, so every reset dropped the whole memory and the next call
// faulted every page in again.
func TestResetReadOnlyZeroPages(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	if sb.pm == nil || pageBytes != 4096 {
		t.Skip("no copy-on-write reset of 4 KiB pages here")
	}
	var pages []int
	sb.onReset = func(_ time.Duration, dirty int) { pages = append(pages, dirty) }
	p := loadHex(t, sb, "readzero", readzeroHex, 64) // 16 of 64 pages: below RetireAbovePercent
	for i := range 4 {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: "t"})
		if err != nil || r.Status != pluginapi.StatusOK {
			t.Fatalf("run %d: %v %+v", i, err, r)
		}
	}
	// The first run's instance initialised and was replaced by one
	// mapping the image, like every later one; each reset saw 2 pages.
	if len(pages) != 4 || slices.ContainsFunc(pages, func(n int) bool { return n != 2 }) {
		t.Fatalf("pages reset per call %v, want 2 each", pages)
	}
}
