package pdk

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// Errors returned for the host's error codes.
var (
	ErrInvalid      = errors.New("pdk: invalid argument")       // -1
	ErrDenied       = errors.New("pdk: capability not granted") // -2
	ErrNotFound     = errors.New("pdk: not found")              // -3
	ErrLimit        = errors.New("pdk: limit reached")          // -4
	ErrHost         = errors.New("pdk: host failure")           // -5
	ErrNotInSandbox = errors.New("pdk: not running inside the docex sandbox")
)

func codeErr(c int64) error {
	switch c {
	case -1:
		return ErrInvalid
	case -2:
		return ErrDenied
	case -3:
		return ErrNotFound
	case -4:
		return ErrLimit
	case -5:
		return ErrHost
	case notInSandbox:
		return ErrNotInSandbox
	}
	return fmt.Errorf("pdk: host error code %d", c)
}

// notInSandbox is what the host stand-ins return off wasip1.
const notInSandbox = -100

func ptr(b []byte) unsafe.Pointer          { return unsafe.Pointer(unsafe.SliceData(b)) }
func sptr(s string) unsafe.Pointer         { return unsafe.Pointer(unsafe.StringData(s)) }
func slen[T ~string | ~[]byte](s T) uint32 { return uint32(len(s)) }

// fetch calls a "copy into buf, return total length" host function,
// retrying once with a buffer of the right size.
func fetch(call func(buf []byte) int32) ([]byte, error) {
	buf := make([]byte, 256)
	for range 2 {
		n := call(buf)
		if n < 0 {
			return nil, codeErr(int64(n))
		}
		if int(n) <= len(buf) {
			return buf[:n], nil
		}
		buf = make([]byte, n)
	}
	return nil, ErrLimit
}

// Doc is a document handle valid during this invocation: Input() or a
// lookup result. It implements io.ReaderAt over the document's content.
type Doc struct{ h int32 }

// Input returns the document the plugin was invoked on.
func Input() Doc { return Doc{0} }

// Size returns the content size in bytes, or -1 if the host refused.
func (d Doc) Size() int64 {
	n := hostDocSize(d.h)
	if n < 0 {
		return -1
	}
	return n
}

// Name returns the document's name.
func (d Doc) Name() (string, error) {
	b, err := fetch(func(buf []byte) int32 { return hostDocName(d.h, ptr(buf), slen(buf)) })
	return string(b), err
}

// ContentType returns the document's media type.
func (d Doc) ContentType() (string, error) {
	b, err := fetch(func(buf []byte) int32 { return hostDocContentType(d.h, ptr(buf), slen(buf)) })
	return string(b), err
}

// ReadAt implements io.ReaderAt (needs capability content.read for Input()).
func (d Doc) ReadAt(p []byte, off int64) (int, error) {
	total := 0
	for total < len(p) {
		n := hostContentRead(d.h, off+int64(total), ptr(p[total:]), slen(p[total:]))
		if n < 0 {
			return total, codeErr(int64(n))
		}
		if n == 0 {
			return total, io.EOF
		}
		total += int(n)
	}
	return total, nil
}

// Reader returns a sequential reader over the content.
func (d Doc) Reader() io.Reader { return io.NewSectionReader(d, 0, max(d.Size(), 0)) }

// ReadAll reads the whole content.
func (d Doc) ReadAll() ([]byte, error) {
	size := d.Size()
	if size < 0 {
		return nil, ErrDenied
	}
	b := make([]byte, size)
	n, err := d.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// Metadata returns the value (string, float64 or bool) of key, or
// ErrNotFound (needs capability metadata.read for Input()).
func (d Doc) Metadata(key string) (any, error) {
	b, err := fetch(func(buf []byte) int32 {
		return hostMetadataGet(d.h, sptr(key), slen(key), ptr(buf), slen(buf))
	})
	if err != nil {
		return nil, err
	}
	return decodeValue(b)
}

// MetadataKeys returns the document's metadata keys, sorted.
func (d Doc) MetadataKeys() ([]string, error) {
	b, err := fetch(func(buf []byte) int32 { return hostMetadataKeys(d.h, ptr(buf), slen(buf)) })
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return strings.Split(string(b), "\x00"), nil
}

func encodeValue(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return append([]byte{'s'}, v...), nil
	case bool:
		return strconv.AppendBool([]byte{'b'}, v), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, ErrInvalid
		}
		return strconv.AppendFloat([]byte{'n'}, v, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt([]byte{'n'}, int64(v), 10), nil
	case int64:
		return strconv.AppendInt([]byte{'n'}, v, 10), nil
	}
	return nil, fmt.Errorf("%w: metadata value of type %T", ErrInvalid, v)
}

func decodeValue(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, ErrInvalid
	}
	s := string(b[1:])
	switch b[0] {
	case 's':
		return s, nil
	case 'n':
		return strconv.ParseFloat(s, 64)
	case 'b':
		return s == "true", nil
	}
	return nil, ErrInvalid
}

// SetMetadata records key = v (string, bool, float64, int, int64) on the
// input document (capability metadata.write).
func SetMetadata(key string, v any) error {
	b, err := encodeValue(v)
	if err != nil {
		return err
	}
	if c := hostMetadataSet(sptr(key), slen(key), ptr(b), slen(b)); c < 0 {
		return codeErr(int64(c))
	}
	return nil
}

// Derived is a document emitted during this invocation.
type Derived struct{ name string }

// Emit creates a derived document (capability documents.emit).
func Emit(name, contentType string, data []byte) (Derived, error) {
	c := hostEmit(sptr(name), slen(name), sptr(contentType), slen(contentType), ptr(data), slen(data))
	if c < 0 {
		return Derived{}, codeErr(int64(c))
	}
	return Derived{name}, nil
}

// SetMetadata records key = v (as the package's SetMetadata) on the derived
// document, or on the last one emitted with the same name (capability
// documents.emit). The engine adds derived_from and derived_by itself; a
// plugin's values for those keys are replaced.
func (d Derived) SetMetadata(key string, v any) error {
	b, err := encodeValue(v)
	if err != nil {
		return err
	}
	if c := hostDerivedMetadataSet(sptr(d.name), slen(d.name), sptr(key), slen(key), ptr(b), slen(b)); c < 0 {
		return codeErr(int64(c))
	}
	return nil
}

// Param returns the invocation parameter name and whether it was given.
func Param(name string) (string, bool) {
	b, err := fetch(func(buf []byte) int32 { return hostParamGet(sptr(name), slen(name), ptr(buf), slen(buf)) })
	return string(b), err == nil
}

// Level is a log level.
type Level int32

// Log levels.
const (
	Debug Level = iota
	Info
	Warn
	Error
)

// Log records a message (capability log); failures are ignored.
func Log(level Level, msg string) { hostLog(int32(level), sptr(msg), slen(msg)) }

// Logf formats and logs at Info.
func Logf(format string, args ...any) { Log(Info, fmt.Sprintf(format, args...)) }

// LookupByName returns up to max documents of the same tenant named name
// (capability documents.lookup).
func LookupByName(name string, max int) ([]Doc, error) {
	out := make([]int32, max)
	n := hostLookupName(sptr(name), slen(name), unsafe.Pointer(unsafe.SliceData(out)), uint32(max))
	return docs(out, n)
}

// LookupByMetadata returns up to max documents of the same tenant whose
// metadata key equals value (capability documents.lookup).
func LookupByMetadata(key, value string, max int) ([]Doc, error) {
	out := make([]int32, max)
	n := hostLookupMetadata(sptr(key), slen(key), sptr(value), slen(value), unsafe.Pointer(unsafe.SliceData(out)), uint32(max))
	return docs(out, n)
}

func docs(out []int32, n int32) ([]Doc, error) {
	if n < 0 {
		return nil, codeErr(int64(n))
	}
	d := make([]Doc, n)
	for i := range d {
		d[i] = Doc{out[i]}
	}
	return d, nil
}

// Status is the outcome a plugin reports.
type Status int32

// Statuses.
const (
	StatusOK Status = iota
	StatusError
	StatusSkipped
)

// SetStatus sets the run's status and message (the last call wins).
func SetStatus(s Status, msg string) error {
	if c := hostSetStatus(int32(s), sptr(msg), slen(msg)); c < 0 {
		return codeErr(int64(c))
	}
	return nil
}

// Skip is returned by a handler to report StatusSkipped.
type Skip struct{ Reason string }

func (s Skip) Error() string { return "skipped: " + s.Reason }

// Run calls fn and converts its outcome into docex_run's return value:
// nil -> 0; a Skip -> status skipped, 0; another error or a panic ->
// status error with its text, 1.
func Run(fn func() error) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			_ = SetStatus(StatusError, fmt.Sprint("panic: ", r))
			rc = 1
		}
	}()
	err := fn()
	var skip Skip
	switch {
	case err == nil:
		return 0
	case errors.As(err, &skip):
		_ = SetStatus(StatusSkipped, skip.Reason)
		return 0
	default:
		_ = SetStatus(StatusError, err.Error())
		return 1
	}
}

// Validate calls fn and converts its outcome into the return value of a
// validate export (docex_validate, or docex_validate_NAME for the entry
// docex_run_NAME; docs/plugin-abi.md): nil -> 0, the parameters are
// accepted; an error or a panic -> its text is logged and 1, they are
// refused, and the engine shows that text (docex pipeline create refuses
// the pipeline). fn may read parameters (Param) and Log, nothing else:
// any other host call traps. Start the text with the parameter's name and
// a colon ("size: must be even") to have the error point at it.
func Validate(fn func() error) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			Log(Error, fmt.Sprint("panic: ", r))
			rc = 1
		}
	}()
	if err := fn(); err != nil {
		Log(Error, err.Error())
		return 1
	}
	return 0
}
