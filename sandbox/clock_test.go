package sandbox

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// slowReader serves its content as a loaded host might: every read waits.
type slowReader struct {
	r    io.ReaderAt
	wait time.Duration
}

func (s slowReader) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(s.wait)
	return s.r.ReadAt(p, off)
}

// TestDeterministicRuns: a Go guest that reads both clocks, sleeps an hour,
// draws random bytes and keeps its garbage collector busy (the lookup test
// plugin's clock mode) sees the same times, bytes and collections, and runs
// the same instruction units in the same memory, on every run of the same
// input: on a new instance and a pooled one, in another tenant's pool, in
// another Sandbox (initialised anew), and while the host serves the input
// slowly. With the host's monotonic clock the guest's collector paced
// itself by the host's load (extract-text on a 1158-page PDF took 58 MiB
// to 490 MiB of guest memory); with wazero's default clocks, wall_ns moved
// on with every run of a pooled instance and the hour's sleep never ended.
func TestDeterministicRuns(t *testing.T) {
	ctx := context.Background()
	sb1, sb2 := newSandbox(t, Config{}), newSandbox(t, Config{})
	load := func(sb *Sandbox) *Plugin {
		m, mod := readPlugin(t, "lookup")
		m.Limits.TimeoutMS = 60_000 // the race detector on a loaded machine; no time is asserted
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1, p2 := load(sb1), load(sb2)
	for _, tt := range []struct {
		size  int // 0: no collection (pooled instances); 1 MiB: 16 MiB allocated
		sleep bool
	}{{0, false}, {0, true}, {1 << 20, false}, {1 << 20, true}} {
		size, params := tt.size, map[string]string{"clock": "true"}
		if tt.sleep {
			params["sleep"] = "true"
		}
		t.Run(fmt.Sprintf("%dKiB,sleep=%v", size>>10, tt.sleep), func(t *testing.T) {
			text := strings.Repeat("x", size)
			runs := []struct {
				name   string
				p      *Plugin
				tenant string
				wait   time.Duration
			}{
				{"first", p1, "a", 0},
				{"again", p1, "a", 0},
				{"slow host", p1, "a", time.Millisecond},
				{"again", p1, "a", 0},
				{"other tenant", p1, "b", 0},
				{"other sandbox, slow host", p2, "a", time.Millisecond},
				{"other sandbox", p2, "a", 0},
			}
			var first *pluginapi.Result
			warm := 0
			for _, r := range runs {
				doc := pluginapi.Document{Name: "in.txt", ContentType: "text/plain", Size: int64(size),
					Content: slowReader{strings.NewReader(text), r.wait}}
				res, err := r.p.Run(ctx, pluginapi.Call{TenantID: r.tenant, Input: doc, Params: params})
				if err != nil {
					t.Fatalf("%s: %v", r.name, err)
				}
				t.Logf("%s: cold %v, %d units, %d bytes of memory, %v", r.name, res.Report.ColdStart, res.Report.Instructions, res.Report.PeakMemoryBytes, res.Metadata)
				if !res.Report.ColdStart {
					warm++
				}
				if first == nil {
					first = res
					md := res.Metadata
					if tt.sleep != (md["slept_ns"].(float64) >= float64(time.Hour)) || md["work_ns"].(float64) <= 0 ||
						md["wall_ns"].(float64) < float64(fakeEpoch) || md["random"] == strings.Repeat("0", 32) {
						t.Fatalf("clocks and random bytes the guest saw: %v", md)
					}
					if size > 0 && md["gc_cycles"].(float64) < 2 {
						t.Fatalf("gc_cycles %v: the collector should run", md["gc_cycles"])
					}
					continue
				}
				if !reflect.DeepEqual(res.Metadata, first.Metadata) {
					t.Errorf("%s: metadata %v, first run %v", r.name, res.Metadata, first.Metadata)
				}
				if res.Report.Instructions != first.Report.Instructions || res.Report.PeakMemoryBytes != first.Report.PeakMemoryBytes {
					t.Errorf("%s: %d units in %d bytes of memory, first run %d in %d", r.name, res.Report.Instructions,
						res.Report.PeakMemoryBytes, first.Report.Instructions, first.Report.PeakMemoryBytes)
				}
			}
			if size == 0 && warm == 0 {
				t.Error("no run was on a pooled instance")
			}
		})
	}
}
