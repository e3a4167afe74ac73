//go:build unix

package blobstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

// TestFSOpenRefusesFIFO: a FIFO planted at a content file's or a pack's
// name is docex.ErrCorrupt, and the open does not wait for a writer.
// Before, Open blocked forever (a read of the document hung, and so did
// docex verify).
func TestFSOpenRefusesFIFO(t *testing.T) {
	data := []byte("1234567890")
	sum := contentkey.Sum(data)
	for _, c := range []struct {
		name string
		// plant returns the FIFO's path and the open to try.
		plant func(t *testing.T) (string, func() error)
	}{
		{"loose", func(t *testing.T) (string, func() error) {
			root := contentDir(t)
			tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
			tc, err := blobstore.NewFS(root, true).Tenant(tn)
			must(t, err)
			p := fsPath(root, tn, sum)
			must(t, os.MkdirAll(filepath.Dir(p), 0o700))
			must(t, syscall.Mkfifo(p, 0o600))
			return p, func() error {
				rc, err := tc.Open(bg, nil, sum, int64(len(data)))
				if err == nil {
					rc.Close()
				}
				return err
			}
		}},
		{"pack", func(t *testing.T) (string, func() error) {
			r := newPackRig(t, 1024)
			r.add(data)
			packs := r.packs()
			if len(packs) != 1 {
				t.Fatalf("packs %v, want 1", packs)
			}
			p := filepath.Join(r.ns, "packs", packs[0])
			must(t, os.Remove(p))
			must(t, syscall.Mkfifo(p, 0o600))
			return p, func() error {
				_, err := r.read(sum, int64(len(data)))
				return err
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo, open := c.plant(t)
			done := make(chan error, 1)
			go func() { done <- open() }()
			select {
			case err := <-done:
				if !errors.Is(err, docex.ErrCorrupt) {
					t.Fatalf("err %v, want ErrCorrupt", err)
				}
			case <-time.After(30 * time.Second): // a guard, not a timing: the open waits forever
				// Let the open go on (a writer arrives) so the test ends.
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				t.Fatal("Open of a FIFO blocked")
			}
		})
	}
}
