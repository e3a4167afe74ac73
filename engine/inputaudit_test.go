package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// TestRefusedInputIsAudited: a tenant write refused for its input (a
// malformed id, bad metadata, a basket name of the form of an id) left no
// audit entry, because the input was checked before the caller's role.
// Now the role comes first: a caller who may write gets the refusal
// recorded in the tenant's own log (outcome error, the target as given,
// the error's text) and nothing changes; a caller who may not gets the
// denial, whatever the input.
func TestRefusedInputIsAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), Sandbox: testSandbox(t)}
	eng := startEngine(t, be, cfg, "acme")
	admin := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	reader := eng.As(docex.UserContext{UserID: "rita", TenantID: "acme", Roles: []string{"reader"}})
	b, err := admin.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	a, err := admin.AddDocument(ctx, b.ID, engine.NewDocument{Name: "a.txt", Content: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	doc := a.Document.ID
	const bad = "not-an-id"
	idLike := "0190c2a4-5b6e-7f80-9a1b-2c3d4e5f6a7b"
	badMeta := map[string]docex.Value{"": docex.String("v")}

	cases := []struct {
		op, target string
		want       error
		call       func(s *engine.Session) error
	}{
		{"basket.create", idLike, docex.ErrInvalid, func(s *engine.Session) error { _, err := s.CreateBasket(ctx, idLike); return err }},
		{"basket.create", "", docex.ErrInvalid, func(s *engine.Session) error { _, err := s.CreateBasket(ctx, ""); return err }},
		{"basket.create", idLike, docex.ErrInvalid, func(s *engine.Session) error {
			_, err := s.CreateBasketWithPipeline(ctx, idLike, "p")
			return err
		}},
		{"basket.delete", bad, docex.ErrInvalidID, func(s *engine.Session) error { return s.DeleteBasket(ctx, bad, false) }},
		{"document.delete", bad, docex.ErrInvalidID, func(s *engine.Session) error { return s.DeleteDocument(ctx, bad) }},
		{"document.delete", doc, docex.ErrInvalidID, func(s *engine.Session) error { return s.DeleteDocumentIn(ctx, bad, doc) }},
		{"document.delete", bad, docex.ErrInvalidID, func(s *engine.Session) error { _, err := s.DeleteDocumentCascade(ctx, bad); return err }},
		{"metadata.set", bad, docex.ErrInvalidID, func(s *engine.Session) error {
			_, err := s.SetMetadata(ctx, bad, map[string]docex.Value{"k": docex.String("v")})
			return err
		}},
		{"metadata.set", doc, docex.ErrInvalid, func(s *engine.Session) error { _, err := s.SetMetadata(ctx, doc, nil); return err }},
		{"metadata.set", doc, docex.ErrInvalid, func(s *engine.Session) error { _, err := s.SetMetadata(ctx, doc, badMeta); return err }},
		{"metadata.delete", bad + "/k", docex.ErrInvalidID, func(s *engine.Session) error { return s.DeleteMetadata(ctx, bad, "k") }},
		{"metadata.delete", doc + "/", docex.ErrInvalid, func(s *engine.Session) error { return s.DeleteMetadata(ctx, doc, "") }},
		{"job.cancel", bad, docex.ErrInvalidID, func(s *engine.Session) error { return s.CancelJob(ctx, bad) }},
		{"job.retry", bad, docex.ErrInvalidID, func(s *engine.Session) error { return s.RetryJob(ctx, bad) }},
		{"pipeline.run", "p", docex.ErrInvalidID, func(s *engine.Session) error {
			_, err := s.RunPipeline(ctx, "p", engine.RunTarget{DocumentIDs: []string{bad}})
			return err
		}},
		{"pipeline.run", "p", docex.ErrInvalid, func(s *engine.Session) error { _, err := s.RunPipeline(ctx, "p", engine.RunTarget{}); return err }},
		{"plugin.run", "upper", docex.ErrInvalidID, func(s *engine.Session) error { _, err := s.RunPlugin(ctx, "upper", bad, nil); return err }},
		{"job.prune", "", docex.ErrInvalid, func(s *engine.Session) error {
			_, err := s.PruneJobs(ctx, engine.PruneJobsOptions{Before: time.Now(), States: []string{driver.JobRunning}})
			return err
		}},
		{"job.prune", "", docex.ErrInvalid, func(s *engine.Session) error { _, err := s.PruneJobs(ctx, engine.PruneJobsOptions{}); return err }},
	}
	for _, c := range cases {
		err := c.call(admin)
		if !errors.Is(err, c.want) {
			t.Errorf("%s %q: got %v, want %v", c.op, c.target, err, c.want)
			continue
		}
		log, lerr := admin.Audit(ctx, docex.Page{Limit: 1})
		if lerr != nil {
			t.Fatal(lerr)
		}
		if len(log) != 1 {
			t.Fatalf("%s: audit log has %d entries", c.op, len(log))
		}
		e := log[0]
		if e.Operation != c.op || e.Target != c.target || e.Outcome != "error" || e.Error != err.Error() || e.UserID != "ann" {
			t.Errorf("%s %q: newest audit entry %+v, want outcome error with the error's text", c.op, c.target, e)
		}
		// A reader is denied, whatever the input, and the denial is audited.
		if err := c.call(reader); !errors.Is(err, docex.ErrForbidden) && !errors.Is(err, docex.ErrDenied) {
			t.Errorf("reader, %s %q: got %v, want a denial", c.op, c.target, err)
		} else if log, _ := admin.Audit(ctx, docex.Page{Limit: 1}); len(log) != 1 || log[0].Outcome != "denied" || log[0].UserID != "rita" {
			t.Errorf("reader, %s %q: newest audit entry %+v, want the denial", c.op, c.target, log)
		}
	}
	// Nothing changed: one basket, its one document, no metadata, no job.
	bs, err := admin.Baskets(ctx, docex.Page{})
	if err != nil || len(bs) != 1 {
		t.Fatalf("baskets after the refusals: %+v, %v", bs, err)
	}
	d, err := admin.Document(ctx, doc)
	if err != nil || len(d.Metadata) != 0 {
		t.Fatalf("document after the refusals: %+v, %v", d, err)
	}
	jobs, err := admin.Jobs(ctx, driver.JobFilter{}, docex.Page{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("jobs after the refusals: %+v, %v", jobs, err)
	}
}

// TestUnknownBasketWriteIsAudited: a basket bind, unbind, delete or
// pipeline run on a basket the front end could not find
// (Session.ResolveBasketFor: basket bind nobasket p, pipeline run p
// --basket nobasket) returned not_found and left no audit entry. Now it is
// audited as the write it was: outcome error, the basket as given as the
// target (pipeline.run: the pipeline, the basket in the detail), bind's
// detail naming the pipeline; a reader gets the denial instead.
func TestUnknownBasketWriteIsAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := sqlite.Open(ctx, sqlite.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), Sandbox: testSandbox(t)}
	eng := startEngine(t, be, cfg, "acme")
	admin := eng.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
	reader := eng.As(docex.UserContext{UserID: "rita", TenantID: "acme", Roles: []string{"reader"}})
	b, err := admin.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	upper := strings.ToUpper(b.ID)
	cases := []struct {
		op, ref, pipeline, target string
		detail                    map[string]any
		want                      error
	}{
		{"basket.bind", "nobasket", "p", "nobasket", map[string]any{"pipeline": "p"}, docex.ErrNotFound},
		{"basket.unbind", "nobasket", "", "nobasket", map[string]any{}, docex.ErrNotFound},
		{"basket.delete", "nobasket", "", "nobasket", map[string]any{}, docex.ErrNotFound},
		{"basket.delete", upper, "", upper, map[string]any{}, docex.ErrInvalidID},
		{"pipeline.run", "nobasket", "p", "p", map[string]any{"basket": "nobasket"}, docex.ErrNotFound},
	}
	for _, c := range cases {
		_, err := admin.ResolveBasketFor(ctx, c.op, c.ref, c.pipeline)
		if !errors.Is(err, c.want) {
			t.Errorf("%s %q: got %v, want %v", c.op, c.ref, err, c.want)
			continue
		}
		log, lerr := admin.Audit(ctx, docex.Page{Limit: 1})
		if lerr != nil {
			t.Fatal(lerr)
		}
		if len(log) != 1 {
			t.Fatalf("%s: audit log has %d entries", c.op, len(log))
		}
		e := log[0]
		if e.Operation != c.op || e.Target != c.target || e.Outcome != "error" || e.Error != err.Error() || e.UserID != "ann" || !reflect.DeepEqual(e.Detail, c.detail) {
			t.Errorf("%s %q: newest audit entry %+v, want outcome error, target %q, detail %v", c.op, c.ref, e, c.target, c.detail)
		}
		if _, err := reader.ResolveBasketFor(ctx, c.op, c.ref, c.pipeline); !errors.Is(err, docex.ErrForbidden) && !errors.Is(err, docex.ErrDenied) {
			t.Errorf("reader, %s %q: got %v, want a denial", c.op, c.ref, err)
		} else if log, _ := admin.Audit(ctx, docex.Page{Limit: 1}); len(log) != 1 || log[0].Outcome != "denied" || log[0].UserID != "rita" || log[0].Operation != c.op {
			t.Errorf("reader, %s %q: newest audit entry %+v, want the denial", c.op, c.ref, log)
		}
	}
	// A basket found is returned, and nothing is audited for it.
	before, err := admin.Audit(ctx, docex.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := admin.ResolveBasketFor(ctx, "basket.bind", "in", "p"); err != nil || got.ID != b.ID {
		t.Fatalf("ResolveBasketFor(in) = %+v, %v", got, err)
	}
	if after, err := admin.Audit(ctx, docex.Page{Limit: 1}); err != nil || after[0].ID != before[0].ID {
		t.Fatalf("a basket found was audited: %+v, %v", after, err)
	}
	if _, err := admin.ResolveBasketFor(ctx, "document.add", "in", ""); !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("ResolveBasketFor(document.add) = %v, want invalid", err)
	}
}
