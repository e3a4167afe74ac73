package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestInitStoppedByCallerAndClose: a start function or _initialize that
// never returns is stopped by the caller's ctx (the Run fails with the
// ctx's error, not ErrPluginTimeout) and by Sandbox.Close (ErrClosed),
// long before Config.InitTimeout (an hour here), so neither can hang a
// Run. TestInitDeadline covers InitTimeout itself. The minute below only
// guards against a hang.
func TestInitStoppedByCallerAndClose(t *testing.T) {
	for _, name := range []string{"startspin", "initspin"} {
		for _, stop := range []string{"cancel", "close"} {
			t.Run(name+"/"+stop, func(t *testing.T) {
				sb := newSandbox(t, Config{InitTimeout: time.Hour})
				m, mod := readPlugin(t, name)
				p, err := sb.Load(context.Background(), m, mod)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := p.Run(ctx, pluginapi.Call{TenantID: "a"})
					done <- err
				}()
				for running := false; !running; { // the guest is initialising
					select {
					case err := <-done:
						t.Fatalf("Run returned before it was stopped: %v", err)
					case <-time.After(5 * time.Millisecond):
					}
					sb.mu.Lock()
					running = len(sb.running) > 0
					sb.mu.Unlock()
				}
				if stop == "cancel" {
					cancel()
				} else {
					go sb.Close(context.Background())
				}
				select {
				case err = <-done:
				case <-time.After(time.Minute):
					t.Fatalf("%s: Run still running a minute after %s", name, stop)
				}
				switch {
				case errors.Is(err, pluginapi.ErrPluginTimeout):
					t.Fatalf("err = %v: a timeout, want the %s's error", err, stop)
				case stop == "cancel" && !errors.Is(err, context.Canceled):
					t.Fatalf("err = %v, want context.Canceled", err)
				case stop == "close" && !errors.Is(err, pluginapi.ErrClosed):
					t.Fatalf("err = %v, want ErrClosed", err)
				}
				t.Logf("%s/%s: %v", name, stop, err)
			})
		}
	}
}

// initmemHex: a start function that grows memory by 16 pages and traps
// when the grow is refused (memory_pages 8: ErrPluginMemory).
const initmemHex = "0061736d010000000108026000006000017f03030200010503010001071602066d656d6f7279020009646f6365785f72756e00010801000a14020d0041104000417f460440000b0b040041000b"

// TestInitFailureReport: when a new instance's start function or
// _initialize fails (timeout, instruction budget, trap, memory limit,
// WASI call limit), Run returns the typed error and a Result with Status
// error and the report of a cold run whose initialisation failed: its
// time and units, the memory it left, the instance retired, the call's
// own figures zero. Before, Run returned a nil Result.
func TestInitFailureReport(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		plugin string // a test plugin, or "" for initmemHex
		cfg    Config
		limit  func(*pluginapi.Manifest)
		want   error
	}{
		{"timeout start", "startspin", Config{InitTimeout: 300 * time.Millisecond}, nil, pluginapi.ErrPluginTimeout},
		{"timeout _initialize", "initspin", Config{InitTimeout: 300 * time.Millisecond}, nil, pluginapi.ErrPluginTimeout},
		{"instructions", "startcold", Config{}, func(m *pluginapi.Manifest) { m.Limits.MaxInstructions = 50_000 }, pluginapi.ErrInstructionLimit},
		{"trap", "starthost", Config{}, nil, pluginapi.ErrPluginTrap},
		{"memory", "", Config{}, nil, pluginapi.ErrPluginMemory},
		{"host calls", "startwasi", Config{InitTimeout: 30 * time.Second}, nil, pluginapi.ErrHostCallLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t, tc.cfg)
			var p *Plugin
			if tc.plugin == "" {
				p = loadHex(t, sb, "initmem", initmemHex, 8)
			} else {
				m, mod := readPlugin(t, tc.plugin)
				if tc.limit != nil {
					tc.limit(m)
				}
				var err error
				if p, err = sb.Load(ctx, m, mod); err != nil {
					t.Fatal(err)
				}
			}
			for i, tenant := range []string{"a", "a", "b"} {
				r, err := runWithin(t, p, pluginapi.Call{TenantID: tenant, Input: textDoc("x", "x")})
				if !errors.Is(err, tc.want) {
					t.Fatalf("run %d: err = %v, want %v", i, err, tc.want)
				}
				if r == nil {
					t.Fatalf("run %d: no Result with %v", i, err)
				}
				rep := r.Report
				if r.Status != pluginapi.StatusError || r.Message != err.Error() || r.Metadata != nil || r.Derived != nil {
					t.Fatalf("run %d: status %q, message %q (err %q), metadata %v, derived %d", i, r.Status, r.Message, err, r.Metadata, len(r.Derived))
				}
				if !rep.ColdStart || !rep.InstanceRetired || rep.InitDuration <= 0 || rep.PeakMemoryBytes < pageSize ||
					rep.Duration != 0 || rep.Instructions != 0 || rep.HostCalls != 0 || rep.CapabilityDenials == nil {
					t.Fatalf("run %d: report %+v, want a cold start whose initialisation failed", i, rep)
				}
				if tc.want == pluginapi.ErrInstructionLimit && rep.InitInstructions < 50_000 ||
					tc.want == pluginapi.ErrPluginTimeout && rep.InitInstructions == 0 {
					t.Fatalf("run %d: %d initialisation units", i, rep.InitInstructions)
				}
				if tc.want == pluginapi.ErrPluginMemory && rep.PeakMemoryBytes != pageSize {
					t.Fatalf("run %d: peak memory %d, want the one page initialisation left", i, rep.PeakMemoryBytes)
				}
			}
		})
	}
}
