package contentkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/google/uuid"
)

var checksumRule = regexp.MustCompile(`^[0-9a-f]{64}$`)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestValidChecksum(t *testing.T) {
	good := sum([]byte("x"))
	cases := map[string]bool{
		good: true, strings.Repeat("0", 64): true, strings.Repeat("f", 64): true,
		"": false, good[:63]: false, good + "0": false, strings.ToUpper(good): false,
		strings.Repeat("g", 64): false, "../" + good[3:]: false, good[:62] + "/x": false,
		good[:63] + "\x00": false, strings.Repeat("é", 32): false, " " + good[1:]: false,
		strings.Repeat("0", 62) + "..": false,
	}
	for in, want := range cases {
		if got := ValidChecksum(in); got != want {
			t.Errorf("ValidChecksum(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzObject(f *testing.F) {
	f.Add(sum([]byte("x")))
	f.Add("../../etc/passwd")
	f.Add(strings.Repeat("a", 64))
	f.Add(strings.Repeat("A", 64))
	f.Add(strings.Repeat("a", 62) + "/.")
	f.Fuzz(func(t *testing.T, in string) {
		ok := ValidChecksum(in)
		if ok != checksumRule.MatchString(in) {
			t.Fatalf("ValidChecksum(%q) = %v, rule says %v", in, ok, !ok)
		}
		obj, err := Object(in)
		if !ok {
			if !errors.Is(err, docex.ErrInvalid) {
				t.Fatalf("Object(%q) = %q, %v; want ErrInvalid", in, obj, err)
			}
			return
		}
		if err != nil || obj != in[:2]+"/"+in || path.Clean(obj) != obj || strings.Contains(obj, "..") {
			t.Fatalf("Object(%q) = %q, %v", in, obj, err)
		}
	})
}

func FuzzTenant(f *testing.F) {
	inc := uuid.NewString()
	f.Add("acme", inc)
	f.Add("../acme", inc)
	f.Add("acme", "../"+inc)
	f.Add("", "")
	f.Add("acme", strings.ToUpper(inc))
	f.Fuzz(func(t *testing.T, id, inc string) {
		ns, err := Tenant(docex.Tenant{ID: id, Incarnation: inc})
		if err != nil {
			return
		}
		if id == "" && inc == "" {
			if ns != Local {
				t.Fatalf("zero tenant: %q", ns)
			}
			return
		}
		parts := strings.Split(ns, "/")
		if len(parts) != 3 || parts[0] != "tenants" || parts[1] != id || parts[2] != inc || path.Clean(ns) != ns {
			t.Fatalf("Tenant(%q, %q) = %q", id, inc, ns)
		}
		if _, err := uuid.Parse(inc); err != nil || strings.ContainsAny(id, "./\\\x00") {
			t.Fatalf("Tenant(%q, %q) accepted", id, inc)
		}
	})
}

func TestCopy(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100)
	var buf bytes.Buffer
	h, err := Copy(context.Background(), &buf, bytes.NewReader(data), 1000)
	if err != nil || h.Checksum != sum(data) || h.Size != 1000 || !bytes.Equal(h.Head, data[:HeadSize]) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("Copy = %+v, %v", h, err)
	}
	if _, err := Copy(context.Background(), io.Discard, bytes.NewReader(data), 999); !errors.Is(err, docex.ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestVerify(t *testing.T) {
	data := []byte("the content")
	good := sum(data)
	cases := []struct {
		name   string
		stored []byte
		size   int64
		ok     bool
	}{
		{"intact", data, int64(len(data)), true},
		{"flipped", []byte("the Content"), int64(len(data)), false},
		{"short", data[:5], int64(len(data)), false},
		{"long", append(bytes.Clone(data), '!'), int64(len(data)), false},
		{"recorded size wrong", data, int64(len(data)) + 1, false},
		{"empty", nil, int64(len(data)), false},
	}
	for _, c := range cases {
		v := Verify(io.NopCloser(bytes.NewReader(c.stored)), good, c.size, "test")
		_, err := io.ReadAll(v)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, docex.ErrCorrupt)) {
			t.Errorf("%s: %v", c.name, err)
		}
		// The error sticks.
		if _, err2 := v.Read(make([]byte, 1)); !c.ok && !errors.Is(err2, docex.ErrCorrupt) {
			t.Errorf("%s: second read %v", c.name, err2)
		}
	}
}

// TestVerifyLongPassesOnNoMore: content longer than its recorded size
// fails corrupt, and the bytes read before the error are at most the
// recorded size: a streamed doc cat wrote one byte past it before (p19
// L5), or a whole read's worth.
func TestVerifyLongPassesOnNoMore(t *testing.T) {
	data := []byte("the content")
	for _, extra := range []string{"!", "and much more than that"} {
		for _, chunk := range []int{1, 4, 64 << 10} {
			stored := append(bytes.Clone(data), extra...)
			v := Verify(io.NopCloser(bytes.NewReader(stored)), sum(data), int64(len(data)), "test")
			var out bytes.Buffer
			_, err := io.CopyBuffer(struct{ io.Writer }{&out}, struct{ io.Reader }{v}, make([]byte, chunk))
			if !errors.Is(err, docex.ErrCorrupt) || !strings.Contains(err.Error(), "longer than its recorded size") {
				t.Errorf("%q in reads of %d: %v", extra, chunk, err)
			}
			if out.Len() > len(data) {
				t.Errorf("%q in reads of %d: %d bytes passed on, the recorded size is %d", extra, chunk, out.Len(), len(data))
			}
		}
	}
}

type readerAtCloser struct{ *bytes.Reader }

func (readerAtCloser) Close() error { return nil }

func TestVerifierReaderAt(t *testing.T) {
	data := []byte("ranged")
	v := Verify(readerAtCloser{bytes.NewReader(data)}, sum(data), 6, "test")
	ra, ok, err := v.ReaderAt()
	if err != nil || !ok {
		t.Fatalf("ReaderAt = %v, %v", ok, err)
	}
	b := make([]byte, 3)
	if _, err := ra.ReadAt(b, 3); err != nil || string(b) != "ged" {
		t.Fatalf("ReadAt = %q, %v", b, err)
	}
	bad := Verify(readerAtCloser{bytes.NewReader([]byte("RANGED"))}, sum(data), 6, "test")
	if _, _, err := bad.ReaderAt(); !errors.Is(err, docex.ErrCorrupt) {
		t.Fatalf("damaged ReaderAt: %v", err)
	}
	if _, ok, _ := Verify(io.NopCloser(bytes.NewReader(data)), sum(data), 6, "test").ReaderAt(); ok {
		t.Fatal("ReaderAt of a plain reader")
	}
}

// BenchmarkCopySmall hashes and copies a 1.5 KiB step output held in
// memory (bytes.Reader), the common case of a pipeline's derived
// documents: B/op shows the copy buffer sized to the content.
func BenchmarkCopySmall(b *testing.B) {
	data := bytes.Repeat([]byte("chunk of text "), 110)
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		buf.Grow(len(data))
		dst := struct{ io.Writer }{&buf} // a plain writer, as the content stores' spill
		if _, err := Copy(context.Background(), dst, bytes.NewReader(data), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
