package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestPipelineCreateValidatesParams: pipeline create has each step's
// plugin check its parameters (docex_validate): a refusal is ErrInvalid
// naming the line and key with the plugin's text; a plugin that traps,
// spins or calls what validate may not is ErrPluginFailed; either way
// nothing is stored. A plugin without the export is unaffected.
func TestPipelineCreateValidatesParams(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "validate")
	e.install(t, e.a, "echo")
	def := func(mode string) []byte {
		return []byte("name = \"v\"\n[[steps]]\nname = \"first\"\nplugin = \"echo\"\n[[steps]]\nname = \"check\"\nplugin = \"validate\"\nparams = { mode = \"" + mode + "\" }\n")
	}
	for _, tt := range []struct {
		mode string
		kind error
		want string
	}{
		{"refuse", docex.ErrInvalid, `pipeline line 8, key steps[1].params.mode: plugin "validate" refused its parameters: mode: refused on purpose; second line`},
		{"silent", docex.ErrInvalid, `pipeline line 8, key steps[1].params: plugin "validate" refused its parameters: docex_validate returned 7`},
		{"trap", docex.ErrPluginFailed, `pipeline line 7, key steps[1].plugin: plugin "validate" failed while checking its parameters: plugin trapped: plugin "validate": wasm error: unreachable (in docex_validate)`},
		{"loop", docex.ErrPluginFailed, `pipeline line 7, key steps[1].plugin: plugin "validate" failed while checking its parameters: plugin exceeded its instruction budget: plugin "validate" used more than 20000000 instruction units (in docex_validate)`},
		{"emit", docex.ErrPluginFailed, `plugin trapped: docex.emit: only param_get and log are available while a plugin checks its parameters`},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			_, err := e.a.CreatePipeline(ctx, def(tt.mode))
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant %v containing %q", err, tt.kind, tt.want)
			}
			if ps, err := e.a.Pipelines(ctx); err != nil || len(ps) != 0 {
				t.Fatalf("stored: %+v, %v", ps, err)
			}
		})
	}
	if _, err := e.a.CreatePipeline(ctx, def("ok")); err != nil {
		t.Fatalf("mode ok: %v", err)
	}
	if _, err := e.a.CreatePipeline(ctx, []byte("name = \"plain\"\n[[steps]]\nname = \"e\"\nplugin = \"echo\"\n")); err != nil {
		t.Fatalf("echo, no docex_validate: %v", err)
	}
	// The refusal is audited like other refused definitions.
	log, err := e.a.Audit(ctx, docex.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, l := range log {
		if l.Operation == "pipeline.create" && l.Outcome != docex.OutcomeOK {
			refused++
		}
	}
	if refused != 5 {
		t.Fatalf("%d refused pipeline.create audit entries, want 5", refused)
	}
}

// TestRunPluginValidatesParams: docex run (Session.RunPlugin) has a plugin
// with docex_validate check its parameters first: a refusal is invalid
// parameters (ErrPluginInvalid), not a failed run, and writes nothing.
func TestRunPluginValidatesParams(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "validate")
	_, err := e.writerA.RunPlugin(ctx, "validate", e.aDoc.ID, map[string]string{"mode": "refuse"})
	var r *pluginapi.Refusal
	if !errors.Is(err, docex.ErrPluginInvalid) || !errors.As(err, &r) ||
		err.Error() != `invalid parameters: plugin "validate" refused them: mode: refused on purpose; second line` {
		t.Fatalf("refuse: %v", err)
	}
	d, err := e.a.Document(ctx, e.aDoc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Metadata["validated_run"]; ok {
		t.Fatal("the run ran after its parameters were refused")
	}
	res, err := e.writerA.RunPlugin(ctx, "validate", e.aDoc.ID, map[string]string{"mode": "ok"})
	if err != nil || res.Document.Metadata["validated_run"] != docex.Bool(true) {
		t.Fatalf("ok: %v, %+v", err, res)
	}
}

// TestRunPluginValidateColdStart: the first run of a plugin with
// docex_validate reports the instance its validate call made (p14 M1: it
// reported cold_start false, as if the instance had been warm).
func TestRunPluginValidateColdStart(t *testing.T) {
	ctx := context.Background()
	e := newPluginEnv(t)
	e.install(t, e.a, "validate")
	res, err := e.writerA.RunPlugin(ctx, "validate", e.aDoc.ID, map[string]string{"mode": "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Report; !r.ColdStart || r.InstantiateDurationMS <= 0 {
		t.Fatalf("first run: cold_start %v, instantiate_duration_ms %v: the validate call's new instance is not reported", r.ColdStart, r.InstantiateDurationMS)
	}
	res, err = e.writerA.RunPlugin(ctx, "validate", e.aDoc.ID, map[string]string{"mode": "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Report; r.ColdStart || r.InitDurationMS != 0 || r.InstantiateDurationMS != 0 {
		t.Fatalf("second run, warm: %+v", r)
	}
}
