package blobstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/google/uuid"
)

// Pack layout (NewFSPacked). Content of at most packMax bytes is staged in
// memory; Sync writes all of a batch's small contents into one new pack
// file, <namespace>/packs/<uuid>.pack (Spill writes what is staged so far
// into one when a batch passes the engine's bound on staged memory), and
// fsyncs it and its directory once
// (instead of one file, one fsync and one link per document). Put then
// records, in the transaction that adds the references, one locator row
// per checksum in the tenant database's content table
// (Tx.PutContent(sum, "docex-pack/1 <pack> <offset> <length>")), so the
// location commits or rolls back with the documents: a crash before commit
// leaves an unreferenced pack (the sweep removes it), never a reference to
// missing bytes. Open reads the locator through the tenant's reader and
// serves the range, verified against the checksum like a file; content
// without a locator is looked up as a loose file (larger content, and
// content stored before packs). Delete removes the locator; the bytes stay
// in the pack until the sweep (docex gc) removes packs nothing refers to
// and rewrites packs mostly dead.

const (
	packDir     = "packs"
	packSuffix  = ".pack"
	locatorTag  = "docex-pack/1"
	packBufSize = 1 << 20
)

// DefaultPackMax is the largest content the engine packs (bytes).
const DefaultPackMax = 64 << 10

// NewFSPacked returns a filesystem store that packs content of at most
// packMax bytes (see the pack layout above); larger content is a file of
// its own, as with NewFS.
func NewFSPacked(root string, noSync bool, packMax int64) *FS {
	return &FS{root: root, noSync: noSync, packMax: packMax, cache: &rootCache{max: MaxOpenNamespaces(fdlimit.Limit())}}
}

// validPackName reports whether name is one of the store's pack files.
func validPackName(name string) bool {
	base, ok := strings.CutSuffix(name, packSuffix)
	if !ok {
		return false
	}
	u, err := uuid.Parse(base)
	return err == nil && u.String() == base
}

type locator struct {
	pack      string
	off, size int64
}

func (l locator) encode() []byte {
	return []byte(fmt.Sprintf("%s %s %d %d", locatorTag, l.pack, l.off, l.size))
}

func parseLocator(b []byte) (locator, bool) {
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != locatorTag || !validPackName(f[1]) {
		return locator{}, false
	}
	off, err1 := strconv.ParseInt(f[2], 10, 64)
	n, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || off < 0 || n < 0 {
		return locator{}, false
	}
	return locator{pack: f[1], off: off, size: n}, true
}

// spill keeps what is written in memory up to limit bytes, then moves it
// to a staging file.
type spill struct {
	ctx   context.Context // the Stage's: its namespace is made only while the tenant lives (fsTenant.live)
	t     *fsTenant
	limit int64
	buf   []byte
	f     *os.File
	h     *nsHandle // the namespace f is in, referenced
	rel   string    // f's name relative to h
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && int64(len(s.buf)+len(p)) <= s.limit {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	if s.f == nil {
		h, err := s.t.tmpDir(s.ctx)
		if err != nil {
			return 0, err
		}
		if s.f, s.rel, err = s.t.createTemp(h.r); err != nil {
			h.release()
			return 0, err
		}
		s.h = h
		if _, err := s.f.Write(s.buf); err != nil {
			return 0, err
		}
		s.buf = nil
	}
	return s.f.Write(p)
}

// stageSpill is Stage for a packing store.
func (t *fsTenant) stageSpill(ctx context.Context, r io.Reader, max int64) (driver.Staged, error) {
	sp := &spill{ctx: ctx, t: t, limit: t.packMax}
	h, err := contentkey.Copy(ctx, sp, r, max)
	st := &fsStaged{owner: t}
	if sp.f != nil {
		st.h, st.tmp = sp.h, sp.rel
		if cerr := sp.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("content store: close: %w", cerr)
		}
	}
	if err != nil {
		st.Discard()
		if errors.Is(err, docex.ErrTooLarge) || errors.Is(err, docex.ErrStorageUnavailable) || errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, fmt.Errorf("content store: write: %w", err)
	}
	st.Hashed = h
	if sp.f == nil {
		st.data = sp.buf
		if st.data == nil {
			st.data = []byte{}
		}
	}
	return st, nil
}

// packSync is the flush of a pack file and its directory running in the
// background; Put waits for it before it writes a locator.
type packSync struct {
	done chan struct{}
	err  error
}

// wait returns the flush's error once it finished.
func (p *packSync) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writePack writes the in-memory staged contents into one new pack file,
// releasing their memory once written, and makes it durable (the file,
// then its directory). With async, the
// flush runs in the background while the caller goes on (Sync: the
// transaction starts meanwhile); each content's durable field is then the
// flush that Put waits for before writing its locator, so no locator
// commits before its pack is on disk.
func (t *fsTenant) writePack(ctx context.Context, sts []*fsStaged, async bool) error {
	h, err := t.open(ctx, true)
	if err != nil {
		return err
	}
	if err := t.writePackIn(ctx, h, sts, async); err != nil {
		h.release()
		return err
	}
	return nil
}

// writePackIn is writePack's, in the namespace h (referenced): it
// releases h once done with it, unless it returns an error.
func (t *fsTenant) writePackIn(ctx context.Context, h *nsHandle, sts []*fsStaged, async bool) error {
	r := h.r
	created, err := t.mkdir(r, packDir) // docex.ErrCorrupt: a planted link is not followed
	if err != nil {
		return err
	}
	name := uuid.NewString() + packSuffix
	f, err := r.OpenFile(filepath.Join(packDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return t.ioErr(refused(r, fmt.Errorf("content store: create pack: %w", err), packDir))
	}
	var total int
	for _, st := range sts {
		total += len(st.data)
	}
	// A pipeline round's pack is a few KiB: no larger buffer than it.
	w := bufio.NewWriterSize(f, max(512, min(packBufSize, total)))
	var off int64
	for _, st := range sts {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(st.data); err != nil {
			f.Close()
			return fmt.Errorf("content store: write pack: %w", err)
		}
		st.loc = &locator{pack: name, off: off, size: int64(len(st.data))}
		off += int64(len(st.data))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("content store: write pack: %w", err)
	}
	// The bytes are in the pack now: the memory goes (Spill relies on it).
	for _, st := range sts {
		st.data = nil
	}
	if !async || t.noSync {
		if err := t.flushPack(r, f, created); err != nil {
			return err
		}
		h.release()
		return nil
	}
	ps := &packSync{done: make(chan struct{})}
	for _, st := range sts {
		st.durable = ps
	}
	go func() {
		defer close(ps.done)
		defer h.release()
		ps.err = t.flushPack(r, f, created)
	}()
	return nil
}

// flushPack fsyncs and closes the pack file f, then fsyncs its directory
// in the namespace r (and the directories above it up to the store's
// root when created).
func (t *fsTenant) flushPack(r *os.Root, f *os.File, created bool) error {
	var err error
	if !t.noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("content store: write pack: %w", err)
	}
	if t.noSync {
		return nil
	}
	if err := t.syncDir(r, packDir); err != nil {
		return t.ioErr(err)
	}
	if created {
		// The packs directory is new: its entry, and the namespace's own
		// if that is new too, must survive a power loss as well.
		if err := t.syncDir(r, "."); err != nil {
			return t.ioErr(err)
		}
		return t.syncAbove()
	}
	return nil
}

// Held returns the bytes s holds in memory: content staged to be packed
// and not written into a pack yet.
func (t *fsTenant) Held(s driver.Staged) int64 {
	if st, ok := s.(*fsStaged); ok && st.loc == nil {
		return int64(cap(st.data))
	}
	return 0
}

// Spill writes the content of staged held in memory into one new pack,
// as Sync does, and releases that memory: a batch larger than the
// engine's bound on staged memory is written one pack per bound's worth.
// The pack's flush runs in the background; Put waits for it. Until Put
// records their locators the pack is unreferenced: should the batch fail,
// or the process die, before its transaction commits, the sweep (docex
// gc) removes it as it does any other unreferenced pack.
func (t *fsTenant) Spill(ctx context.Context, staged []driver.Staged) (err error) {
	defer outOfFiles(&err)
	all, err := t.own(staged)
	if err != nil {
		return err
	}
	var packs []*fsStaged
	for _, st := range all {
		if st.packed() && st.loc == nil && st.data != nil {
			packs = append(packs, st)
		}
	}
	if len(packs) == 0 {
		return nil
	}
	return t.writePack(ctx, packs, true)
}

// putLocators records, in tx, where each packed content is; content not
// synced yet is packed first.
func (t *fsTenant) putLocators(ctx context.Context, tx driver.Tx, sts []*fsStaged) error {
	if len(sts) > 0 && tx == nil {
		return docex.Errorf(docex.ErrInvalid, "content store: packed content needs the referencing transaction")
	}
	var unsynced []*fsStaged
	for _, st := range sts {
		if st.loc == nil {
			if st.data == nil {
				return docex.Errorf(docex.ErrInvalid, "content store: staged content put after Discard")
			}
			unsynced = append(unsynced, st)
		}
	}
	if len(unsynced) > 0 {
		if err := t.writePack(ctx, unsynced, false); err != nil {
			return err
		}
	}
	for _, st := range sts {
		if st.durable != nil {
			if err := st.durable.wait(ctx); err != nil {
				return err
			}
		}
	}
	if bt, ok := tx.(driver.BatchTx); ok && len(sts) > 1 {
		sums := make([]string, len(sts))
		locs := make([][]byte, len(sts))
		for i, st := range sts {
			sums[i], locs[i] = st.Checksum(), st.loc.encode()
		}
		return bt.ReplaceContents(ctx, sums, locs)
	}
	for _, st := range sts {
		// Whatever a crash or a failed release left under the checksum
		// is replaced.
		if err := tx.DeleteContent(ctx, st.Checksum()); err != nil {
			return err
		}
		if err := tx.PutContent(ctx, st.Checksum(), st.loc.encode()); err != nil {
			return err
		}
	}
	return nil
}

// openPacked returns the packed content with checksum sum, or ok false
// when the tenant's database holds no locator for it.
func (t *fsTenant) openPacked(ctx context.Context, r driver.Reader, sum string, size int64) (rc io.ReadCloser, ok bool, err error) {
	if r == nil {
		return nil, false, nil
	}
	var (
		loc  locator
		f    *os.File
		info fs.FileInfo
		seen string
	)
	for attempt := 1; ; attempt++ {
		lrc, err := r.OpenContent(ctx, sum)
		if errors.Is(err, docex.ErrNotFound) {
			if seen != "" { // the reference went away while we looked
				return nil, true, docex.Errorf(docex.ErrNotFound, "content %s is missing (pack %s)", sum, seen)
			}
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		b, err := io.ReadAll(io.LimitReader(lrc, 256))
		lrc.Close()
		if err != nil {
			return nil, false, err
		}
		var ok bool
		if loc, ok = parseLocator(b); !ok {
			return nil, true, docex.Errorf(docex.ErrCorrupt, "content %s: its locator is damaged", sum)
		}
		var ns *nsHandle
		if ns, err = t.handle(false); err == nil {
			f, info, err = openNoFollow(ns.r, filepath.Join(packDir, loc.pack))
			ns.release()
		}
		if errors.Is(err, fs.ErrNotExist) && loc.pack != seen && attempt < 3 {
			// docex gc may have moved the content into a new pack and
			// removed the old one between our lookup and the open: look
			// the locator up again, and give up only when it still names
			// a pack that is gone (or after three lookups).
			seen = loc.pack
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			if err := missingRoot(t.root); err != nil {
				return nil, true, err
			}
			return nil, true, docex.Errorf(docex.ErrNotFound, "content %s is missing (pack %s)", sum, loc.pack)
		}
		if err != nil {
			return nil, true, err
		}
		break
	}
	if loc.size != size {
		f.Close()
		return nil, true, docex.Errorf(docex.ErrCorrupt, "content %s: packed range has %d bytes, its recorded size is %d", sum, loc.size, size)
	}
	if !info.Mode().IsRegular() || loc.off+loc.size > info.Size() {
		f.Close()
		return nil, true, docex.Errorf(docex.ErrCorrupt, "content %s: pack %s has %d bytes (mode %v), the range ends at %d", sum, loc.pack, info.Size(), info.Mode(), loc.off+loc.size)
	}
	return &packRange{SectionReader: io.NewSectionReader(f, loc.off, loc.size), f: f}, true, nil
}

// removeSolePack removes the pack of loc when loc's content is all it
// holds (the pack of a single add or update), so that deleting such a
// document frees its space at once; packs shared with other contents wait
// for the sweep. Delete runs after the last reference was removed and
// committed, so nothing can refer to the pack any more.
func (t *fsTenant) removeSolePack(loc locator) {
	h, err := t.handle(false)
	if err != nil {
		return
	}
	defer h.release()
	ns := h.r
	p := filepath.Join(packDir, loc.pack)
	info, err := ns.Lstat(p)
	if err != nil || !info.Mode().IsRegular() || loc.off != 0 || info.Size() != loc.size {
		return
	}
	ns.Remove(p)
}

// packRange is one content's range of a pack: read, read at, close.
type packRange struct {
	*io.SectionReader
	f *os.File
}

func (p *packRange) Close() error { return p.f.Close() }

// SweepPacks removes the tenant's pack files older than cutoff that no
// document refers to, and rewrites those whose referenced bytes are less
// than half of the file into a new pack (moving the locators in a
// transaction of its own), then removes them. Only files named
// <uuid>.pack in the namespace's packs directory are ever touched. It
// returns how many pack files it removed. With dryRun it writes and
// removes nothing and returns how many it would remove: the live ranges of
// a pack to rewrite are read and verified as a rewrite would, so that a
// damaged pack, which a rewrite keeps, is not counted.
func (t *fsTenant) SweepPacks(ctx context.Context, st driver.TenantStore, cutoff time.Time, dryRun bool) (_ int, err error) {
	defer outOfFiles(&err)
	h, err := t.handle(false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer h.release()
	ns := h.r
	ents, err := readDir(ns, packDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	type packInfo struct {
		size int64
		live map[string]locator // checksum -> its range
		used int64
	}
	packs := map[string]*packInfo{}
	for _, e := range ents {
		if !validPackName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		packs[e.Name()] = &packInfo{size: info.Size(), live: map[string]locator{}}
	}
	if len(packs) == 0 {
		return 0, nil
	}
	// What the documents refer to, pack by pack.
	afterSum, afterID := "", ""
	seen := map[string]bool{}
	for {
		refs, err := st.ContentRefsAfter(ctx, afterSum, afterID, 1000)
		if err != nil {
			return 0, err
		}
		for _, ref := range refs {
			if seen[ref.Checksum] {
				continue
			}
			seen[ref.Checksum] = true
			loc, ok, err := readLocator(ctx, st, ref.Checksum)
			if err != nil {
				return 0, err
			}
			if p := packs[loc.pack]; ok && p != nil {
				p.live[ref.Checksum] = loc
				p.used += loc.size
			}
		}
		if len(refs) < 1000 {
			break
		}
		last := refs[len(refs)-1]
		afterSum, afterID = last.Checksum, last.DocumentID
	}
	removed := 0
	for name, p := range packs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if len(p.live) > 0 && p.used*2 >= p.size {
			continue
		}
		if len(p.live) > 0 {
			var err error
			if dryRun {
				_, err = t.readLive(name, p.live)
			} else {
				err = t.rewritePack(ctx, st, name, p.live)
			}
			if errors.Is(err, docex.ErrCorrupt) {
				continue // damaged: kept for docex verify to report
			} else if err != nil {
				return removed, err
			}
		}
		if dryRun || ns.Remove(filepath.Join(packDir, name)) == nil {
			removed++
		}
	}
	return removed, nil
}

func readLocator(ctx context.Context, r driver.Reader, sum string) (locator, bool, error) {
	rc, err := r.OpenContent(ctx, sum)
	if errors.Is(err, docex.ErrNotFound) {
		return locator{}, false, nil
	}
	if err != nil {
		return locator{}, false, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 256))
	if err != nil {
		return locator{}, false, err
	}
	loc, ok := parseLocator(b)
	return loc, ok, nil
}

// rewritePack copies the live ranges of pack old into a new pack (each
// verified against its checksum on the way), then moves their locators in
// one transaction, each under its content lock and only if it still
// points into old.
func (t *fsTenant) rewritePack(ctx context.Context, st driver.TenantStore, old string, live map[string]locator) error {
	sts, err := t.readLive(old, live)
	if err != nil {
		return err // damaged: leave the pack for docex verify to report
	}
	if err := t.writePack(ctx, sts, false); err != nil {
		return err
	}
	return st.WriteIsolated(ctx, func(tx driver.Tx) error {
		for _, s := range sts {
			if err := tx.LockContent(ctx, s.Checksum()); err != nil {
				return err
			}
			cur, ok, err := readLocator(ctx, tx, s.Checksum())
			if err != nil {
				return err
			}
			if !ok || cur != live[s.Checksum()] || cur.pack != old {
				continue // moved or replaced meanwhile
			}
			if err := t.putLocators(ctx, tx, []*fsStaged{s}); err != nil {
				return err
			}
		}
		return nil
	})
}

// readLive reads the live ranges of pack old, each verified against its
// checksum, as content to stage into a new pack. It returns an error
// matching docex.ErrCorrupt for a damaged range.
func (t *fsTenant) readLive(old string, live map[string]locator) ([]*fsStaged, error) {
	ns, err := t.handle(false)
	if err != nil {
		return nil, err
	}
	f, _, err := openNoFollow(ns.r, filepath.Join(packDir, old))
	ns.release()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var sts []*fsStaged
	for sum, loc := range live {
		var buf bytes.Buffer
		v := contentkey.Verify(io.NopCloser(io.NewSectionReader(f, loc.off, loc.size)), sum, loc.size, "content "+sum)
		if _, err := io.Copy(&buf, v); err != nil {
			return nil, err
		}
		sts = append(sts, &fsStaged{owner: t, data: buf.Bytes(), Hashed: contentkey.Hashed{Checksum: sum, Size: loc.size}})
	}
	return sts, nil
}

// PackSweeper is implemented by content namespaces that keep packs the
// sweep must inspect with the tenant's references (the filesystem store
// with packing).
type PackSweeper interface {
	SweepPacks(ctx context.Context, st driver.TenantStore, cutoff time.Time, dryRun bool) (int, error)
}
