package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/engine"
)

// TestRunBarLabelMatchesCount: every frame pipeline run --wait's bar
// draws shows the label (done, failed) and the count of the same poll.
// Before, the label was drawn first and the count's frame was dropped by
// the library's throttle: "done 1825, failed 0 89% (1791/2000)".
func TestRunBarLabelMatchesCount(t *testing.T) {
	var out bytes.Buffer
	bar := newRunBar(&out, 10)
	frame := regexp.MustCompile(`done (\d+), failed (\d+).*\((\d+)/10`)
	shown := 0
	for _, st := range []engine.JobsStatus{
		{Total: 10, Succeeded: 1, Pending: 9},
		{Total: 10, Succeeded: 3, Failed: 1, Pending: 6}, // at once: may be skipped, never left half drawn
		{Total: 10, Succeeded: 6, Failed: 1, Pending: 3},
		{Total: 10, Succeeded: 9, Failed: 1},
	} {
		bar.show(st)
		// The frame left on the screen (the last drawn) is of one poll.
		frames := strings.Split(out.String(), "\r")
		m := frame.FindStringSubmatch(frames[len(frames)-1])
		if m == nil {
			continue
		}
		shown++
		done, _ := strconv.Atoi(m[1])
		failed, _ := strconv.Atoi(m[2])
		count, _ := strconv.Atoi(m[3])
		if done+failed != count {
			t.Errorf("frame left %q: label says %d finished, count %d", frames[len(frames)-1], done+failed, count)
		}
		time.Sleep(runBarEvery / 2)
	}
	if shown == 0 || !strings.Contains(out.String(), "done 9, failed 1") {
		t.Fatalf("%d frames left; output %q: want the last state drawn", shown, out.String())
	}
}
