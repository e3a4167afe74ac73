package main

import (
	"strings"
	"testing"
)

// TestRegistryRefusalsAudited: tenant suspend, resume and delete of the
// bootstrap tenant (exit 4, bootstrap_tenant) and tenant create of its
// id (exit 5, tenant_exists) wrote nothing to the system audit log,
// while the same commands on a tenant that does not exist, or a create
// of an existing one, were audited. Now every one is (docs/isolation.md):
// the bootstrap tenant's refusals with outcome denied, the create with
// outcome error.
func TestRegistryRefusalsAudited(t *testing.T) {
	t.Parallel()
	onBothBackends(t, "regref", func(t *testing.T, h *harness) {
		h.ok("init")
		tests := []struct {
			args            []string
			code            int
			op, outcome     string
			wantErrContains string
		}{
			{[]string{"tenant", "suspend", "system"}, exitDenied, "tenant.suspend", "denied", "bootstrap tenant"},
			{[]string{"tenant", "resume", "system"}, exitDenied, "tenant.resume", "denied", "bootstrap tenant"},
			{[]string{"tenant", "delete", "system", "--yes"}, exitDenied, "tenant.delete", "denied", "bootstrap tenant"},
			{[]string{"tenant", "create", "system"}, exitConflict, "tenant.create", "error", "bootstrap tenant"},
		}
		for _, tc := range tests {
			h.want(tc.code, tc.args...)
			log := decode[[]map[string]any](t, h.ok("audit", "list", "--system", "--json").stdout)
			var found map[string]any
			for _, e := range log { // newest first
				if e["operation"] == tc.op && e["target"] == "system" {
					found = e
					break
				}
			}
			if found == nil || found["outcome"] != tc.outcome || !strings.Contains(found["error"].(string), tc.wantErrContains) {
				t.Errorf("docex %s: system audit entry %v; want %s on system, outcome %s", strings.Join(tc.args, " "), found, tc.op, tc.outcome)
			}
		}
	})
}
