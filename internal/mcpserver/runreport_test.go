package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docex-dev/docex/engine"
)

// TestRunPluginErrorReport: a run_plugin that failed once the plugin ran
// (its entry trapping, its docex_validate refusing the parameters) ends
// its error text with a line "report: " and the run's RunReport as JSON
// (what docex run --json gives as "report"); a run refused before the
// plugin ran (no such document, parameters its manifest refused) has no
// such line. Before, a failed run's error said nothing of what it used.
func TestRunPluginErrorReport(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"trap", "validate"} {
		manifest, module := pluginBytes(t, name)
		if _, err := e.admin.InstallPlugin(context.Background(), manifest, module); err != nil {
			t.Fatal(err)
		}
	}
	_, cs := e.connect(t, user("will", "writer"), Config{})
	cases := []struct {
		name   string
		args   map[string]any
		prefix string
		ran    bool
	}{
		{"entry traps", map[string]any{"plugin": "trap", "document_id": e.doc.ID}, "plugin_failed: ", true},
		{"validate refuses", map[string]any{"plugin": "validate", "document_id": e.doc.ID, "params": map[string]string{"mode": "refuse"}}, "plugin_invalid: ", true},
		{"manifest refuses", map[string]any{"plugin": "validate", "document_id": e.doc.ID, "params": map[string]string{"bogus": "1"}}, "plugin_invalid: ", false},
		{"no document", map[string]any{"plugin": "trap", "document_id": "0190c1a2-0000-7000-8000-000000000000"}, "not_found: ", false},
	}
	for _, tc := range cases {
		msg := callErr(t, cs, "run_plugin", tc.args)
		head, line, found := strings.Cut(msg, "\nreport: ")
		if !strings.HasPrefix(head, tc.prefix) || found != tc.ran || strings.Contains(line, "\n") {
			t.Errorf("%s: %q, want %q... with a report line: %v", tc.name, msg, tc.prefix, tc.ran)
			continue
		}
		if !tc.ran {
			continue
		}
		var rep engine.RunReport
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil || rep.PeakMemoryBytes == 0 || rep.Instructions == 0 || rep.CapabilityDenials == nil {
			t.Errorf("%s: report %q (%v), want a RunReport of what the run used", tc.name, line, err)
		}
	}
}
