package sandbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// ABI v1 names (docs/plugin-abi.md).
const (
	// hostModule is the import module of the docex host functions.
	hostModule = "docex"
	// runExport is the guest's entry point: () -> i32.
	runExport = "docex_run"
	// initExport is the optional reactor initializer: () -> ().
	initExport = "_initialize"
)

// Error codes returned by host functions to the guest (negative i32).
const (
	codeInval    = -1 // malformed argument, unknown handle, bad value
	codeDenied   = -2 // capability not granted
	codeNotFound = -3 // no such metadata key or parameter
	codeLimit    = -4 // too many handles / derived documents
	codeHost     = -5 // the host failed (I/O, lookup error)
)

// Per-invocation bounds that are not operator-configurable.
const (
	maxHandles     = 1024
	maxDerived     = 16384
	maxKeyLen      = 256
	maxValueLen    = 64 << 10 // bytes of a metadata value
	maxMetaKeys    = 256      // distinct keys set by one invocation
	maxNameLen     = 255
	maxMessageLen  = 4096
	maxQueryLen    = 1024
	maxReadPerCall = 1 << 30
)

type capSet uint8

const (
	capLog capSet = 1 << iota
	capContentRead
	capMetadataRead
	capMetadataWrite
	capDocumentsEmit
	capDocumentsLookup
)

func capsOf(m *pluginapi.Manifest) capSet {
	var s capSet
	for i, c := range pluginapi.Capabilities() {
		if m.Has(c) {
			s |= 1 << i
		}
	}
	return s
}

func (s capSet) name() pluginapi.Capability {
	for i, c := range pluginapi.Capabilities() {
		if s == 1<<i {
			return c
		}
	}
	return "?"
}

type stateKey struct{}

// abortSignal is panicked by host functions to unwind the guest after
// recording the reason in callState.err.
type abortSignal struct{}

// docSlot is one handle: 0 is the input, others come from lookups.
type docSlot struct {
	ref pluginapi.DocumentRef
	doc *pluginapi.Document
}

// callState is everything one invocation's host calls may touch.
type callState struct {
	tenant string
	plugin *Plugin
	// validating: the call is to the validate export, where only
	// param_get and log (without the log capability) are available.
	validating bool
	limits     pluginapi.Limits
	caps       capSet
	host       pluginapi.Host
	params     map[string]string
	docs       []docSlot
	// opened are the looked-up documents opened in this invocation, by
	// DocumentRef.ID: every handle to one document shares one copy (and
	// its cost). A nil entry is a document refused with ELIMIT: the
	// bytes held only grow, so it stays refused.
	opened map[string]*pluginapi.Document

	deadline time.Time // of the call: pluginapi.Host methods get it in their context
	in       *instance // that runs the call (countCall checks its deadline)

	err       error // first abort reason
	peakHost  int64 // most host bytes held for the guest at once
	hostBytes int64 // host bytes held for the guest now
	logKept   int64 // log bytes kept
	hostCalls int64
	bytesIn   int64
	bytesOut  int64
	denials   []string
	foreign   int

	status   pluginapi.Status
	message  string
	meta     map[string]any
	derived  []pluginapi.DerivedDocument
	logs     []pluginapi.LogLine
	logBytes int64
	logTrunc bool

	// The line of the WASI fd_write being written: its iovecs join into
	// one line, appended to logs when the next line starts or the call
	// ends (endWrite). wCall is that fd_write's number (hostCalls), wRoom
	// the text bytes its line may hold.
	wOpen  bool
	wCall  int64
	wLevel string
	wRoom  int64
	wBuf   []byte
}

func (st *callState) abort(err error) {
	if st.err == nil {
		st.err = err
	}
	panic(abortSignal{})
}

func (st *callState) deny(c capSet, fn string) int32 {
	d := string(c.name()) + " (" + hostModule + "." + fn + ")"
	if !slices.Contains(st.denials, d) {
		st.denials = append(st.denials, d)
	}
	return codeDenied
}

func (st *callState) need(c capSet, _ string) bool { return st.caps&c != 0 }

// mem returns the guest bytes [ptr, ptr+n) (aliasing guest memory) or
// aborts the call with pluginapi.ErrPluginTrap.
func (st *callState) mem(mod api.Module, fn string, ptr, n uint32) []byte {
	if b, ok := checkedRange(mod.Memory(), ptr, n); ok {
		return b
	}
	st.abort(fmt.Errorf("%w: %s.%s: out-of-bounds memory access (ptr=%d len=%d, memory=%d bytes)", pluginapi.ErrPluginTrap, hostModule, fn, ptr, n, memSize(mod)))
	return nil
}

func memSize(mod api.Module) uint32 {
	if m := mod.Memory(); m != nil {
		return m.Size()
	}
	return 0
}

// checkedRange is the single bounds check for every guest pointer.
func checkedRange(m api.Memory, ptr, n uint32) ([]byte, bool) {
	if m == nil || uint64(ptr)+uint64(n) > uint64(m.Size()) {
		return nil, false
	}
	return m.Read(ptr, n)
}

func (st *callState) str(mod api.Module, fn string, ptr, n uint32) string {
	return string(st.mem(mod, fn, ptr, n))
}

// copyOut writes min(len(data), cap) bytes to buf and returns len(data).
func (st *callState) copyOut(mod api.Module, fn string, buf, capacity uint32, data []byte) int32 {
	dst := st.mem(mod, fn, buf, capacity)
	if len(data) > math.MaxInt32 {
		return codeLimit
	}
	n := copy(dst, data)
	st.bytesIn += int64(n)
	return int32(len(data))
}

func (st *callState) charge(n int) {
	st.bytesOut += int64(n)
	if st.bytesOut > st.limits.MaxOutputBytes {
		st.abort(fmt.Errorf("%w: more than %d bytes", pluginapi.ErrPluginOutputTooLarge, st.limits.MaxOutputBytes))
	}
	st.hold(int64(n))
}

// derivedOverhead and metaKeyOverhead are what a derived document and a
// metadata key cost against max_output_bytes besides their bytes (docs/
// plugin-abi.md, "Conventions"): the host keeps a DerivedDocument (about
// 100 bytes) and a map entry per key (about 80), the engine converts and
// stores them, and a database row costs far more than the bytes it holds
// (measured with SQLite, 2026-12-07: about 1,700 bytes of storage per
// derived document of 4 bytes, 190 per metadata key of 2 bytes with an
// empty value). Before, only the bytes counted: 16,384 derived documents
// of 254 keys each with empty values were 12.6 MB of output under the 16
// MiB limit, and one run took 129 s, 2.94 GB of RSS and 772 MB of storage.
// Now that output would cost 565 MB: the run stops at 16 MiB, and the most
// of it a run can return (480 documents, 16.1 MB charged) took 6.2 s, 125
// MB of RSS and 24 MB of storage.
const (
	derivedOverhead = 256
	metaKeyOverhead = 128
)

// hostBudget is the most host memory held on the guest's behalf at once:
// its output budget, its log budget and as much again as its own memory
// limit for documents the host had to load.
func (st *callState) hostBudget() int64 {
	return st.limits.MaxOutputBytes + st.limits.MaxLogBytes + int64(st.limits.MemoryPages)*pageSize
}

// hold records n more host bytes held for the guest.
func (st *callState) hold(n int64) {
	st.hostBytes += n
	st.peakHost = max(st.peakHost, st.hostBytes)
}

// logLineOverhead is what one kept log line costs against max_log_bytes
// besides its text: a pluginapi.LogLine is 32 bytes and the slice holding
// the lines may have as much again spare, so an empty line is not free
// (docs/plugin-abi.md, "Conventions").
const logLineOverhead = 64

// openLine charges a new line's overhead against max_log_bytes. It returns
// the text bytes the line may hold, and false (the log is full: this and
// every later line are dropped, LogsTruncated is set) when not even an
// empty line fits.
func (st *callState) openLine() (int64, bool) {
	if st.logTrunc {
		return 0, false
	}
	room := st.limits.MaxLogBytes - st.logKept - logLineOverhead
	if room < 0 {
		st.logTrunc = true
		return 0, false
	}
	st.logKept += logLineOverhead
	st.hold(logLineOverhead)
	return room, true
}

// addLog keeps what fits of raw (which may alias guest memory) in the log
// as one line (docex.log): it is cut to the room left before anything is
// copied.
func (st *callState) addLog(level string, raw []byte) {
	st.endWrite()
	st.logBytes += int64(len(raw))
	room, ok := st.openLine()
	if !ok {
		return
	}
	if int64(len(raw)) > room {
		st.logTrunc = true
		raw = raw[:room]
	}
	st.logKept += int64(len(raw))
	st.hold(int64(len(raw)))
	st.logs = append(st.logs, pluginapi.LogLine{Level: level, Text: validText(raw, &st.logTrunc)})
}

// addWrite adds one iovec p (aliasing guest memory) of a WASI fd_write to
// stdout or stderr (level) to that call's line: every iovec of one
// fd_write goes to one line, cut to the room left before it is copied. An
// fd_write that writes no byte makes no line.
func (st *callState) addWrite(level string, p []byte) {
	st.logBytes += int64(len(p))
	if len(p) == 0 {
		return
	}
	if !st.wOpen || st.wCall != st.hostCalls || st.wLevel != level {
		st.endWrite()
		room, ok := st.openLine()
		if !ok {
			return
		}
		st.wOpen, st.wCall, st.wLevel, st.wRoom = true, st.hostCalls, level, room
	}
	n := min(int64(len(p)), st.wRoom-int64(len(st.wBuf)))
	if n < int64(len(p)) {
		st.logTrunc = true
	}
	st.logKept += n
	st.hold(n)
	st.wBuf = append(st.wBuf, p[:n]...)
}

// endWrite appends the line of the fd_write being written, if any.
func (st *callState) endWrite() {
	if !st.wOpen {
		return
	}
	st.wOpen = false
	st.logs = append(st.logs, pluginapi.LogLine{Level: st.wLevel, Text: validText(st.wBuf, &st.logTrunc)})
	st.wBuf = st.wBuf[:0]
}

// validText is raw as valid UTF-8 (U+FFFD for invalid bytes) of at most
// len(raw) bytes: replacement characters are longer than the bytes they
// replace, so the text is cut then and *trunc set.
func validText(raw []byte, trunc *bool) string {
	text := strings.ToValidUTF8(string(raw), "\uFFFD")
	if len(text) > len(raw) {
		text = strings.ToValidUTF8(text[:len(raw)], "")
		*trunc = true
	}
	return text
}

// slot returns the document for handle h, opening looked-up documents
// lazily; code is non-zero on failure.
func (st *callState) slot(ctx context.Context, h int32, c capSet, fn string) (*pluginapi.Document, int32) {
	if h < 0 || int(h) >= len(st.docs) {
		return nil, codeInval
	}
	if h == 0 {
		if c != 0 && !st.need(c, fn) {
			return nil, st.deny(c, fn)
		}
		return st.docs[0].doc, 0
	}
	if !st.need(capDocumentsLookup, fn) { // unreachable: handles need lookup
		return nil, st.deny(capDocumentsLookup, fn)
	}
	s := &st.docs[h]
	if s.doc == nil {
		d, code := st.open(ctx, s.ref)
		if code != 0 {
			return nil, code
		}
		s.doc = d
	}
	return s.doc, 0
}

// open returns the looked-up document ref, opening it at most once per
// invocation; code is codeHost when the host fails and codeLimit when its
// loaded content (Resident) and metadata would take the host bytes held
// for the guest past hostBudget.
func (st *callState) open(ctx context.Context, ref pluginapi.DocumentRef) (*pluginapi.Document, int32) {
	if d, ok := st.opened[ref.ID]; ok {
		if d == nil {
			return nil, codeLimit
		}
		return d, 0
	}
	if st.host == nil {
		return nil, codeHost
	}
	hctx, cancel := context.WithDeadline(ctx, st.deadline)
	d, err := st.host.Open(hctx, ref)
	cancel()
	if err != nil || d == nil {
		return nil, codeHost
	}
	if st.opened == nil {
		st.opened = map[string]*pluginapi.Document{}
	}
	cost := max(d.Resident, 0) + metaBytes(d.Metadata)
	if cost > 0 && st.hostBytes+cost > st.hostBudget() {
		st.opened[ref.ID] = nil
		return nil, codeLimit
	}
	st.hold(cost)
	st.opened[ref.ID] = d
	return d, 0
}

// metaBytes is what a document's metadata holds in host memory, as
// counted against hostBudget: the bytes of its keys and values (a number
// 8, a bool 1).
func metaBytes(m map[string]any) int64 {
	var n int64
	for k, v := range m {
		n += int64(len(k))
		switch v := v.(type) {
		case string:
			n += int64(len(v))
		case bool:
			n++
		default:
			n += 8
		}
	}
	return n
}

type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(ctx context.Context, st *callState, mod api.Module, s []uint64)
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func ret(s []uint64, v int32) { s[0] = api.EncodeI32(v) }

func arg(s []uint64, i int) uint32 { return api.DecodeU32(s[i]) }

// hostFuncs is the docex import module, ABI v1. Keep docs/plugin-abi.md in sync.
func hostFuncs() []hostFunc {
	return []hostFunc{
		{"log", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hLog},
		{"doc_size", []api.ValueType{i32}, []api.ValueType{i64}, hDocSize},
		{"doc_name", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hDocName},
		{"doc_content_type", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hDocContentType},
		{"content_read", []api.ValueType{i32, i64, i32, i32}, []api.ValueType{i32}, hContentRead},
		{"metadata_get", []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, hMetadataGet},
		{"metadata_keys", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hMetadataKeys},
		{"metadata_set", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hMetadataSet},
		{"emit", []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hEmit},
		{"derived_metadata_set", []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hDerivedMetadataSet},
		{"param_get", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hParamGet},
		{"set_status", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, hSetStatus},
		{"lookup_name", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hLookupName},
		{"lookup_metadata", []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, hLookupMetadata},
	}
}

var errValidating = errors.New("only param_get and log are available while a plugin checks its parameters")

var errNoInvocation = errors.New("docex host functions are unavailable outside docex_run (e.g. during _initialize)")

func wrapHost(h hostFunc) api.GoModuleFunc {
	name := h.name
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		st, _ := ctx.Value(stateKey{}).(*callState)
		if st == nil {
			// No sentinel: the start function's or _initialize's trap
			// wraps ErrPluginTrap once (Plugin.initCall).
			panic(fmt.Errorf("%s.%s: %w", hostModule, name, errNoInvocation))
		}
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abortSignal); !ok {
					if st.err == nil {
						st.err = fmt.Errorf("%w: %s.%s panicked: %v", pluginapi.ErrHostFailure, hostModule, name, r)
					}
				}
				panic(abortSignal{})
			}
		}()
		st.countCall()
		if st.validating && name != "param_get" && name != "log" {
			st.abort(fmt.Errorf("%w: %s.%s: %w", pluginapi.ErrPluginTrap, hostModule, name, errValidating))
		}
		h.fn(ctx, st, mod, stack)
	}
}

// countCall counts one host call (docex or WASI) against max_host_calls.
func (st *callState) countCall() {
	st.hostCalls++
	if st.hostCalls > st.limits.MaxHostCalls {
		st.abort(fmt.Errorf("%w: more than %d calls", pluginapi.ErrHostCallLimit, st.limits.MaxHostCalls))
	}
	// The guest's own code checks the stop flag only every
	// wasmcheck.Slice instruction units, which a loop of host calls takes
	// long to spend: past the deadline (or once the call is stopped) the
	// guest is unwound here, and fails as a stopped guest does
	// (ErrPluginTimeout, ctx.Err(), ErrClosed).
	if st.hostCalls%hostCallCheckEvery == 0 && st.in != nil && st.in.expired() {
		panic(abortSignal{})
	}
}

// hostCallCheckEvery is how many host calls pass between two checks of
// the call's deadline in countCall.
const hostCallCheckEvery = 16

// wasiCounter makes WASI calls count toward max_host_calls: the WASI host
// module is instantiated with it, so wazero calls its listener before every
// WASI function. It also marks the instance whose descriptor table a call
// may change (fdTableFuncs).
type wasiCounter struct{}

// fdTableFuncs are the WASI functions that can change an instance's
// descriptor table, which wazero keeps outside the guest's memory and
// globals, so the snapshot reset does not restore it: with no preopens, a
// guest can close fd 0, 1 or 2 (fd_close), and nothing else (fd_renumber
// refuses stdio, path_open and sock_accept need a preopen). An instance
// that called one is not reused (docs/sandbox.md, "Fresh state").
// TestDescriptorStateFresh tries every other WASI function that takes a
// descriptor and checks that none changes what a later call sees.
var fdTableFuncs = []string{"fd_close", "fd_renumber"}

func (wasiCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if slices.Contains(fdTableFuncs, def.Name()) {
		return wasiListener{fdTable: true}
	}
	return wasiListener{}
}

type wasiListener struct {
	fdTable bool // the function may change the descriptor table
}

// initKey carries the initState of the instance whose start function or
// _initialize is running (a run's instance is its callState's).
type initKey struct{}

// initState counts the WASI calls of one instance's initialisation (its
// start function and _initialize together) against the plugin's
// max_host_calls, as countCall counts a run's, and checks the init
// deadline between them. err is the reason the count stopped the guest.
type initState struct {
	in    *instance
	limit int64
	calls int64
	err   error
}

func (is *initState) countCall() {
	is.calls++
	if is.calls > is.limit {
		if is.err == nil {
			is.err = fmt.Errorf("%w: more than %d WASI calls in the start function and _initialize (max_host_calls)", pluginapi.ErrHostCallLimit, is.limit)
		}
		panic(abortSignal{})
	}
	if is.calls%hostCallCheckEvery == 0 && is.in.expired() {
		panic(abortSignal{})
	}
}

func (l wasiListener) Before(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	if st, _ := ctx.Value(stateKey{}).(*callState); st != nil {
		if l.fdTable && st.in != nil {
			st.in.fdsChanged = true
		}
		st.countCall()
		return
	}
	if is, _ := ctx.Value(initKey{}).(*initState); is != nil {
		if l.fdTable {
			is.in.fdsChanged = true
		}
		is.countCall()
	}
}

func (wasiListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

func (wasiListener) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(hostModule)
	for _, h := range hostFuncs() {
		b.NewFunctionBuilder().WithGoModuleFunction(wrapHost(h), h.params, h.results).Export(h.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

var logLevels = []string{"debug", "info", "warn", "error"}

// log(level, ptr, len) -> 0 | error
func hLog(_ context.Context, st *callState, mod api.Module, s []uint64) {
	if !st.validating && !st.need(capLog, "log") {
		ret(s, st.deny(capLog, "log"))
		return
	}
	level := api.DecodeI32(s[0])
	msg := st.mem(mod, "log", arg(s, 1), arg(s, 2))
	if level < 0 || int(level) >= len(logLevels) {
		ret(s, codeInval)
		return
	}
	st.addLog(logLevels[level], msg)
	ret(s, 0)
}

// doc_size(h) -> i64 size | error
func hDocSize(ctx context.Context, st *callState, _ api.Module, s []uint64) {
	d, code := st.slot(ctx, api.DecodeI32(s[0]), 0, "doc_size")
	if code != 0 {
		s[0] = uint64(int64(code))
		return
	}
	s[0] = uint64(max(d.Size, 0))
}

// doc_name(h, buf, cap) -> total length | error
func hDocName(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	d, code := st.slot(ctx, api.DecodeI32(s[0]), 0, "doc_name")
	if code != 0 {
		ret(s, code)
		return
	}
	ret(s, st.copyOut(mod, "doc_name", arg(s, 1), arg(s, 2), []byte(d.Name)))
}

// doc_content_type(h, buf, cap) -> total length | error
func hDocContentType(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	d, code := st.slot(ctx, api.DecodeI32(s[0]), 0, "doc_content_type")
	if code != 0 {
		ret(s, code)
		return
	}
	ret(s, st.copyOut(mod, "doc_content_type", arg(s, 1), arg(s, 2), []byte(d.ContentType)))
}

// content_read(h, offset i64, buf, len) -> bytes read (0 at end) | error
func hContentRead(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "content_read"
	d, code := st.slot(ctx, api.DecodeI32(s[0]), capContentRead, fn)
	if code != 0 {
		ret(s, code)
		return
	}
	off := int64(s[1])
	dst := st.mem(mod, fn, arg(s, 2), arg(s, 3))
	if off < 0 {
		ret(s, codeInval)
		return
	}
	if d.Content == nil || off >= d.Size {
		ret(s, 0)
		return
	}
	n := min(int64(len(dst)), d.Size-off, maxReadPerCall)
	// The reader writes straight into guest memory: no intermediate copy.
	got, err := d.Content.ReadAt(dst[:n], off)
	if got < 0 || int64(got) > n {
		st.abort(fmt.Errorf("%w: pluginapi.Document.Content.ReadAt returned %d for a %d-byte buffer", pluginapi.ErrHostFailure, got, n))
	}
	if err != nil && !errors.Is(err, io.EOF) && got == 0 {
		ret(s, codeHost)
		return
	}
	st.bytesIn += int64(got)
	ret(s, int32(got))
}

// encodeValue is ABI v1's tagged metadata value: 's'+text, 'n'+number, 'b'+bool.
func encodeValue(v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return append([]byte{'s'}, v...), true
	case float64:
		return strconv.AppendFloat([]byte{'n'}, v, 'g', -1, 64), true
	case int:
		return strconv.AppendFloat([]byte{'n'}, float64(v), 'g', -1, 64), true
	case int64:
		return strconv.AppendFloat([]byte{'n'}, float64(v), 'g', -1, 64), true
	case bool:
		return strconv.AppendBool([]byte{'b'}, v), true
	}
	return nil, false
}

func decodeValue(b []byte) (any, bool) {
	if len(b) == 0 {
		return nil, false
	}
	body := string(b[1:])
	switch b[0] {
	case 's': // the engine stores neither invalid UTF-8 nor NUL bytes
		return body, utf8.ValidString(body) && !strings.Contains(body, "\x00")
	case 'n':
		f, err := strconv.ParseFloat(body, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case 'b':
		v, err := strconv.ParseBool(body)
		return v, err == nil && (body == "true" || body == "false")
	}
	return nil, false
}

// validKey is the engine's rule for metadata keys and names
// (tenancy.ValidateLabel): non-blank UTF-8 of at most maxKeyLen bytes
// without control characters (C0, DEL, C1), line and paragraph separators
// or bidirectional controls (U+202A-U+202E, U+2066-U+2069).
func validKey(k string) bool {
	if len(k) > maxKeyLen || strings.TrimSpace(k) == "" || !utf8.ValidString(k) {
		return false
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
			r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' {
			return false
		}
	}
	return true
}

// metadata_get(h, key, key_len, buf, cap) -> total length | error
func hMetadataGet(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "metadata_get"
	d, code := st.slot(ctx, api.DecodeI32(s[0]), capMetadataRead, fn)
	if code != 0 {
		ret(s, code)
		return
	}
	key := st.str(mod, fn, arg(s, 1), arg(s, 2))
	st.mem(mod, fn, arg(s, 3), arg(s, 4)) // validate buf even on miss
	v, ok := encodeValue(d.Metadata[key])
	if !ok {
		ret(s, codeNotFound)
		return
	}
	ret(s, st.copyOut(mod, fn, arg(s, 3), arg(s, 4), v))
}

// metadata_keys(h, buf, cap) -> total length of NUL-separated sorted keys | error
func hMetadataKeys(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "metadata_keys"
	d, code := st.slot(ctx, api.DecodeI32(s[0]), capMetadataRead, fn)
	if code != 0 {
		ret(s, code)
		return
	}
	keys := make([]string, 0, len(d.Metadata))
	for k, v := range d.Metadata {
		if _, ok := encodeValue(v); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ret(s, st.copyOut(mod, fn, arg(s, 1), arg(s, 2), []byte(strings.Join(keys, "\x00"))))
}

// metadata_set(key, key_len, value, value_len) -> 0 | error
func hMetadataSet(_ context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "metadata_set"
	if !st.need(capMetadataWrite, fn) {
		ret(s, st.deny(capMetadataWrite, fn))
		return
	}
	key := st.str(mod, fn, arg(s, 0), arg(s, 1))
	raw := st.mem(mod, fn, arg(s, 2), arg(s, 3))
	v, ok := decodeValue(raw)
	_, exists := st.meta[key]
	if !validKey(key) || !ok || len(raw) > maxValueLen+1 || !exists && len(st.meta) >= maxMetaKeys {
		ret(s, codeInval)
		return
	}
	if exists {
		st.charge(len(key) + len(raw))
	} else {
		st.charge(metaKeyOverhead + len(key) + len(raw))
	}
	if st.meta == nil {
		st.meta = map[string]any{}
	}
	st.meta[key] = v
	ret(s, 0)
}

func validDocName(n string) bool {
	return validKey(n) && len(n) <= maxNameLen && n != "." && n != ".." && !strings.ContainsAny(n, "/\\")
}

// validContentType is the engine's rule for content types: 1-255 bytes of
// printable ASCII that parse as a media type (type/subtype) and stay
// within 255 bytes once normalised.
func validContentType(ct string) bool {
	if len(ct) == 0 || len(ct) > maxNameLen {
		return false
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return false
	}
	out := mime.FormatMediaType(mt, params)
	return out != "" && len(out) <= maxNameLen
}

// emit(name, name_len, content_type, ct_len, data, data_len) -> 0 | error
func hEmit(_ context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "emit"
	if !st.need(capDocumentsEmit, fn) {
		ret(s, st.deny(capDocumentsEmit, fn))
		return
	}
	name := st.str(mod, fn, arg(s, 0), arg(s, 1))
	ct := st.str(mod, fn, arg(s, 2), arg(s, 3))
	data := st.mem(mod, fn, arg(s, 4), arg(s, 5))
	if !validDocName(name) || !validContentType(ct) {
		ret(s, codeInval)
		return
	}
	if len(st.derived) >= maxDerived {
		ret(s, codeLimit)
		return
	}
	st.charge(derivedOverhead + len(name) + len(ct) + len(data))
	st.derived = append(st.derived, pluginapi.DerivedDocument{Name: name, ContentType: ct, Content: slices.Clone(data)})
	ret(s, 0)
}

// derived_metadata_set(name, name_len, key, key_len, value, value_len) -> 0 | error:
// metadata of the document last emitted under that name in this invocation.
func hDerivedMetadataSet(_ context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "derived_metadata_set"
	if !st.need(capDocumentsEmit, fn) {
		ret(s, st.deny(capDocumentsEmit, fn))
		return
	}
	name := st.str(mod, fn, arg(s, 0), arg(s, 1))
	key := st.str(mod, fn, arg(s, 2), arg(s, 3))
	raw := st.mem(mod, fn, arg(s, 4), arg(s, 5))
	v, ok := decodeValue(raw)
	i := len(st.derived) - 1 // the document just emitted, usually
	for i >= 0 && st.derived[i].Name != name {
		i--
	}
	if i < 0 || !validKey(key) || !ok || len(raw) > maxValueLen+1 {
		ret(s, codeInval)
		return
	}
	d := &st.derived[i]
	_, exists := d.Metadata[key]
	if !exists && len(d.Metadata) >= maxMetaKeys-2 { // the engine adds derived_from and derived_by
		ret(s, codeInval)
		return
	}
	if exists {
		st.charge(len(key) + len(raw))
	} else {
		st.charge(metaKeyOverhead + len(key) + len(raw))
	}
	if d.Metadata == nil {
		d.Metadata = map[string]any{}
	}
	d.Metadata[key] = v
	ret(s, 0)
}

// param_get(name, name_len, buf, cap) -> total length | error
func hParamGet(_ context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "param_get"
	key := st.str(mod, fn, arg(s, 0), arg(s, 1))
	st.mem(mod, fn, arg(s, 2), arg(s, 3))
	v, ok := st.params[key]
	if !ok {
		ret(s, codeNotFound)
		return
	}
	ret(s, st.copyOut(mod, fn, arg(s, 2), arg(s, 3), []byte(v)))
}

// set_status(code, msg, msg_len) -> 0 | error; code 0 ok, 1 error, 2 skipped.
func hSetStatus(_ context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "set_status"
	code := api.DecodeI32(s[0])
	msg := st.mem(mod, fn, arg(s, 1), arg(s, 2))
	statuses := []pluginapi.Status{pluginapi.StatusOK, pluginapi.StatusError, pluginapi.StatusSkipped}
	if code < 0 || int(code) >= len(statuses) {
		ret(s, codeInval)
		return
	}
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen]
	}
	st.charge(len(msg))
	st.status = statuses[code]
	st.message = strings.ToValidUTF8(string(msg), "\uFFFD")
	ret(s, 0)
}

// lookup_name(name, name_len, out, out_cap) -> handles written | error
func hLookupName(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "lookup_name"
	if !st.need(capDocumentsLookup, fn) {
		ret(s, st.deny(capDocumentsLookup, fn))
		return
	}
	name := st.str(mod, fn, arg(s, 0), arg(s, 1))
	if name == "" || len(name) > maxQueryLen {
		ret(s, codeInval)
		return
	}
	ret(s, st.lookup(ctx, mod, fn, pluginapi.LookupQuery{Name: name}, arg(s, 2), arg(s, 3)))
}

// lookup_metadata(key, key_len, value, value_len, out, out_cap) -> handles written | error
func hLookupMetadata(ctx context.Context, st *callState, mod api.Module, s []uint64) {
	const fn = "lookup_metadata"
	if !st.need(capDocumentsLookup, fn) {
		ret(s, st.deny(capDocumentsLookup, fn))
		return
	}
	key := st.str(mod, fn, arg(s, 0), arg(s, 1))
	val := st.str(mod, fn, arg(s, 2), arg(s, 3))
	if !validKey(key) || len(val) > maxQueryLen {
		ret(s, codeInval)
		return
	}
	ret(s, st.lookup(ctx, mod, fn, pluginapi.LookupQuery{MetadataKey: key, MetadataValue: val}, arg(s, 4), arg(s, 5)))
}

func (st *callState) lookup(ctx context.Context, mod api.Module, fn string, q pluginapi.LookupQuery, out, outCap uint32) int32 {
	if uint64(outCap)*4 > math.MaxUint32 {
		st.abort(fmt.Errorf("%w: %s.%s: out-of-bounds memory access (out_cap %d overflows)", pluginapi.ErrPluginTrap, hostModule, fn, outCap))
	}
	dst := st.mem(mod, fn, out, outCap*4)
	room := min(int(outCap), maxHandles-len(st.docs))
	if room <= 0 {
		if outCap == 0 {
			return codeInval
		}
		return codeLimit
	}
	if st.host == nil {
		return codeHost
	}
	q.Limit = room
	hctx, cancel := context.WithDeadline(ctx, st.deadline)
	defer cancel()
	refs, err := st.host.Lookup(hctx, q)
	if err != nil {
		return codeHost
	}
	n := 0
	for _, r := range refs {
		if n == room {
			break
		}
		if r.TenantID != st.tenant {
			st.foreign++
			continue
		}
		binary.LittleEndian.PutUint32(dst[4*n:], uint32(len(st.docs)))
		st.docs = append(st.docs, docSlot{ref: r})
		n++
	}
	return int32(n)
}
