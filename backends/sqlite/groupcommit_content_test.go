package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// TestGroupCommitFailureLosesNoContent is issue 8's suspected loss, with
// the failure injected: a document deletion (removing the last reference
// to some content) and a content release (gc) queue behind a held write.
// Before the fix they shared one group-commit batch: the release saw no
// reference left and removed the file, the shared commit failed, the
// deletion's retry failed too (its caller gave up), and the surviving
// document had no content. Now a release never shares a transaction
// (WriteIsolated). Either way the deletion's commit fails here, and the
// document that survives must keep its content.
func TestGroupCommitFailureLosesNoContent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(ctx, Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var commits atomic.Int32 // the commit that reaches 0 fails
	delCtx, cancelDel := context.WithCancel(ctx)
	defer cancelDel()
	b.testHook = func(point string) error {
		if point == "group-commit" && commits.Add(-1) == 0 {
			cancelDel() // the deletion's caller gives up: its retry fails
			return errors.New("injected: shared commit failed")
		}
		return nil
	}
	// Content files of their own (not packed): the sweep releases
	// unreferenced files through List.
	cfg := engine.Config{MultiTenancy: true, ContentDir: filepath.Join(dir, "content"), ContentPackMax: -1}
	if _, err := engine.Bootstrap(ctx, b, cfg); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.Provisioner("ops").Create(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
	add := func(basket string) docex.Document {
		bk, err := s.CreateBasket(ctx, basket)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.AddDocument(ctx, bk.ID, engine.NewDocument{Name: "x.txt", Content: strings.NewReader("shared content")})
		if err != nil {
			t.Fatal(err)
		}
		return a.Document
	}
	keep, gone := add("b1"), add("b2") // one content file, two references
	if err := s.DeleteDocument(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the file is older than the sweep's cutoff (grace 0)

	// Hold the tenant's writer so that the next two writes queue into one
	// batch: the deletion first, then the sweep's release.
	st, err := b.OpenTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &st.(*store).db.group
	pending := func() int { g.mu.Lock(); defer g.mu.Unlock(); return len(g.pending) }
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- st.Write(ctx, func(driver.Tx) error { close(holding); <-release; return nil })
	}()
	<-holding
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteDocument(delCtx, keep.ID) }()
	for pending() < 1 {
		time.Sleep(time.Millisecond)
	}
	swept := make(chan error, 1)
	go func() {
		_, err := eng.Provisioner("ops").Sweep(ctx, engine.SweepOptions{})
		swept <- err
	}()
	for pending() < 2 {
		time.Sleep(time.Millisecond)
	}
	commits.Store(2) // the held write commits, the next commit (the deletion's) fails
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err == nil {
		t.Fatal("the deletion succeeded: the injected failure did not happen")
	}
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	if commits.Load() > 0 {
		t.Fatal("the failure was never injected")
	}
	got, err := s.ReadContent(ctx, keep.ID)
	if err != nil || string(got) != "shared content" {
		t.Fatalf("the surviving document lost its content: %q %v", got, err)
	}
}
