package contentkey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"path"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/tenancy"
	"github.com/google/uuid"
)

// HeadSize is how many leading bytes of staged content are kept for
// content-type sniffing.
const HeadSize = 512

// ValidChecksum reports whether sum is a lowercase hex SHA-256.
func ValidChecksum(sum string) bool {
	if len(sum) != 64 {
		return false
	}
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Object returns the slash-separated name of the content with checksum sum
// inside a tenant namespace ("ab/abcd..."), or docex.ErrInvalid for a sum
// that is not a lowercase hex SHA-256.
func Object(sum string) (string, error) {
	if !ValidChecksum(sum) {
		return "", docex.Errorf(docex.ErrInvalid, "invalid checksum %q", sum)
	}
	return sum[:2] + "/" + sum, nil
}

// Local is the namespace of content with multi-tenancy disabled.
const Local = "local"

// Tenants is the first element of every tenant namespace (Tenant): the
// directory or key prefix content stores list to find incarnations.
const Tenants = "tenants"

// Tenant returns the slash-separated namespace of a tenant incarnation:
// "tenants/<id>/<incarnation>", or Local for the zero tenant (multi-tenancy
// disabled). It returns docex.ErrInvalidID for an invalid id and
// docex.ErrCorrupt for an incarnation that is not a UUID (the registry
// supplies it).
func Tenant(t docex.Tenant) (string, error) {
	if t.ID == "" && t.Incarnation == "" {
		return Local, nil
	}
	if err := tenancy.ValidateSyntax(t.ID); err != nil {
		return "", err
	}
	if !ValidIncarnation(t.Incarnation) {
		return "", docex.Errorf(docex.ErrCorrupt, "tenant %q has an invalid incarnation %q", t.ID, t.Incarnation)
	}
	return path.Join(Tenants, t.ID, t.Incarnation), nil
}

// ValidIncarnation reports whether s is a canonical UUID.
func ValidIncarnation(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// Sum returns the lowercase hex SHA-256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Hashed is the outcome of Copy.
type Hashed struct {
	Checksum string
	Size     int64
	Head     []byte // the first up to HeadSize bytes
}

// Copy copies r to w, at most max bytes, hashing what it copies. It returns
// docex.ErrTooLarge when r holds more than max bytes (w then holds a
// partial copy the caller discards), ctx's error when ctx ends, and read or
// write errors wrapped.
func Copy(ctx context.Context, w io.Writer, r io.Reader, max int64) (Hashed, error) {
	h := sha256.New()
	hw := &headWriter{h: h}
	src := io.TeeReader(&ctxReader{ctx: ctx, r: io.LimitReader(r, max+1)}, hw)
	// io.Copy would allocate a 32 KiB buffer for w (unless w reads for
	// itself); content of known, smaller length (the outputs of a
	// pipeline step) gets one its size.
	var buf []byte
	if l, ok := r.(interface{ Len() int }); ok && l.Len() < 32<<10 {
		if _, rf := w.(io.ReaderFrom); !rf {
			buf = make([]byte, 512+l.Len())
		}
	}
	n, err := io.CopyBuffer(w, src, buf)
	if err != nil {
		if ctx.Err() != nil {
			return Hashed{}, ctx.Err()
		}
		return Hashed{}, err
	}
	if n > max {
		return Hashed{}, docex.Errorf(docex.ErrTooLarge, "content is larger than the limit of %d bytes", max)
	}
	return Hashed{Checksum: hex.EncodeToString(h.Sum(nil)), Size: n, Head: hw.head}, nil
}

type headWriter struct {
	h    hash.Hash
	head []byte
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := HeadSize - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	return w.h.Write(p)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Verify wraps rc so that reading it to the end checks the content against
// its checksum and size: the read that would end the stream returns an
// error matching docex.ErrCorrupt instead of io.EOF when the bytes differ,
// and a read past size fails at once, passing on no byte past size. what
// names the content in the error.
// Close closes rc.
func Verify(rc io.ReadCloser, sum string, size int64, what string) *Verifier {
	return &Verifier{rc: rc, sum: sum, size: size, what: what, h: sha256.New()}
}

// Verifier is the reader Verify returns.
type Verifier struct {
	rc   io.ReadCloser
	sum  string
	size int64
	what string
	h    hash.Hash
	n    int64
	err  error
}

func (v *Verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	if v.n+int64(n) > v.size {
		// Nothing past the recorded size is passed on: a reader that
		// streams the content out (doc cat) writes at most size bytes.
		n = int(v.size - v.n)
		v.h.Write(p[:n])
		v.n = v.size
		v.err = docex.Errorf(docex.ErrCorrupt, "%s: stored content is longer than its recorded size %d", v.what, v.size)
		return n, v.err
	}
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if v.n != v.size {
			v.err = docex.Errorf(docex.ErrCorrupt, "%s: stored content has %d bytes, its recorded size is %d", v.what, v.n, v.size)
		} else if got := hex.EncodeToString(v.h.Sum(nil)); got != v.sum {
			v.err = docex.Errorf(docex.ErrCorrupt, "%s: stored content does not match its checksum (sha256 %s, want %s)", v.what, got, v.sum)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	}
	return n, err
}

// Close closes the underlying reader.
func (v *Verifier) Close() error { return v.rc.Close() }

// Reopened returns the underlying reader for ranged reads when it has
// them (a file), without reading or verifying anything: for content of
// the same checksum that ReaderAt verified already through another
// Verifier, reopened. ok is false when it has none.
func (v *Verifier) Reopened() (ra io.ReaderAt, ok bool) {
	ra, ok = v.rc.(io.ReaderAt)
	return ra, ok
}

// Ranged returns a reader at offsets of the content when the underlying
// reader can make one (a method RangeReaderAt() io.ReaderAt: an S3
// object's ranged GETs), without reading or verifying anything; ok is
// false when it cannot. What it reads is not checked against the
// checksum.
func (v *Verifier) Ranged() (ra io.ReaderAt, ok bool) {
	r, ok := v.rc.(interface{ RangeReaderAt() io.ReaderAt })
	if !ok {
		return nil, false
	}
	return r.RangeReaderAt(), true
}

// ReaderAt returns the underlying reader for ranged reads when it has
// them (a file), after reading it through to the end to verify it; ok is
// false, with nothing read, when it has none. Call it before any Read.
func (v *Verifier) ReaderAt() (ra io.ReaderAt, ok bool, err error) {
	ra, ok = v.rc.(io.ReaderAt)
	if !ok || v.n != 0 || v.err != nil {
		return nil, false, nil
	}
	if _, err := io.Copy(io.Discard, v); err != nil {
		return nil, true, err
	}
	return ra, true, nil
}

// SizeHint returns the bytes r holds when it tells them: a reader with
// Len (bytes.Reader), one with Size, or a regular file from its offset
// (the CLI's files). A hint only: the content read is what counts. The
// database and S3 stores size their staging buffers by it.
func SizeHint(r io.Reader) (int64, bool) {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len()), true
	case interface{ Size() int64 }:
		return r.Size(), true
	case *os.File:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil || off > fi.Size() {
			return 0, false
		}
		return fi.Size() - off, true
	}
	return 0, false
}
