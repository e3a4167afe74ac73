package engine

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex/sandbox"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestPluginCacheMakesRoomForCode: when the sandbox refuses a Load because
// the compiled modules it holds would pass its machine-code budget
// (sandbox.Config.MaxCompiledCode), the engine closes the least recently
// used plugin it keeps and loads again: runs of two plugins that do not fit
// together take turns instead of failing. Before, the second plugin's runs
// failed with plugin_invalid for as long as the first stayed cached.
func TestPluginCacheMakesRoomForCode(t *testing.T) {
	ctx := context.Background()
	names := []string{"upper", "tag"}
	// Each module's estimated machine code, as a refusal names it.
	probe, err := sandbox.New(ctx, sandbox.Config{MaxCompiledCode: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close(ctx)
	re := regexp.MustCompile(`this module's ([0-9]+)\)`)
	var largest int64
	for _, name := range names {
		_, m, module := testPlugin(t, name)
		_, err := probe.LoadRunner(ctx, m, module)
		sub := re.FindStringSubmatch(fmtErr(err))
		if !errors.Is(err, pluginapi.ErrTooManyModules) || sub == nil {
			t.Fatalf("%s under a 1-byte budget: %v", name, err)
		}
		n, _ := strconv.ParseInt(sub[1], 10, 64)
		largest = max(largest, n)
	}
	// Room for either module, not both.
	sb, err := sandbox.New(ctx, sandbox.Config{MaxCompiledCode: largest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(ctx) })
	s := acmeSession(t, sb)
	installTestPlugins(t, s, names...)
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", ContentType: "text/plain", Content: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := names[i%2]
		r, err := s.RunPlugin(ctx, name, d.Document.ID, nil)
		if err != nil || r.Status != string(pluginapi.StatusOK) {
			t.Fatalf("run %d (%s): %v (status %q)", i, name, err, r.Status)
		}
	}
	s.e.mu.Lock()
	n := len(s.e.plugins)
	s.e.mu.Unlock()
	if n != 1 {
		t.Errorf("the engine keeps %d plugins, want 1 (the other closed to make room)", n)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
