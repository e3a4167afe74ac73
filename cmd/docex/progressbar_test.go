package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPipelineRunProgressBar: pipeline run --wait draws a progress bar on
// a terminal's stderr (documents done and failed, done/total, rate, time
// and ETA), then the summary on stdout; off a terminal, and with --json
// on one, it draws none.
func TestPipelineRunProgressBar(t *testing.T) {
	h := newHarness(t)
	u := pipelineSetup(t, h, "acme")
	var files []string
	for i := range 6 {
		files = append(files, h.file(fmt.Sprintf("d%d.txt", i), fmt.Sprintf("%d document number %d", i, i)))
	}
	h.ok(append(append([]string{"doc", "add", "inbox"}, files...), u...)...)
	onTerminal := func(args ...string) (result, string) {
		t.Helper()
		errb := &ttyBuffer{}
		var out bytes.Buffer
		full := append(append([]string{"--config", filepath.Join(h.dir, "docex.yaml")}, args...), u...)
		err := runIO(context.Background(), full, ttyReader{strings.NewReader("")}, &out, errb, func(k string) string { return h.env[k] })
		return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}, errb.String()
	}

	r, bar := onTerminal("pipeline", "run", "three", "--basket", "inbox", "--wait")
	if r.code != 0 {
		t.Fatalf("pipeline run --wait: exit %d\n%s\n%s", r.code, r.stdout, bar)
	}
	// Its states while it runs: "done 0, failed 0   0% |   | (0/6, 0
	// docs/hr) [0s:0s]" (elapsed:ETA); the last one: "done 6, failed 0
	// 100% |███| (6/6, 104 docs/s)".
	if !regexp.MustCompile(`\[[0-9.]+[mµn]?s:[0-9.]+[mµn]?s\]`).MatchString(bar) {
		t.Errorf("no elapsed:ETA in the bar's states %q", bar)
	}
	last := bar[strings.LastIndex(strings.TrimRight(bar, "\n"), "\r")+1:]
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`done 6, failed 0`),
		regexp.MustCompile(`100%`),
		regexp.MustCompile(`\(6/6, [0-9.]+ docs/(s|min|hr)\)`),
	} {
		if !want.MatchString(last) {
			t.Errorf("the bar's last state %q lacks %s (all of stderr: %q)", last, want, bar)
		}
	}
	if !strings.HasPrefix(r.stdout, "pipeline three: 6 document(s): 6 done, 0 failed") {
		t.Errorf("summary: %q", r.stdout)
	}

	// Failed documents are counted as they fail.
	h.ok(append([]string{"pipeline", "create", h.file("bad.toml", "name = \"bad\"\n[[steps]]\nname = \"t\"\nplugin = \"trap\"\n")}, u...)...)
	r, bar = onTerminal("pipeline", "run", "bad", "--basket", "inbox", "--wait")
	if r.code != exitPlugin || !strings.Contains(bar[strings.LastIndex(bar, "\r")+1:], "done 0, failed 6 100%") {
		t.Errorf("a failing pipeline: exit %d, bar %q", r.code, bar)
	}

	// With --json on a terminal, and off a terminal: no bar.
	if _, bar := onTerminal("pipeline", "run", "three", "--basket", "inbox", "--wait", "--json"); bar != "" {
		t.Errorf("--json on a terminal drew %q", bar)
	}
	if r := h.ok(append([]string{"pipeline", "run", "three", "--basket", "inbox", "--wait"}, u...)...); strings.Contains(r.stderr, "%") {
		t.Errorf("off a terminal: stderr %q", r.stderr)
	}
}
