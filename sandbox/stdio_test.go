package sandbox

import (
	"context"
	"slices"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestStdioFreshPerInvocation runs the stdio plugin's hostile call (close
// fd 0, 1 or 2, renumber one onto another or onto 7, set flags on stdout),
// then, on the same (tenant, plugin) pool and in another tenant, calls that
// write to stdout and stderr and read stdin: each must succeed, and the
// writes must reach the call's log. The WASI descriptor table is the
// instance's (wazero keeps it outside memory and globals, so the snapshot
// reset does not restore it): before, fd_close(1) on a pooled instance
// made the next call's stdout writes of the same tenant fail with EBADF
// and its log lines vanish.
func TestStdioFreshPerInvocation(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "stdio")
	for _, op := range []string{"c0", "c1", "c2", "n12", "n21", "n10", "n17", "n71", "f1", "a1", "f2"} {
		t.Run(op, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", "x"), Params: map[string]string{"op": op}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: errno %d, instance retired %v", op, int(r.Metadata["op"].(string)[0])-'0', r.Report.InstanceRetired)
			switch op[0] {
			case 'c', 'n': // the table may have changed: the instance is not reused
				if !r.Report.InstanceRetired {
					t.Errorf("%s: the instance was pooled", op)
				}
			default: // no state (wazero v1.12): the instance is reused
				if r.Report.InstanceRetired {
					t.Errorf("%s: the instance was retired", op)
				}
			}
			for i, tenant := range []string{"a", "b", "a"} {
				r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant, Input: textDoc("x", "x")})
				if err != nil {
					t.Fatalf("call %d (tenant %s): %v", i, tenant, err)
				}
				if i == 0 && op[0] != 'c' && op[0] != 'n' && r.Report.ColdStart {
					t.Errorf("%s: the next call did not reuse the instance", op)
				}
				for _, k := range []string{"stdout", "stderr", "stdin"} {
					if got := r.Metadata[k]; got != "0" {
						t.Errorf("call %d (tenant %s) after %s: %s errno %d, want 0", i, tenant, op, k, int(got.(string)[0])-'0')
					}
				}
				for _, want := range []pluginapi.LogLine{{Level: "stdout", Text: "fresh stdout"}, {Level: "stderr", Text: "fresh stderr"}} {
					if !slices.Contains(r.Logs, want) {
						t.Errorf("call %d (tenant %s) after %s: log %v lacks %v", i, tenant, op, r.Logs, want)
					}
				}
			}
		})
	}
}

// TestStdioClosedByInit: a start function that closes stdout leaves it
// closed for every invocation, on the first instance as on every later
// one, in every tenant, with either reset. Before, instances made from the
// snapshot got a new descriptor table (stdout open) while the instance that
// ran the start function kept it closed: where the reset maps the snapshot
// (Linux) every invocation saw stdout open, elsewhere the first instance's
// invocations saw it closed.
func TestStdioClosedByInit(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "stdioinit")
	for _, mode := range []string{"pages", "copy"} {
		t.Run(mode, func(t *testing.T) {
			sb := newSandbox(t, Config{})
			sb.copyReset = mode == "copy"
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				t.Fatal(err)
			}
			for i, tenant := range []string{"a", "a", "b", "a"} {
				r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant, Input: textDoc("x", "x")})
				if err != nil {
					t.Fatalf("call %d (tenant %s): %v", i, tenant, err)
				}
				if got := r.Metadata["stdout"]; got != "8" { // '0' + EBADF
					t.Errorf("call %d (tenant %s): stdout errno %d, want EBADF (8)", i, tenant, int(got.(string)[0])-'0')
				}
				if !r.Report.ColdStart || !r.Report.InstanceRetired {
					t.Errorf("call %d (tenant %s): cold start %v, retired %v: want a new instance per call", i, tenant, r.Report.ColdStart, r.Report.InstanceRetired)
				}
			}
		})
	}
}
