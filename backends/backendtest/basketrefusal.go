package backendtest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// testUnknownBasketWritesAudited: a write on a basket that is not found
// (Session.ResolveBasketFor: basket bind, basket unbind, basket delete,
// pipeline run --basket, MCP run_pipeline), by name, by an id that names
// nothing or by an id-shaped name that is not an id's canonical form, is
// refused and audited as the write it was, on every backend: outcome
// error, the error's text, the basket as given as the target
// ("pipeline.run": the pipeline, the basket as given in the detail
// {"basket"}), "basket.bind"'s detail naming the pipeline. A role without
// the write gets its denial instead, audited as such. Before, this was
// tested on SQLite alone (cmd/docex TestUnknownBasketWritesAudited).
func (f *fixture) testUnknownBasketWritesAudited(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	admin := e.as("acme", "admin")
	reader := e.as("acme", "reader")
	upper := strings.ToUpper(unknownID)
	cases := []struct {
		op, ref, pipeline string
		want              error
		target, outcome   string
		detail            map[string]any
	}{
		{"basket.bind", "nobasket", "up", docex.ErrNotFound, "nobasket", docex.OutcomeError, map[string]any{"pipeline": "up"}},
		{"basket.unbind", "nobasket", "", docex.ErrNotFound, "nobasket", docex.OutcomeError, nil},
		{"basket.delete", "nobasket", "", docex.ErrNotFound, "nobasket", docex.OutcomeError, nil},
		{"pipeline.run", "nobasket", "up", docex.ErrNotFound, "up", docex.OutcomeError, map[string]any{"basket": "nobasket"}},
		{"basket.delete", unknownID, "", docex.ErrNotFound, unknownID, docex.OutcomeError, nil},
		{"pipeline.run", upper, "up", docex.ErrInvalidID, "up", docex.OutcomeError, map[string]any{"basket": upper}},
	}
	var errs []error
	for _, c := range cases {
		_, err := admin.ResolveBasketFor(bg, c.op, c.ref, c.pipeline)
		wantErr(t, err, c.want)
		errs = append(errs, err)
	}
	// Denied: a reader may not delete a basket.
	_, derr := reader.ResolveBasketFor(bg, "basket.delete", "nobasket", "")
	wantErr(t, derr, docex.ErrDenied)
	log, err := admin.Audit(bg, docex.Page{Limit: 100})
	must(t, err)
	var got []docex.AuditEntry
	for _, a := range log {
		if a.Operation != "audit.list" {
			got = append([]docex.AuditEntry{a}, got...) // oldest first
		}
	}
	if len(got) != len(cases)+1 {
		t.Fatalf("%d audit entries, want %d: %+v", len(got), len(cases)+1, got)
	}
	for i, c := range cases {
		a := got[i]
		detail := a.Detail
		if len(detail) == 0 {
			detail = nil
		}
		if a.Operation != c.op || a.Target != c.target || a.Outcome != c.outcome || a.Error != errs[i].Error() || !reflect.DeepEqual(detail, c.detail) {
			t.Errorf("%s %s: audited %+v; want target %s, outcome %s, error %q, detail %v", c.op, c.ref, a, c.target, c.outcome, errs[i], c.detail)
		}
	}
	if a := got[len(cases)]; a.Operation != "basket.delete" || a.Target != "nobasket" || a.Outcome != docex.OutcomeDenied {
		t.Errorf("the reader's basket.delete: audited %+v; want target nobasket, outcome denied", a)
	}
	if t.Failed() {
		t.Log(fmt.Sprint(got))
	}
}
