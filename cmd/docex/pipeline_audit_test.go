package main

import (
	"testing"
)

// Conformance of the pipeline commands with docs/json.md, docs/jobs.md and
// the README's exit codes (cases found by an audit of issue 9).

// TestPipelineDeleteJSON: pipeline delete --json prints {"name", "deleted":
// true} (docs/json.md, Deleted), as plugin remove does.
func TestPipelineDeleteJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	with := func(args ...string) []string { return append(args, u...) }
	h.ok(with("pipeline", "create", h.file("solo.toml", "name = \"solo\"\n[[steps]]\nname = \"tag\"\nplugin = \"tag\"\n"))...)
	got := decode[map[string]any](t, h.ok(with("pipeline", "delete", "solo", "--json")...).stdout)
	if len(got) != 2 || got["name"] != "solo" || got["deleted"] != true {
		t.Fatalf("pipeline delete --json = %v, want {\"name\": \"solo\", \"deleted\": true}", got)
	}
}
