package sandbox

import (
	"bytes"
	"context"
	"fmt"
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
