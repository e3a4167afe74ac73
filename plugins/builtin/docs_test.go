package builtin_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/markdown"
	"github.com/docex-dev/docex/plugins/builtin"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// stepsDoc returns docs/steps.md.
func stepsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/steps.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the text of the "## name" section of doc.
func docSection(t *testing.T, doc, name string) string {
	t.Helper()
	text, ok := markdown.Section(doc, "## "+name)
	if !ok {
		t.Fatalf("docs/steps.md has no section %q", name)
	}
	return text
}

// stepRows returns the table rows of text whose first cell is a built-in
// step's name, by step.
func stepRows(text string) map[string][][]string {
	rows := map[string][][]string{}
	for _, cells := range markdown.TableRows(text) {
		if name := strings.Trim(cells[0], "`"); builtin.IsBuiltin(name) {
			rows[name] = append(rows[name], cells)
		}
	}
	return rows
}

func manifests(t *testing.T) map[string]*pluginapi.Manifest {
	t.Helper()
	all, err := builtin.Steps()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pluginapi.Manifest{}
	for _, s := range all {
		m, err := pluginapi.ParseManifest(s.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		out[s.Name] = m
	}
	return out
}

// TestStepsDocLimits checks docs/steps.md's Limits table against the
// manifests: the accepted types, capabilities, memory and time of every
// step, one row each.
func TestStepsDocLimits(t *testing.T) {
	rows := stepRows(docSection(t, stepsDoc(t), "Limits"))
	for name, m := range manifests(t) {
		if len(rows[name]) != 1 {
			t.Errorf("%s: %d rows in the Limits table, want 1", name, len(rows[name]))
			continue
		}
		r := rows[name][0]
		if len(r) != 6 {
			t.Fatalf("%s: %d cells: %q", name, len(r), r)
		}
		accepts := "any type"
		if len(m.AcceptedContentTypes) > 0 {
			accepts = "`" + strings.Join(m.AcceptedContentTypes, "`, `") + "`"
		}
		if r[1] != accepts {
			t.Errorf("%s accepts %s, the doc says %s", name, accepts, r[1])
		}
		if caps := strings.Join(m.Capabilities, ", "); r[2] != caps {
			t.Errorf("%s has capabilities %s, the doc says %s", name, caps, r[2])
		}
		if mem := strconv.Itoa(int(m.Limits.MemoryPages)*64/1024) + " MiB"; r[3] != mem {
			t.Errorf("%s has %s of memory, the doc says %s", name, mem, r[3])
		}
		if tm := strconv.FormatInt(m.Limits.TimeoutMS/1000, 10) + " s"; r[4] != tm {
			t.Errorf("%s has a %s limit, the doc says %s", name, tm, r[4])
		}
		if out := m.Limits.MaxOutputBytes; out > 0 && !strings.Contains(r[5], strconv.FormatInt(out>>20, 10)+" MiB output") {
			t.Errorf("%s has %d MiB of output, the doc says %s", name, out>>20, r[5])
		}
	}
}

// TestStepsDocParameters checks that docs/steps.md's Parameters table has
// a row for every parameter a manifest declares, and none for a parameter
// no manifest declares.
func TestStepsDocParameters(t *testing.T) {
	rows := stepRows(docSection(t, stepsDoc(t), "Parameters"))
	ms := manifests(t)
	for name, m := range ms {
		var documented []string
		for _, r := range rows[name] {
			documented = append(documented, strings.Trim(strings.TrimSuffix(r[1], " (required)"), "`"))
		}
		for p := range m.Parameters {
			if !slices.Contains(documented, p) {
				t.Errorf("%s: parameter %s is not in the Parameters table", name, p)
			}
		}
		for _, p := range documented {
			if _, ok := m.Parameters[p]; !ok {
				t.Errorf("%s: the Parameters table documents %s, which the manifest does not declare", name, p)
			}
		}
	}
}

// TestStepsDocMetadata checks that every metadata key the steps' code sets
// is named in docs/steps.md's table of steps.
func TestStepsDocMetadata(t *testing.T) {
	doc := stepsDoc(t)
	table := doc[:strings.Index(doc, "\n## ")]
	files, err := filepath.Glob("internal/steps/*.go")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?:KV\{|SetMetadata\(|\{)"([a-z]+_[a-z_]+)", `)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			n++
			if !strings.Contains(table, "`"+m[1]+"`") && !strings.Contains(table, "`"+m[1]+"=") {
				t.Errorf("%s sets %s, which the steps table of docs/steps.md does not name", f, m[1])
			}
		}
	}
	if n < 20 {
		t.Fatalf("found %d metadata keys in the steps' code: the pattern no longer matches it", n)
	}
	for _, k := range []string{"pii_NAME", "pii_total"} { // pii_ + kind
		if !strings.Contains(table, "`"+k+"`") {
			t.Errorf("the steps table does not name %s", k)
		}
	}
}
