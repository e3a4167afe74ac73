package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/sandbox"
)

// *sandbox.Sandbox names its guests' environment.
var _ GuestEnvironment = (*sandbox.Sandbox)(nil)

// envRuntime is a PluginRuntime with the guest environment env.
type envRuntime struct {
	PluginRuntime
	env string
}

func (r envRuntime) GuestEnvironment() string { return r.env }

// TestCacheKeyHasGuestEnvironment: step results computed under one guest
// environment (what a guest sees of clocks and random bytes) are not
// reused under another; under the same one they are. Before, the key had
// no environment, and a docex whose guests saw other clocks or random
// bytes reused results computed before.
func TestCacheKeyHasGuestEnvironment(t *testing.T) {
	ctx := context.Background()
	be, dir := OpenTestSQLite(t)
	sb := newTestSandbox(t)
	s := threeStepSession(t, acmeSessionOn(t, be, dir, envRuntime{sb, "env-a"}).e, "acme")
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "a.txt", Content: strings.NewReader("some words to split")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env         string
		run, cached int
	}{
		{"env-a", 5, 0}, // the first run
		{"env-a", 0, 5},
		{"env-b", 5, 0}, // another environment: run again
		{"env-b", 0, 5},
		{"env-a", 0, 5},
	} {
		e, err := New(ctx, be, Config{MultiTenancy: true, ContentDir: dir + "/content", Sandbox: envRuntime{sb, c.env}})
		if err != nil {
			t.Fatal(err)
		}
		es := e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
		run, cached := runThree(t, es, d.Document.ID)
		e.Close()
		if run != c.run || cached != c.cached {
			t.Errorf("environment %s: %d steps run, %d cached; want %d and %d", c.env, run, cached, c.run, c.cached)
		}
	}
}

// runThree runs the pipeline "three" on doc as one batch, directly (no
// worker), and returns the steps the job ran and took from the cache.
func runThree(t *testing.T, s *Session, doc string) (run, cached int) {
	t.Helper()
	ctx := context.Background()
	ids, err := s.RunPipeline(ctx, "three", RunTarget{DocumentIDs: []string{doc}})
	if err != nil {
		t.Fatal(err)
	}
	runDirect(t, s.e, "acme", ids)
	j, err := s.Job(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if j.State != driver.JobSucceeded {
		t.Fatalf("job %+v", j)
	}
	return j.Progress.StepsRun, j.Progress.StepsCached
}
