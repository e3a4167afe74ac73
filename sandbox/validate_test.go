package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestValidate: a plugin's docex_validate sees its parameters, refuses
// them with its logged text (without the log capability), is bounded by
// the plugin's limits, may call no host function but param_get and log,
// and leaves the instance as a run does; a module without the export
// only gets the manifest's checks.
func TestValidate(t *testing.T) {
	ctx := context.Background()
	p := plugin(t, "validate")
	if !p.Validates() {
		t.Fatal("validate: Validates() = false")
	}
	tests := []struct {
		mode    string // "" leaves the parameter out
		params  map[string]string
		wantErr error
		want    string // in the error
		refusal string // the Refusal's Message
	}{
		{mode: ""},
		{mode: "ok"},
		{mode: "refuse", wantErr: pluginapi.ErrInvalidParams, want: `plugin "validate" refused them: mode: refused on purpose; second line`,
			refusal: "mode: refused on purpose; second line"},
		{mode: "silent", wantErr: pluginapi.ErrInvalidParams, want: `plugin "validate" refused them (docex_validate returned 7)`},
		{mode: "trap", wantErr: pluginapi.ErrPluginTrap, want: "unreachable"},
		{mode: "loop", wantErr: pluginapi.ErrInstructionLimit, want: "used more than 20000000 instruction units (in docex_validate)"},
		{mode: "emit", wantErr: pluginapi.ErrPluginTrap, want: "docex.emit: only param_get and log are available"},
		{mode: "cstatus", wantErr: pluginapi.ErrPluginTrap, want: "docex.set_status: only param_get and log are available"},
		{params: map[string]string{"nope": "x"}, wantErr: pluginapi.ErrInvalidParams, want: `has no parameter "nope"`},
	}
	for _, tt := range tests {
		name := tt.mode
		if name == "" {
			name = "absent"
		}
		if tt.params != nil {
			name = "manifest"
		}
		t.Run(name, func(t *testing.T) {
			params := tt.params
			if params == nil {
				params = map[string]string{}
				if tt.mode != "" {
					params["mode"] = tt.mode
				}
			}
			err := p.Validate(ctx, "t", params)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", params, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate(%v) = %v, want %v containing %q", params, err, tt.wantErr, tt.want)
			}
			var r *pluginapi.Refusal
			if got := errors.As(err, &r); got != (tt.wantErr == pluginapi.ErrInvalidParams && tt.params == nil) {
				t.Fatalf("errors.As(%v, *Refusal) = %v", err, got)
			}
			if r != nil && r.Message != tt.refusal {
				t.Fatalf("Refusal.Message = %q, want %q", r.Message, tt.refusal)
			}
		})
	}
	// A run after all that starts from the initial state and still works.
	res, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("in", "x"), Params: map[string]string{"mode": "refuse"}})
	if err != nil || res.Metadata["validated_run"] != true {
		t.Fatalf("run after validate: %v, %+v", err, res)
	}
	if err := p.Validate(ctx, "", nil); !errors.Is(err, pluginapi.ErrInvalidParams) {
		t.Fatalf("empty tenant: %v", err)
	}
}

// TestValidateNamedEntry: a manifest with entry docex_run_NAME gets
// docex_validate_NAME, not docex_validate.
func TestValidateNamedEntry(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "validate")
	m.Entry = "docex_run_named"
	p, err := sharedSandbox(t).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	err = p.Validate(ctx, "t", map[string]string{"mode": "ok"})
	var r *pluginapi.Refusal
	if !errors.As(err, &r) || r.Export != "docex_validate_named" || r.Message != "named: refused" {
		t.Fatalf("named entry: %v", err)
	}
}

// TestValidateWithoutExport: a plugin without docex_validate is checked
// against its manifest only and runs as before.
func TestValidateWithoutExport(t *testing.T) {
	ctx := context.Background()
	p := plugin(t, "echo")
	if p.Validates() {
		t.Fatal("echo: Validates() = true")
	}
	if err := p.Validate(ctx, "t", nil); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if err := p.Validate(ctx, "t", map[string]string{"nope": "1"}); !errors.Is(err, pluginapi.ErrInvalidParams) {
		t.Fatalf("echo, unknown parameter: %v", err)
	}
	if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("in", "x")}); err != nil {
		t.Fatalf("echo run: %v", err)
	}
}
