package blobstore_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine/internal/blobstore"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

// BenchmarkFSContent: the filesystem store's hot path, without fsync (so
// that the path handling, not the disk, is measured). put stages, syncs
// and puts one 4 KiB loose file; open opens and reads back one of 1000;
// packed/open reads one of 1000 packed contents through its locator.
func BenchmarkFSContent(b *testing.B) {
	tn := docex.Tenant{ID: "acme", Incarnation: uuid.NewString()}
	put := func(b *testing.B, tc driver.TenantContent, i int) driver.Staged {
		st, err := tc.Stage(bg, bytes.NewReader(fmt.Appendf(make([]byte, 0, 4<<10), "%d%04090d", i, 0)), 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Discard()
		if err := tc.Sync(bg, []driver.Staged{st}); err != nil {
			b.Fatal(err)
		}
		if err := tc.Put(bg, nil, []driver.Staged{st}); err != nil {
			b.Fatal(err)
		}
		return st
	}
	b.Run("put", func(b *testing.B) {
		tc, _ := blobstore.NewFS(b.TempDir(), true).Tenant(tn)
		i := 0
		for b.Loop() {
			put(b, tc, i)
			i++
		}
	})
	b.Run("open", func(b *testing.B) {
		tc, _ := blobstore.NewFS(b.TempDir(), true).Tenant(tn)
		var sts []driver.Staged
		for i := range 1000 {
			sts = append(sts, put(b, tc, i))
		}
		i := 0
		for b.Loop() {
			st := sts[i%len(sts)]
			rc, err := tc.Open(bg, nil, st.Checksum(), st.Size())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
			i++
		}
	})
	b.Run("packed/open", func(b *testing.B) {
		r := newPackRig(b, blobstore.DefaultPackMax)
		var contents [][]byte
		for i := range 1000 {
			contents = append(contents, fmt.Appendf(nil, "%d%04090d", i, 0))
		}
		r.add(contents...)
		i := 0
		for b.Loop() {
			c := contents[i%len(contents)]
			if _, err := r.read(contentkey.Sum(c), int64(len(c))); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
