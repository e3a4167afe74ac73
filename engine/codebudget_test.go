package engine

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
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

// TestNoRoomForCodeIsHostCapacity: a valid plugin whose compiled code the
// sandbox has no room for, with nothing left the engine could close, is
// docex.ErrHostCapacity (code host_capacity, no kind: exit 1, a job is
// retried), still matching pluginapi.ErrTooManyModules, at install and at
// a run. Before, it was plugin_invalid (exit 2): the plugin was blamed for
// the host's budget.
func TestNoRoomForCodeIsHostCapacity(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, err error) {
		t.Helper()
		if docex.Code(err) != "host_capacity" || !errors.Is(err, docex.ErrHostCapacity) || !errors.Is(err, pluginapi.ErrTooManyModules) ||
			errors.Is(err, docex.ErrPluginInvalid) || docex.KindOf(err) != nil || !transient(err, false) {
			t.Fatalf("err = %v (code %s), want host_capacity of no kind, transient, matching ErrTooManyModules", err, docex.Code(err))
		}
		if want := "the host has no room for the plugin: too many compiled modules: the loaded modules' estimated machine code would be "; !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("err = %q, want it to start %q", err, want)
		}
	}
	t.Run("install", func(t *testing.T) {
		sb, err := sandbox.New(ctx, sandbox.Config{MaxCompiledCode: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close(ctx) })
		s := acmeSession(t, sb)
		manifest, _, module := testPlugin(t, "upper")
		_, err = s.InstallPlugin(ctx, manifest, module)
		check(t, err)
	})
	t.Run("run", func(t *testing.T) {
		probe, err := sandbox.New(ctx, sandbox.Config{MaxCompiledCode: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer probe.Close(ctx)
		re := regexp.MustCompile(`this module's ([0-9]+)\)`)
		var largest int64
		for _, name := range []string{"upper", "tag"} {
			_, m, module := testPlugin(t, name)
			_, err := probe.LoadRunner(ctx, m, module)
			n, _ := strconv.ParseInt(re.FindStringSubmatch(fmtErr(err))[1], 10, 64)
			largest = max(largest, n)
		}
		sb, err := sandbox.New(ctx, sandbox.Config{MaxCompiledCode: largest})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sb.Close(ctx) })
		s := acmeSession(t, sb)
		installTestPlugins(t, s, "upper", "tag")
		bk, err := s.CreateBasket(ctx, "in")
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", ContentType: "text/plain", Content: strings.NewReader("hello")})
		if err != nil {
			t.Fatal(err)
		}
		// Another holder of the sandbox keeps "upper" compiled: the engine
		// closes what it keeps and still finds no room for "tag".
		for s.e.evictOldestPlugin(ctx) {
		}
		_, m, module := testPlugin(t, "upper")
		held, err := sb.LoadRunner(ctx, m, module)
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close(ctx)
		_, err = s.RunPlugin(ctx, "tag", d.Document.ID, nil)
		check(t, err)
	})
}

// hostMemErr is the sandbox's error of a failed reservation: it matches
// ErrHostMemory and ErrPluginMemory (sandbox.hostMemoryError).
type hostMemErr struct{}

func (hostMemErr) Error() string {
	return `sandbox: the host could not reserve memory: plugin "p": cannot reserve its memory limit of 4096 pages: cannot allocate memory`
}
func (hostMemErr) Unwrap() []error {
	return []error{pluginapi.ErrHostMemory, pluginapi.ErrPluginMemory}
}

// TestHostMemoryIsHostCapacity: a run, or a pipeline's check of its
// parameters, that failed because the host could not reserve the
// plugin's memory is host_capacity (no kind, exit 1, a job retried), its
// message saying so. Before, it was plugin_failed, "plugin exceeded its
// memory limit" (permanent): the plugin was blamed for the host.
func TestHostMemoryIsHostCapacity(t *testing.T) {
	want := `the host has no room for the plugin: the host could not reserve memory: plugin "p": cannot reserve its memory limit of 4096 pages: cannot allocate memory`
	for name, err := range map[string]error{
		"run":      mapPluginErr(hostMemErr{}),
		"validate": stepParamsErr([]byte("[[steps]]\nplugin = \"p\"\n"), 0, Step{Plugin: "p"}, hostMemErr{}),
	} {
		if docex.Code(err) != "host_capacity" || errors.Is(err, docex.ErrPluginFailed) || !errors.Is(err, pluginapi.ErrHostMemory) ||
			!transient(err, false) || err.Error() != want {
			t.Errorf("%s: %v (code %s), want host_capacity, transient, %q", name, err, docex.Code(err), want)
		}
	}
}
