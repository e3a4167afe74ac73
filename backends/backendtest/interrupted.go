package backendtest

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// cancelReader is a document's content that cancels the add reading it
// once read to its end: the add is interrupted (Ctrl-C, a cancelled MCP
// call) after its role was checked and its content staged, before its
// write commits.
type cancelReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

// interruptedEntry returns the entry of op on target in log, failing the
// test unless there is one with outcome error and an error that says the
// operation was interrupted.
func interruptedEntry(t *testing.T, log []docex.AuditEntry, op, target string) docex.AuditEntry {
	t.Helper()
	for _, a := range log {
		if a.Operation == op && a.Target == target {
			if a.Outcome != docex.OutcomeError || !strings.HasPrefix(a.Error, "interrupted: ") || !strings.Contains(a.Error, context.Canceled.Error()) {
				t.Errorf("%s entry of the interrupted call: outcome %s, error %q; want error, %q...%q", op, a.Outcome, a.Error, "interrupted: ", context.Canceled)
			}
			return a
		}
	}
	t.Errorf("no %s entry on %q for the interrupted call (docs/isolation.md: no audit write is dropped)", op, target)
	return docex.AuditEntry{}
}

// testInterruptedWritesAudited: a write interrupted (its context
// cancelled) after its role was checked is audited as a failure, outcome
// error, its error "interrupted: ..." (docs/isolation.md). It was not
// recorded at all ("An interrupted operation is not recorded").
func (f *fixture) testInterruptedWritesAudited(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "kept.txt", "kept", nil)

	ctx, cancel := context.WithCancel(bg)
	_, err := s.AddDocument(ctx, b.ID, engine.NewDocument{Name: "cut.txt", Content: &cancelReader{r: strings.NewReader("cut short"), cancel: cancel}})
	if err == nil || strings.Contains(err.Error(), "could not be audited") {
		t.Fatalf("interrupted add: %v; want its error, audited", err)
	}
	// Cancelled before the call: the store may refuse to open (audited
	// in the system log) or the write to begin (the tenant's).
	for _, c := range []struct {
		op, target string
		call       func(ctx context.Context) error
	}{
		{"metadata.set", d.ID, func(ctx context.Context) error {
			_, err := s.SetMetadata(ctx, d.ID, map[string]docex.Value{"k": docex.String("v")})
			return err
		}},
		{"basket.create", "late", func(ctx context.Context) error { _, err := s.CreateBasket(ctx, "late"); return err }},
		{"document.delete", d.ID, func(ctx context.Context) error { return s.DeleteDocument(ctx, d.ID) }},
	} {
		ctx, cancel := context.WithCancel(bg)
		cancel()
		if err := c.call(ctx); err == nil || strings.Contains(err.Error(), "could not be audited") {
			t.Errorf("%s with a cancelled context: %v; want its error, audited", c.op, err)
		}
	}
	log, err := s.Audit(bg, docex.Page{Limit: 100})
	must(t, err)
	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 100})
	must(t, err)
	if a := interruptedEntry(t, log, "document.add", b.ID); a.Outcome != "" && a.UserID != "u-acme" {
		t.Errorf("document.add entry %+v: want user u-acme", a)
	}
	for _, c := range []struct{ op, target string }{{"metadata.set", d.ID}, {"basket.create", "late"}, {"document.delete", d.ID}} {
		interruptedEntry(t, append(append([]docex.AuditEntry{}, log...), sys...), c.op, c.target)
	}
	// Nothing of the interrupted writes committed.
	got, err := s.Document(bg, d.ID)
	must(t, err)
	if len(got.Metadata) != 0 {
		t.Errorf("metadata %v after an interrupted set", got.Metadata)
	}
	docs, err := s.Documents(bg, b.ID, docex.Page{})
	must(t, err)
	if len(docs) != 1 {
		t.Errorf("%d documents after an interrupted add, want 1", len(docs))
	}
}

// testInterruptedRunAudited: a plugin run interrupted while the guest
// ran (docex run and Ctrl-C) is audited as plugin.run, outcome error,
// "interrupted: ...", with the resource report of what the guest did.
// It failed with "(and this could not be audited: begin: context
// canceled)" and left no entry.
func (f *fixture) testInterruptedRunAudited(t *testing.T) {
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	// The guest runs to its end; then the call is cancelled, and the run
	// fails as the sandbox's does when interrupted.
	stop := func(rctx context.Context, call pluginapi.Call, real pluginapi.Runner) (*pluginapi.Result, error) {
		res, err := real.Run(bg, call)
		if err != nil {
			return res, err
		}
		cancel()
		return &pluginapi.Result{Status: pluginapi.StatusError, Report: res.Report}, fmt.Errorf("sandbox: run: %w", rctx.Err())
	}
	e := f.hookedPipeEnv(t, map[string]runHook{"echo": stop}, nil)
	e.tenant("acme")
	s := e.as("acme", "admin")
	e.install(s, "echo")
	b := e.basket(s, "b")
	d := e.add(s, b.ID, "a.txt", "hello", nil)
	_, err := s.RunPlugin(ctx, "echo", d.ID, nil)
	if err == nil || strings.Contains(err.Error(), "could not be audited") {
		t.Fatalf("interrupted run: %v; want its error, audited", err)
	}
	log, err := s.Audit(bg, docex.Page{Limit: 100})
	must(t, err)
	a := interruptedEntry(t, log, "plugin.run", "echo")
	rep, _ := a.Detail["report"].(map[string]any)
	if a.Detail["ran"] != true || a.Detail["document_id"] != d.ID || rep == nil || rep["instructions"] == 0.0 {
		t.Errorf("plugin.run entry detail %v: want the document, ran true and the guest's report", a.Detail)
	}
}
