package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/s3test"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/google/uuid"
)

// noRuntime is a plugin runtime that runs nothing: a worker needs one to
// start.
type noRuntime struct{}

func (noRuntime) LoadRunner(context.Context, *pluginapi.Manifest, []byte) (pluginapi.Runner, error) {
	return nil, errors.New("no plugins here")
}

// TestChangedPrefixRefusesWrites: storage.documents.s3.prefix changed
// after docex init (the engine opened with a store at another prefix of
// the bucket, unclaimed, or claimed by another system). Adds, of new
// content and of content the tenant holds, updates and a worker's start
// are refused with the claim marker's error, and nothing is written under
// the new prefix; a read of content the prefix does not hold says so
// instead of "missing"; reads of the database go on. Back at the prefix
// the system claimed, everything works. Before, adds succeeded into the
// new prefix.
func TestChangedPrefixRefusesWrites(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	b, _ := r.s.CreateBasket(bg, "b")
	held := r.add(t, b.ID, []byte("held before the change"))
	bucket := r.store.Bucket()

	other := uuid.NewString()
	if _, err := srv.Client().PutObject(bg, &s3.PutObjectInput{Bucket: &bucket, Key: ptr("docex/other/" + contentkey.Marker),
		Body: strings.NewReader(other + "\n")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix string
		want   []error
	}{
		{"docex/moved", []error{docex.ErrNotInitialized, driver.ErrUnclaimed}},
		{"docex/other", []error{docex.ErrInvalidConfig, driver.ErrOtherSystem}},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			moved := newStore(t, srv, func(cfg *s3store.Config) { cfg.Bucket, cfg.Prefix = bucket, c.prefix })
			cfg := engine.Config{MultiTenancy: true, ContentStore: moved, Sandbox: noRuntime{}}
			eng, err := engine.New(bg, r.be, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
			refused := func(what string, err error) {
				t.Helper()
				for _, w := range c.want {
					if !errors.Is(err, w) {
						t.Errorf("%s: %v, want %v", what, err, w)
					}
				}
				if err != nil && !strings.Contains(err.Error(), "s3://"+bucket+"/"+c.prefix+"/") {
					t.Errorf("%s: %v does not name the prefix", what, err)
				}
			}
			_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "new", Content: strings.NewReader("new content")})
			refused("add of new content", err)
			_, err = s.AddDocument(bg, b.ID, engine.NewDocument{Name: "again", Content: strings.NewReader("held before the change")})
			refused("add of content the tenant holds", err)
			_, err = s.UpdateContent(bg, held.Document.ID, strings.NewReader("updated"), "")
			refused("update", err)
			_, err = s.ReadContent(bg, held.Document.ID)
			refused("read", err)
			wctx, cancel := context.WithTimeout(bg, 5*time.Second)
			refused("worker start", eng.Worker(engine.WorkerConfig{}).Run(wctx))
			cancel()
			if docs, err := s.Documents(bg, b.ID, docex.Page{}); err != nil || len(docs) != 1 {
				t.Fatalf("documents: %d, %v", len(docs), err)
			}
			for _, k := range objects(t, srv, bucket) {
				if strings.HasPrefix(k, c.prefix+"/") && k != c.prefix+"/"+contentkey.Marker {
					t.Errorf("written under the changed prefix: %s", k)
				}
			}
		})
	}
	// The claimed prefix: a new engine (a new process) writes and reads.
	eng, err := engine.New(bg, r.be, engine.Config{MultiTenancy: true, ContentStore: r.store})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := eng.As(docex.UserContext{UserID: "u", TenantID: "acme", Roles: []string{"admin"}})
	if _, err := s.AddDocument(bg, b.ID, engine.NewDocument{Name: "new", Content: strings.NewReader("new content")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadContent(bg, held.Document.ID); err != nil || string(got) != "held before the change" {
		t.Fatalf("read: %q, %v", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's and a test's use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWorkerStartsWithMarkerUnreadable: a worker whose claim marker
// cannot be read at its start (the server down) starts all the same and
// logs a warning saying the first write reads it again (docs/s3.md).
// Before, it started without a word.
func TestWorkerStartsWithMarkerUnreadable(t *testing.T) {
	srv := s3test.Start(t)
	r := newRig(t, srv, nil)
	cfg := engine.Config{MultiTenancy: true, ContentStore: r.store, Sandbox: noRuntime{}}
	eng, err := engine.New(bg, r.be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	srv.Stop()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- eng.Worker(engine.WorkerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Run(ctx)
	}()
	// The bound only ends the test instead of hanging it.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "level=WARN"); {
		select {
		case err := <-done:
			t.Fatalf("worker ended: %v; logs %s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning after a minute; logs %s", logs.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if !strings.Contains(logs.String(), "could not read the content store's claim marker at start") || !strings.Contains(logs.String(), srv.Addr()) {
		t.Fatalf("logs: %s", logs.String())
	}
}
