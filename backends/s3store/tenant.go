package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/docex-dev/docex/internal/fdlimit"
)

// tenantContent is one tenant incarnation's key prefix.
type tenantContent struct {
	s  *Store
	ns string // key prefix, ending in "/"
}

func (t *tenantContent) key(sum string) (string, error) {
	obj, err := contentkey.Object(sum)
	if err != nil {
		return "", err
	}
	return t.ns + obj, nil
}

// staged is content hashed and kept locally: in memory (small content,
// within the store's memory budget) or in a spool file, with the SHA-256 of
// each upload part for spooled content.
type staged struct {
	t *tenantContent
	contentkey.Hashed
	mem   []byte
	path  string   // spool file, "" for content in memory
	parts [][]byte // raw SHA-256 of each part of spooled content
	// synced is set when Sync uploaded the content ahead of Put, before
	// the transaction.
	synced bool
	// resync is set when Put found the object Sync uploaded gone inside
	// the transaction (driver.ResyncError): Sync uploads it again and
	// confirms that upload with a HEAD.
	resync bool

	mu        sync.Mutex
	discarded bool
}

func (st *staged) Checksum() string { return st.Hashed.Checksum }
func (st *staged) Size() int64      { return st.Hashed.Size }
func (st *staged) Head() []byte     { return st.Hashed.Head }

// Discard releases the memory or removes the spool file.
func (st *staged) Discard() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded {
		return
	}
	st.discarded = true
	st.t.s.mem.Add(-int64(cap(st.mem)))
	st.mem = nil
	if st.path != "" {
		os.Remove(st.path)
	}
}

// spoolPrefix names spool files, so that Clean removes only its own.
const spoolPrefix = "docex-s3-stage-"

// Stage reads r into memory while it fits the inline size and the store's
// memory budget, and into a spool file beyond that. Content whose size r
// tells (contentkey.SizeHint: a file) reserves that size and is read into
// a buffer of it, allocated once; content that tells a size over the
// inline size goes to the spool file at once. Content of unknown size
// reserves the inline size, is read into a buffer grown as it comes, and
// keeps a buffer of its own size at the end.
func (t *tenantContent) Stage(ctx context.Context, r io.Reader, max int64) (driver.Staged, error) {
	s := t.s
	w := &spillWriter{s: s, partSize: s.cfg.PartSize}
	n, sized := contentkey.SizeHint(r)
	switch {
	case sized && (n < 0 || n > inlineMax || n > max):
		// Spooled (or refused as too large) without a buffer.
	case sized:
		if s.mem.Add(n) <= s.cfg.MemoryBudget {
			w.memCap = n
			w.mem = make([]byte, 0, n)
		} else {
			s.mem.Add(-n)
		}
	case s.mem.Add(inlineMax) <= s.cfg.MemoryBudget:
		w.memCap = inlineMax
		w.mem = make([]byte, 0, min(inlineMax, 64<<10))
	default:
		s.mem.Add(-inlineMax)
	}
	h, err := contentkey.Copy(ctx, w, r, max)
	if cerr := w.close(); err == nil && cerr != nil {
		err = cerr
	}
	// Small content keeps a buffer of its own size, not of the 64 KiB
	// it was read into: the budget counts what memory holds, and an
	// 8 KiB document held 64 KiB of it.
	if w.mem != nil && cap(w.mem)-len(w.mem) > cap(w.mem)/4 {
		w.mem = bytes.Clone(w.mem)
	}
	// The reservation becomes what the content holds.
	s.mem.Add(int64(cap(w.mem)) - w.memCap)
	st := &staged{t: t, Hashed: h, mem: w.mem, path: w.path, parts: w.parts}
	if err != nil {
		st.Discard()
		return nil, err
	}
	return st, nil
}

// spillWriter keeps up to memCap bytes in memory, then moves everything to
// a spool file, hashing each part of partSize bytes from then on.
type spillWriter struct {
	s        *Store
	memCap   int64
	mem      []byte
	f        *os.File
	path     string
	partSize int64
	ph       hash.Hash
	pn       int64 // bytes in the current part
	parts    [][]byte
}

func (w *spillWriter) Write(p []byte) (int, error) {
	if w.f == nil && int64(len(w.mem)+len(p)) <= w.memCap {
		w.mem = append(w.mem, p...)
		return len(p), nil
	}
	if w.f == nil {
		if err := os.MkdirAll(w.s.cfg.SpoolDir, 0o700); err != nil {
			return 0, w.s.spoolError(err)
		}
		f, err := os.CreateTemp(w.s.cfg.SpoolDir, spoolPrefix+"*")
		if err != nil {
			return 0, w.s.spoolError(err)
		}
		w.f, w.path = f, f.Name()
		w.ph = sha256.New()
		if _, err := w.spool(w.mem); err != nil {
			return 0, err
		}
		w.mem = nil
	}
	return w.spool(p)
}

func (w *spillWriter) spool(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, w.s.spoolError(err)
	}
	for len(p) > 0 {
		k := min(int64(len(p)), w.partSize-w.pn)
		w.ph.Write(p[:k])
		w.pn += k
		p = p[k:]
		if w.pn == w.partSize {
			w.parts = append(w.parts, w.ph.Sum(nil))
			w.ph.Reset()
			w.pn = 0
		}
	}
	return n, nil
}

func (w *spillWriter) close() error {
	if w.f == nil {
		return nil
	}
	if w.pn > 0 {
		w.parts = append(w.parts, w.ph.Sum(nil))
	}
	if err := w.f.Close(); err != nil {
		return w.s.spoolError(err)
	}
	return nil
}

// spoolError is a failure to create or write a spool file in the spool
// directory (a path that is not a directory and cannot be made one, not
// writable, its volume full): it matches docex.ErrStorageUnavailable,
// driver.ErrSpool and err, and names the directory and the docex.yaml key
// that chooses it. Nothing was stored: staging comes before any upload
// and before the transaction.
//
// A failure because the process ran out of file descriptors is not the
// directory's: it matches docex.ErrTooManyOpenFiles instead (fdlimit.Wrap).
func (s *Store) spoolError(err error) error {
	if fdlimit.IsExhaustion(err) {
		return fdlimit.Wrap(fmt.Errorf("s3 spool: create a spool file in %s: %w", s.cfg.SpoolDir, err))
	}
	return &spoolErr{dir: s.cfg.SpoolDir, err: err}
}

type spoolErr struct {
	dir string
	err error
}

func (e *spoolErr) Error() string {
	return fmt.Sprintf("s3 spool: cannot write a spool file in %s (storage.documents.s3.spool_dir): %v", e.dir, e.err)
}

func (e *spoolErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, driver.ErrSpool, e.err}
}

func (t *tenantContent) own(in []driver.Staged) ([]*staged, error) {
	out := make([]*staged, len(in))
	for i, x := range in {
		st, ok := x.(*staged)
		if !ok || st.t.s != t.s || st.t.ns != t.ns {
			return nil, docex.Errorf(docex.ErrInvalid, "s3: staged content of another store or tenant")
		}
		out[i] = st
	}
	return out, nil
}

// multipart reports whether st goes up in parts.
func (t *tenantContent) multipart(st *staged) bool { return st.Size() > t.s.cfg.PartSize }

// Sync uploads the content ahead of the transaction, so that no upload
// ever holds the transaction (and on SQLite the tenant's write lock) open:
// small content in one PUT each, at most 8 at a time, multipart content
// one upload at a time (its parts 4 at a time). An object already at the
// key is replaced, never adopted on its metadata: the engine syncs only
// content the tenant holds no reference to, so such an object is a
// crash's leftover or something planted, whose bytes nobody verified
// (docs/s3.md). What Sync uploaded and no transaction then refers to (the
// add failed or the process died) is an orphan that docex gc removes
// after its grace period.
func (t *tenantContent) Sync(ctx context.Context, in []driver.Staged) error {
	sts, err := t.own(in)
	if err != nil {
		return err
	}
	var small []*staged
	for _, st := range sts {
		if st.synced {
			continue
		}
		if !t.multipart(st) {
			small = append(small, st)
			continue
		}
		if err := t.uploadAgain(ctx, st); err != nil {
			return err
		}
		st.synced = true
	}
	if len(small) == 0 {
		return nil
	}
	return eachLimit(ctx, 8, small, func(ctx context.Context, st *staged) error {
		err := t.uploadAgain(ctx, st)
		var pc *putConflictErr
		if errors.As(err, &pc) {
			// Refused for a concurrent request on the key (a delete
			// of the same content): Put uploads it, under the content
			// lock.
			return nil
		}
		if err != nil {
			return err
		}
		st.synced = true
		return nil
	})
}

// uploadAgain is upload, confirmed by a HEAD (outside any transaction)
// when Put found the object of an earlier upload gone (st.resync).
func (t *tenantContent) uploadAgain(ctx context.Context, st *staged) error {
	if err := t.upload(ctx, st); err != nil || !st.resync {
		return err
	}
	return t.confirm(ctx, st, false)
}

// Put makes each staged content readable, at most 8 at a time. Content
// Sync uploaded is only confirmed with a HEAD (a release or docex gc may
// have deleted the object since: the engine calls Put with the content
// lock held, so what the HEAD finds stays until the transaction ends; it
// cannot be made before), bounded by Config.CommitHeadTimeout (the
// transaction holds the tenant's write lock). Content whose object is
// gone is not uploaded again here, which would hold the transaction open
// for the upload: Put returns a driver.ResyncError naming it, and the
// caller uploads it again with Sync, before it runs the transaction
// again. Content not synced (a caller that skipped Sync, or a PUT Sync
// left for Put: putConflictErr) is uploaded here, one PUT each,
// replacing whatever was stored under its key, and confirmed by a HEAD
// after its upload, bounded the same way: a server that acknowledged the
// upload but does not show the object fails Put (notKeptErr).
func (t *tenantContent) Put(ctx context.Context, _ driver.Tx, in []driver.Staged) error {
	sts, err := t.own(in)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		gone []driver.Staged
		what error
	)
	err = eachLimit(ctx, 8, sts, func(ctx context.Context, st *staged) error {
		if st.synced {
			found, err := t.present(ctx, st)
			if err != nil || found == "" {
				return err
			}
			key, _ := t.key(st.Checksum())
			mu.Lock()
			defer mu.Unlock()
			st.synced, st.resync = false, true
			gone = append(gone, st)
			if what == nil {
				what = &goneErr{where: t.s.location(key), found: found}
			}
			return nil
		}
		if err := t.upload(ctx, st); err != nil {
			return err
		}
		return t.confirm(ctx, st, true)
	})
	if err == nil && len(gone) > 0 {
		err = &driver.ResyncError{Content: t, Staged: gone, Err: what}
	}
	return err
}

// goneErr is content Sync uploaded before the transaction whose object
// Put's HEAD inside it did not find as uploaded (driver.ResyncError).
type goneErr struct {
	where, found string
}

func (e *goneErr) Error() string {
	return fmt.Sprintf("s3 head object %s: the object uploaded before the add's transaction was gone inside it (found %s: removed since its upload, by a concurrent delete of the same content or docex gc); nothing was added, try again",
		e.where, e.found)
}

// present reports what the HEAD of st's object finds: "" when it is
// stored with st's size and checksum (metadata only), else a description
// of what is there instead ("no object", "an object of N bytes ..."). Put
// asks it of content this add's Sync uploaded, to find an object a
// concurrent release deleted since, and after an upload of its own.
func (t *tenantContent) present(ctx context.Context, st *staged) (string, error) {
	key, err := t.key(st.Checksum())
	if err != nil {
		return "", err
	}
	within := t.s.cfg.CommitHeadTimeout
	hctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	size, sum, err := t.s.head(hctx, key)
	if err != nil && !errors.Is(err, docex.ErrNotFound) && ctx.Err() == nil && hctx.Err() != nil {
		// The HEAD's own bound, not the caller's cancellation.
		return "", &commitHeadErr{where: t.s.location(key), within: within, err: err}
	}
	return st.found(size, sum, err)
}

// head is present outside a transaction: the HEAD bounded by the request
// timeout only.
func (t *tenantContent) head(ctx context.Context, st *staged) (string, error) {
	key, err := t.key(st.Checksum())
	if err != nil {
		return "", err
	}
	size, sum, err := t.s.head(ctx, key)
	return st.found(size, sum, err)
}

// found describes what a HEAD of st's object answered (present).
func (st *staged) found(size int64, sum string, err error) (string, error) {
	switch {
	case errors.Is(err, docex.ErrNotFound):
		return "no object", nil
	case err != nil:
		return "", err
	case size == st.Size() && sum == st.Checksum():
		return "", nil
	}
	return fmt.Sprintf("an object of %d bytes with %s %q", size, "x-amz-meta-"+metaSHA256, sum), nil
}

// confirm checks, by a HEAD, that the upload of st the server just
// acknowledged is stored: notKeptErr when it is not. Inside a transaction
// (inTx) the HEAD is present's, bounded by Config.CommitHeadTimeout;
// outside, it is bounded by the request timeout.
func (t *tenantContent) confirm(ctx context.Context, st *staged, inTx bool) error {
	var found string
	var err error
	if inTx {
		found, err = t.present(ctx, st)
	} else {
		found, err = t.head(ctx, st)
	}
	if err != nil || found == "" {
		return err
	}
	key, _ := t.key(st.Checksum())
	return &notKeptErr{where: t.s.location(key), size: st.Size(), found: found}
}

// notKeptErr is an upload the server acknowledged whose object a HEAD
// right after it did not find as uploaded: docex.ErrStorageUnavailable.
type notKeptErr struct {
	where string
	size  int64
	found string
}

func (e *notKeptErr) Error() string {
	return fmt.Sprintf("s3 put object %s: the server acknowledged an upload it did not keep (%d bytes uploaded; a HEAD right after found %s); nothing was added, try again (check storage.documents.s3.endpoint)",
		e.where, e.size, e.found)
}

func (e *notKeptErr) Unwrap() error { return docex.ErrStorageUnavailable }

// commitHeadErr is a HEAD inside the add's transaction (present) that got
// no answer within Config.CommitHeadTimeout: docex.ErrStorageUnavailable.
type commitHeadErr struct {
	where  string
	within time.Duration
	err    error
}

func (e *commitHeadErr) Error() string {
	return fmt.Sprintf("s3 head object %s: no answer within %v, the bound of the HEAD that confirms, inside the add's transaction, that the content uploaded is still there "+
		"(the transaction holds the tenant's write lock meanwhile); nothing was added, try again (check storage.documents.s3.endpoint): %v", e.where, e.within, e.err)
}

func (e *commitHeadErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, e.err}
}

func (t *tenantContent) upload(ctx context.Context, st *staged) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.discarded {
		return docex.Errorf(docex.ErrInvalid, "s3: staged content %s was discarded", st.Checksum())
	}
	key, err := t.key(st.Checksum())
	if err != nil {
		return err
	}
	if st.path == "" {
		return t.s.putBytes(ctx, key, st.mem, st.Checksum())
	}
	f, err := os.Open(st.path)
	if err != nil {
		return t.s.spoolReadError(st, key, err)
	}
	defer f.Close()
	sf := &spoolFile{f: f, size: st.Size()}
	if !t.multipart(st) {
		err = t.s.putReader(ctx, key, io.NewSectionReader(sf, 0, st.Size()), st.Size(), st.Checksum(), st.parts[0])
	} else {
		err = t.s.putMultipart(ctx, key, sf, st.Size(), st.Checksum(), st.parts)
	}
	if rerr := sf.failed(); err != nil && rerr != nil {
		// The upload failed for the file, not for the server.
		return t.s.spoolReadError(st, key, rerr)
	}
	return err
}

// spoolFile reads a spool file for an upload and keeps its first read
// error, or a short read (the file truncated since it was staged), so
// that an upload failing for it is reported as the spool's failure.
type spoolFile struct {
	f    *os.File
	size int64
	mu   sync.Mutex
	err  error
}

func (sf *spoolFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := sf.f.ReadAt(p, off)
	if err != nil && (err != io.EOF || off+int64(n) < sf.size) {
		if err == io.EOF {
			err = fmt.Errorf("%d bytes where %d were staged (truncated)", off+int64(n), sf.size)
		}
		sf.mu.Lock()
		if sf.err == nil {
			sf.err = err
		}
		sf.mu.Unlock()
	}
	return n, err
}

func (sf *spoolFile) failed() error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	return sf.err
}

// spoolReadError is a spool file that cannot be read back for its upload
// (removed, truncated or unreadable since it was staged): it matches
// docex.ErrStorageUnavailable, driver.ErrSpool and err, and names the file,
// the content and its object. Nothing of the add was kept: uploads come
// before the transaction commits (docs/s3.md).
func (s *Store) spoolReadError(st *staged, key string, err error) error {
	if fdlimit.IsExhaustion(err) {
		return fdlimit.Wrap(fmt.Errorf("s3 spool: open the spool file %s of content %s: %w", st.path, st.Checksum(), err))
	}
	return &spoolReadErr{path: st.path, sum: st.Checksum(), where: s.location(key), err: err}
}

type spoolReadErr struct {
	path, sum, where string
	err              error
}

func (e *spoolReadErr) Error() string {
	return fmt.Sprintf("s3 spool: cannot read back the spool file %s of content %s to upload it to %s (removed, truncated or unreadable since it was staged; nothing else may change files in storage.documents.s3.spool_dir): %v",
		e.path, e.sum, e.where, e.err)
}

func (e *spoolReadErr) Unwrap() []error {
	return []error{docex.ErrStorageUnavailable, driver.ErrSpool, e.err}
}

// Open streams the object through the verifying reader.
func (t *tenantContent) Open(ctx context.Context, _ driver.Reader, sum string, size int64) (io.ReadCloser, error) {
	key, err := t.key(sum)
	if err != nil {
		return nil, err
	}
	body, err := t.s.get(ctx, key)
	if err != nil {
		if errors.Is(err, docex.ErrNotFound) {
			return nil, docex.Errorf(docex.ErrNotFound, "content %s is missing", sum)
		}
		return nil, err
	}
	return contentkey.Verify(body, sum, size, "content "+sum), nil
}

// Delete removes the object.
func (t *tenantContent) Delete(ctx context.Context, _ driver.Tx, sum string) error {
	key, err := t.key(sum)
	if err != nil {
		return err
	}
	return t.s.deleteKey(ctx, key)
}

// List reports objects named <sum[:2]>/<sum> under the tenant's prefix,
// last modified before cutoff; other keys are never reported.
func (t *tenantContent) List(ctx context.Context, cutoff time.Time, fn func(sum string) error) error {
	return t.s.listObjects(ctx, t.ns, func(key string, modified time.Time) error {
		rest := strings.TrimPrefix(key, t.ns)
		dir, sum, ok := strings.Cut(rest, "/")
		if !ok || !contentkey.ValidChecksum(sum) || dir != sum[:2] || !modified.Before(cutoff) {
			return nil
		}
		return fn(sum)
	})
}

// Clean aborts the tenant's multipart uploads started before cutoff and
// removes spool files a crashed process left before cutoff (the store's,
// shared by its tenants: each tenant's Clean names them the same). It
// returns the names of what it aborted and removed; with dryRun it
// changes nothing and returns the names of what it would abort and
// remove.
func (t *tenantContent) Clean(ctx context.Context, cutoff time.Time, dryRun bool) ([]string, error) {
	names, err := t.s.abortUploads(ctx, t.ns, cutoff, dryRun)
	if err != nil {
		return names, err
	}
	return append(names, t.s.cleanSpool(cutoff, dryRun)...), nil
}

// cleanSpool removes the store's spool files older than cutoff and
// returns their paths; with dryRun it removes nothing and returns the
// paths it would remove.
func (s *Store) cleanSpool(cutoff time.Time, dryRun bool) []string {
	ents, err := os.ReadDir(s.cfg.SpoolDir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), spoolPrefix) || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(s.cfg.SpoolDir, e.Name())
		if dryRun || os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// eachLimit runs fn for every item, at most limit at a time, and returns
// the first error; the others are cancelled then.
func eachLimit[T any](ctx context.Context, limit int, items []T, fn func(context.Context, T) error) error {
	if len(items) == 1 {
		return fn(ctx, items[0])
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, it := range items {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, it); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}
