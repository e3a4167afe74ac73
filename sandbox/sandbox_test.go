package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/docex-dev/docex/sandbox/internal/wasmcheck"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFriendlyPlugins(t *testing.T) {
	ctx := context.Background()
	store := map[string]map[string]string{
		"acme":   {"notes.txt": "alpha beta", "todo.txt": "gamma"},
		"globex": {"secret.txt": "globex secret"},
	}
	tests := []struct {
		plugin string
		input  pluginapi.Document
		params map[string]string
		check  func(t *testing.T, r *pluginapi.Result)
	}{
		{"echo", textDoc("in.txt", "hello world"), nil, func(t *testing.T, r *pluginapi.Result) {
			if len(r.Derived) != 1 || string(r.Derived[0].Content) != "hello world" ||
				r.Derived[0].Name != "echo" || r.Derived[0].ContentType != "text/plain" {
				t.Fatalf("derived = %+v", r.Derived)
			}
		}},
		{"echo", textDoc("empty.txt", ""), nil, func(t *testing.T, r *pluginapi.Result) {
			if len(r.Derived) != 1 || len(r.Derived[0].Content) != 0 {
				t.Fatalf("derived = %+v", r.Derived)
			}
		}},
		{"derive", textDoc("in.txt", "x"), map[string]string{"title": "Quarterly"}, func(t *testing.T, r *pluginapi.Result) {
			if len(r.Derived) != 1 || r.Derived[0].Name != "summary.txt" || string(r.Derived[0].Content) != "Quarterly" ||
				r.Derived[0].Metadata["kind"] != "summary" {
				t.Fatalf("derived = %+v", r.Derived)
			}
			if r.Metadata["derived"] != true || len(r.Logs) != 1 || r.Logs[0].Text != "deriving summary" {
				t.Fatalf("metadata = %v, logs = %v", r.Metadata, r.Logs)
			}
		}},
		{"wordcount", textDoc("in.txt", "the quick  brown\nfox"), nil, func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["words"] != 4.0 {
				t.Fatalf("metadata = %v", r.Metadata)
			}
		}},
		{"wordcount", textDoc("big.txt", words(100_000)), nil, func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["words"] != 100_000.0 {
				t.Fatalf("metadata = %v", r.Metadata)
			}
		}},
		{"lookup", textDoc("in.txt", "x"), map[string]string{"name": "notes.txt"}, func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["found"] != 1.0 || r.Metadata["total_bytes"] != 10.0 || r.Metadata["names"] != "notes.txt;" ||
				r.Metadata["author"] != "ann" {
				t.Fatalf("metadata = %v", r.Metadata)
			}
		}},
		{"lookup", textDoc("in.txt", "x"), map[string]string{"key": "author", "value": "ann"}, func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["found"] != 2.0 || r.Metadata["total_bytes"] != 15.0 {
				t.Fatalf("metadata = %v", r.Metadata)
			}
		}},
		{"lookup", textDoc("in.txt", "x"), map[string]string{"name": "secret.txt"}, func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["found"] != 0.0 {
				t.Fatalf("another tenant's document was found: %v", r.Metadata)
			}
		}},
		{"iovlines", textDoc("in.txt", "x"), nil, func(t *testing.T, r *pluginapi.Result) {
			want := []pluginapi.LogLine{{Level: "stdout", Text: "ab\u00e9c"}, {Level: "stderr", Text: "de"},
				{Level: "info", Text: "f"}, {Level: "stdout", Text: "g"}}
			if !slices.Equal(r.Logs, want) {
				t.Fatalf("logs = %q, want %q", r.Logs, want)
			}
			if r.Report.HostCalls != 5 || r.Report.LogBytes != 9 || r.Report.LogsTruncated {
				t.Fatalf("report = %+v", r.Report)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.plugin, i), func(t *testing.T) {
			host := &fakeHost{tenant: "acme", store: store}
			r, err := plugin(t, tt.plugin).Run(ctx, pluginapi.Call{TenantID: "acme", UserID: "u1",
				Input: tt.input, Params: tt.params, Host: host})
			if err != nil {
				t.Fatalf("run: %v (logs %v)", err, r)
			}
			if r.Status != pluginapi.StatusOK {
				t.Fatalf("status = %s %q", r.Status, r.Message)
			}
			tt.check(t, r)
			if bad := host.openedForeign(); len(bad) > 0 {
				t.Fatalf("opened foreign refs %v", bad)
			}
		})
	}
}

func TestHostilePlugins(t *testing.T) {
	store := map[string]map[string]string{
		"acme":   {"notes.txt": "alpha beta"},
		"globex": {"secret.txt": "globex secret"},
	}
	tests := []struct {
		plugin  string
		params  map[string]string
		wantErr []error
		wantMsg string
		check   func(t *testing.T, r *pluginapi.Result)
	}{
		{plugin: "loop", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		// Loop-free code: checked at every function entry (issue 7, defect 1).
		{plugin: "fanout", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		{plugin: "binrec", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		// Bulk instructions pay by their length: a loop of 32 MiB fills
		// stops within one fill of its deadline.
		{plugin: "fillbomb", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
		{plugin: "membomb", wantErr: []error{pluginapi.ErrPluginMemory}, check: func(t *testing.T, r *pluginapi.Result) {
			if r.Report.PeakMemoryBytes > 64*pageSize {
				t.Fatalf("memory grew to %d bytes past the 64-page limit", r.Report.PeakMemoryBytes)
			}
		}},
		{plugin: "trap", wantErr: []error{pluginapi.ErrPluginTrap}, wantMsg: "panic: boom at line"},
		{plugin: "procexit", wantErr: []error{pluginapi.ErrPluginTrap}, wantMsg: "proc_exit(3)"},
		{plugin: "bigoutput", wantErr: []error{pluginapi.ErrPluginOutputTooLarge}, check: func(t *testing.T, r *pluginapi.Result) {
			if r.Report.BytesOut > 5<<20 {
				t.Fatalf("BytesOut = %d", r.Report.BytesOut)
			}
		}},
		{plugin: "chatty", wantErr: []error{pluginapi.ErrHostCallLimit}, check: func(t *testing.T, r *pluginapi.Result) {
			if !r.Report.LogsTruncated || r.Report.HostCalls != 5001 {
				t.Fatalf("report = %+v", r.Report)
			}
			total := 0
			for _, l := range r.Logs {
				total += len(l.Text)
			}
			if total > 4096 {
				t.Fatalf("kept %d log bytes, limit 4096", total)
			}
		}},
		{plugin: "nocap", wantErr: []error{pluginapi.ErrCapabilityDenied}, check: func(t *testing.T, r *pluginapi.Result) {
			want := []string{"content.read (docex.content_read)", "metadata.read (docex.metadata_get)",
				"metadata.write (docex.metadata_set)", "documents.emit (docex.emit)", "documents.lookup (docex.lookup_name)"}
			if fmt.Sprint(r.Report.CapabilityDenials) != fmt.Sprint(want) {
				t.Fatalf("denials = %v", r.Report.CapabilityDenials)
			}
			for _, l := range r.Logs {
				if l.Text != "code=2" { // -2: denied
					t.Fatalf("guest saw %q, want code=2", l.Text)
				}
			}
		}},
		{plugin: "forge", check: func(t *testing.T, r *pluginapi.Result) {
			if r.Metadata["forged"] != 0.0 || r.Metadata["found"] != 0.0 {
				t.Fatalf("metadata = %v", r.Metadata)
			}
			if r.Report.ForeignRefsDropped != 1 {
				t.Fatalf("ForeignRefsDropped = %d", r.Report.ForeignRefsDropped)
			}
		}},
		{plugin: "tablebomb"}, // table.grow of 2^31 elements must be refused
		{plugin: "tables32"},
		{plugin: "logbomb", check: func(t *testing.T, r *pluginapi.Result) {
			if r.Report.LogBytes != 16<<20 || !r.Report.LogsTruncated || len(r.Logs) != 1 || len(r.Logs[0].Text) != 1024-logLineOverhead {
				t.Fatalf("report = %+v", r.Report)
			}
			if r.Report.PeakHostBytes > 1024 {
				t.Fatalf("held %d host bytes for a 1 KiB log", r.Report.PeakHostBytes)
			}
		}}, // 2^20 elements for all tables together
		{plugin: "badmeta", check: func(t *testing.T, r *pluginapi.Result) {
			if len(r.Metadata) != 256 || len(r.Derived) != 0 {
				t.Fatalf("kept %d keys and %d derived documents, want 256 and 0", len(r.Metadata), len(r.Derived))
			}
		}},
		// Log spam that cost nothing against max_log_bytes: empty lines,
		// one per docex.log call or per iovec of an fd_write (one host
		// call). Each kept line costs logLineOverhead; an fd_write makes
		// at most one line; a long fd_write stops at the deadline.
		{plugin: "emptylog", wantErr: []error{pluginapi.ErrHostCallLimit}, check: func(t *testing.T, r *pluginapi.Result) {
			checkLogBound(t, r, 4096)
			if len(r.Logs) != 4096/logLineOverhead || !r.Report.LogsTruncated || r.Report.HostCalls != 1_000_001 {
				t.Fatalf("kept %d empty lines, want %d; report = %+v", len(r.Logs), 4096/logLineOverhead, r.Report)
			}
		}},
		{plugin: "iovbomb", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}, check: func(t *testing.T, r *pluginapi.Result) {
			checkLogBound(t, r, pluginapi.DefaultLimits().MaxLogBytes)
			if len(r.Logs) != 0 || r.Report.LogBytes != 0 {
				t.Fatalf("kept %d lines for writes of no byte; report = %+v", len(r.Logs), r.Report)
			}
		}},
		{plugin: "iovone", wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}, check: func(t *testing.T, r *pluginapi.Result) {
			checkLogBound(t, r, pluginapi.DefaultLimits().MaxLogBytes)
			if len(r.Logs) != 0 || r.Report.HostCalls > 1 {
				t.Fatalf("kept %d lines; report = %+v", len(r.Logs), r.Report)
			}
		}},
		{plugin: "wasiflood", wantErr: []error{pluginapi.ErrHostCallLimit}, check: func(t *testing.T, r *pluginapi.Result) {
			if r.Report.HostCalls != 1001 {
				t.Fatalf("HostCalls = %d, want the 1,001st WASI call to abort", r.Report.HostCalls)
			}
		}},
		{plugin: "recurse", wantErr: []error{pluginapi.ErrPluginTrap}, wantMsg: "stack overflow"},
		{plugin: "wasi", check: func(t *testing.T, r *pluginapi.Result) {
			if len(r.Logs) != 1 || r.Logs[0] != (pluginapi.LogLine{Level: "stdout", Text: "hello stdout"}) {
				t.Fatalf("logs = %v", r.Logs)
			}
		}},
		{plugin: "lookup", params: map[string]string{"name": "notes.txt", "panic": "true"},
			wantErr: []error{pluginapi.ErrPluginStatusError}, wantMsg: "panic: lookup plugin asked to panic"},
		{plugin: "lookup", params: map[string]string{"name": "notes.txt", "spin": "true"},
			wantErr: []error{pluginapi.ErrPluginTimeout, context.DeadlineExceeded}},
	}
	for c := 'a'; c <= 'm'; c++ {
		tests = append(tests, struct {
			plugin  string
			params  map[string]string
			wantErr []error
			wantMsg string
			check   func(t *testing.T, r *pluginapi.Result)
		}{plugin: "oob", params: map[string]string{"fn": string(c)}, wantErr: []error{pluginapi.ErrPluginTrap}, wantMsg: "out-of-bounds memory access"})
	}
	for _, c := range "no" { // EINVAL returned, not a trap: docex_run returns -1
		tests = append(tests, struct {
			plugin  string
			params  map[string]string
			wantErr []error
			wantMsg string
			check   func(t *testing.T, r *pluginapi.Result)
		}{plugin: "oob", params: map[string]string{"fn": string(c)}, wantErr: []error{pluginapi.ErrPluginStatusError}, wantMsg: "docex_run returned -1"})
	}
	for _, tt := range tests {
		t.Run(tt.plugin+fmt.Sprint(tt.params), func(t *testing.T) {
			host := &fakeHost{tenant: "acme", store: store, leak: true}
			p := plugin(t, tt.plugin) // compile outside the timed part
			start := time.Now()
			r, err := runWithin(t, p, pluginapi.Call{TenantID: "acme",
				Input: textDoc("in.txt", "some input"), Params: tt.params, Host: host})
			elapsed := time.Since(start)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantMsg != "" && !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantMsg)
			}
			if r == nil {
				t.Fatal("nil result")
			}
			if err != nil && (r.Metadata != nil || r.Derived != nil || r.Status != pluginapi.StatusError) {
				t.Fatalf("failed run carries output: %+v", r)
			}
			if err != nil && !r.Report.InstanceRetired {
				t.Fatal("instance kept after failure")
			}
			if bad := host.openedForeign(); len(bad) > 0 {
				t.Fatalf("opened foreign refs %v", bad)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			t.Logf("%s: %v in %s", tt.plugin, err, elapsed)
		})
	}
}

// checkLogBound fails unless r's log, lines at logLineOverhead bytes
// each besides their text, fits in maxLogBytes, and the host bytes held
// for it are no more.
func checkLogBound(t *testing.T, r *pluginapi.Result, maxLogBytes int64) {
	t.Helper()
	var kept int64
	for _, l := range r.Logs {
		kept += logLineOverhead + int64(len(l.Text))
	}
	if kept > maxLogBytes || r.Report.PeakHostBytes > maxLogBytes {
		t.Fatalf("kept %d log lines, %d bytes with their overhead, held %d host bytes: over max_log_bytes %d",
			len(r.Logs), kept, r.Report.PeakHostBytes, maxLogBytes)
	}
}

func TestLoadRejects(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	tests := []struct {
		plugin  string
		wantErr error
		wantMsg string
	}{
		{"badimport", pluginapi.ErrInvalidModule, "docex.format_disk, which does not exist"},
		{"badsig", pluginapi.ErrInvalidModule, "docex.log with signature (i64) -> (i32)"},
		{"notwasm", pluginapi.ErrInvalidModule, "not a WebAssembly"},
		{"importglobal", pluginapi.ErrInvalidModule, `module imports global "env.g": only functions may be imported`},
		{"refuel", pluginapi.ErrInvalidModule, "index 1 out of range"},
		{"badvalidate", pluginapi.ErrInvalidModule, `export "docex_validate" has signature (i32) -> (i32), want () -> i32`},
		{"badvalidatename", pluginapi.ErrInvalidModule, `export "docex_validate_lines" has signature () -> (), want () -> i32`},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			m, mod := readPlugin(t, tt.plugin)
			_, err := sb.Load(ctx, m, mod)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
	// A docex_validate_NAME export's signature is checked whichever entry
	// the manifest names (badvalidatename's is docex_run_lines).
	t.Run("badvalidatename/default entry", func(t *testing.T) {
		m, mod := readPlugin(t, "badvalidatename")
		m.Entry = runExport
		const want = `export "docex_validate_lines" has signature () -> (), want () -> i32`
		if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v mentioning %q", err, pluginapi.ErrInvalidModule, want)
		}
	})
	// A manifest may name another entry; it must be exported by the module.
	t.Run("entry", func(t *testing.T) {
		m, mod := readPlugin(t, "echo")
		m.Entry = "docex_run_missing"
		if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), `"docex_run_missing"`) {
			t.Fatalf("missing entry: %v", err)
		}
		m.Entry = runExport
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatalf("explicit default entry: %v", err)
		}
		p.Close(ctx)
	})
	// The exports the ABI requires are checked on the module as built,
	// before the instrumentation adds functions that need its memory:
	// the error names what the module lacks, never the sandbox's own
	// functions. Built with wat2wasm from the text beside each.
	for _, tc := range []struct{ name, wat, hex, want string }{
		{"no memory", `(module (func (export "docex_run") (result i32) (i32.const 0)))`,
			"0061736d010000000105016000017f03020100070d0109646f6365785f72756e00000a0601040041000b",
			`plugin "abi": module does not export memory "memory" (docs/plugin-abi.md: a plugin exports its linear memory under that name)`},
		{"memory under another name", `(module (memory (export "mem") 1) (func (export "docex_run") (result i32) (i32.const 0)))`,
			"0061736d010000000105016000017f030201000503010001071302036d656d020009646f6365785f72756e00000a0601040041000b",
			`plugin "abi": module does not export memory "memory"`},
		{"imported memory", `(module (import "env" "memory" (memory 1)) (func (export "docex_run") (result i32) (i32.const 0)))`,
			"0061736d010000000105016000017f020f0103656e76066d656d6f727902000103020100070d0109646f6365785f72756e00000a0601040041000b",
			`module imports memory "env.memory": only functions may be imported`},
		{"no entry", `(module (memory (export "memory") 1) (func (export "other") (result i32) (i32.const 0)))`,
			"0061736d010000000105016000017f030201000503010001071202066d656d6f72790200056f7468657200000a0601040041000b",
			`plugin "abi": module does not export function "docex_run"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			m := &pluginapi.Manifest{Name: "abi", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "abi.wasm", SHA256: hex.EncodeToString(sum[:])}
			_, err = sb.Load(ctx, m, b)
			if !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "memory.grow") {
				t.Fatalf("%s: err = %v, want %v mentioning %q", tc.wat, err, pluginapi.ErrInvalidModule, tc.want)
			}
		})
	}
	t.Run("badhash", func(t *testing.T) {
		raw, mod, err := pluginapi.ReadPluginDir("../testplugins/badhash")
		if err != nil {
			t.Fatal(err)
		}
		m, err := pluginapi.ParseManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrHashMismatch) {
			t.Fatalf("err = %v", err)
		}
		m, mod = readPlugin(t, "echo")
		m.SHA256 = strings.Repeat("ab", 32)
		if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrHashMismatch) {
			t.Fatalf("Load err = %v", err)
		}
	})
	// Modules whose declared counts would make wazero's decoder allocate
	// gigabytes (found by FuzzLoadModule) are refused before decoding.
	for name, mod := range map[string]string{
		"2^32 globals": "\x06\x05\xff\xff\xff\xff\x0f",
		"2^32 locals":  "\x0a\x09\x01\x07\x01\xff\xff\xff\xff\x0f\x7f",
		"huge table":   "\x04\x08\x01\x70\x00\xff\xff\xff\xff\x0f",
	} {
		t.Run(name, func(t *testing.T) {
			b := []byte("\x00asm\x01\x00\x00\x00" + mod)
			sum := sha256.Sum256(b)
			m := &pluginapi.Manifest{Name: "bomb", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "b.wasm", SHA256: hex.EncodeToString(sum[:])}
			if _, err := sb.Load(ctx, m, b); !errors.Is(err, pluginapi.ErrInvalidModule) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// A module whose compilation would take wazero long (blocks nested
	// past the cap) is refused before compiling, as plugin_invalid naming
	// the limit, the value and the cap (internal/wasmcheck).
	t.Run("nested blocks", func(t *testing.T) {
		m, b := nestedModule(wasmcheck.MaxBlockDepth + 1)
		want := fmt.Sprintf("block nesting depth is %d, the limit is %d", wasmcheck.MaxBlockDepth+1, wasmcheck.MaxBlockDepth)
		if _, err := sb.Load(ctx, m, b); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v mentioning %q", err, pluginapi.ErrInvalidModule, want)
		}
	})
	// The locals cap names the plugin, its module and the function, by
	// its index with imported functions first (docex_run is function 1,
	// after docex.log). Before, it said only "section 10: function
	// declares more than 4096 locals".
	t.Run("locals", func(t *testing.T) {
		m, b := localsModule(wasmcheck.MaxLocals + 1)
		want := fmt.Sprintf(`plugin "locals", module l.wasm: function 1: locals in one function (parameters not counted) is %d, the limit is %d`, wasmcheck.MaxLocals+1, wasmcheck.MaxLocals)
		if _, err := sb.Load(ctx, m, b); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInvalidModule, want)
		}
		m, b = localsModule(wasmcheck.MaxLocals)
		if _, err := sb.Load(ctx, m, b); err != nil {
			t.Fatalf("%d locals: %v", wasmcheck.MaxLocals, err)
		}
	})
	// wazero compiles every memory.fill to a loop: a function of 20,000
	// (or 40,000) is over the compile budget, named, and refused before
	// wazero sees it. Before, 20,000 took 20 s of CPU and 690 MB to
	// install, 40,000 over 87 s.
	for _, n := range []int{20_000, 40_000} {
		t.Run(fmt.Sprint(n, " fills"), func(t *testing.T) {
			body := append([]byte{0}, bytes.Repeat([]byte{0x41, 0, 0x41, 0, 0x41, 0x80, 0x80, 0x80, 0x10, 0xfc, 11, 0}, n)...)
			body = append(body, 0x41, 0, 0x0b)
			b := []byte("\x00asm\x01\x00\x00\x00" +
				"\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x05\x04\x01\x00\x80\x04" +
				"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x00")
			code := append(binary.AppendUvarint([]byte{1}, uint64(len(body))), body...)
			b = append(binary.AppendUvarint(append(b, 0x0a), uint64(len(code))), code...)
			sum := sha256.Sum256(b)
			m := &pluginapi.Manifest{Name: "fills", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "f.wasm", SHA256: hex.EncodeToString(sum[:])}
			want := fmt.Sprintf(`plugin "fills", module f.wasm: function 0: the module's compile cost exceeds the budget (this function: %d loops, memory.fill and table.fill included, 0 locals;`, n)
			if _, err := sb.Load(ctx, m, b); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInvalidModule, want)
			}
		})
	}
	// A function wazero would need more memory to compile than
	// wasmcheck.MaxFunctionCompileMemory (26,300 loads in a chain, 263
	// MiB estimated) is refused before wazero sees it, naming the plugin,
	// the function, the value and the cap. Before, it was compiled: a
	// probe's one function of 1 million loads installed in 64 s and 4.66 GB.
	t.Run("compile memory", func(t *testing.T) {
		body := append([]byte{0, 0x41, 0}, bytes.Repeat([]byte{0x28, 2, 0}, 26_300)...)
		m, b := funcModule("loads", append(body, 0x0b))
		want := fmt.Sprintf(`plugin "loads", module loads.wasm: function 0: estimated compile memory of one function (bytes) is 269346816, the limit is %d`, wasmcheck.MaxFunctionCompileMemory)
		if _, err := sb.Load(ctx, m, b); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInvalidModule, want)
		}
	})
	t.Run("ceiling", func(t *testing.T) {
		small := newSandbox(t, Config{Ceilings: pluginapi.Limits{MemoryPages: 32}})
		m, mod := readPlugin(t, "membomb") // asks for 64 pages
		if _, err := small.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrInvalidManifest) || !strings.Contains(err.Error(), "memory_pages") {
			t.Fatalf("err = %v", err)
		}
	})
}

// Tenants are isolated: hostile runs for one tenant do not disturb friendly
// runs of another, and each tenant gets its own instances.
func TestConcurrentTenants(t *testing.T) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, name := range []string{"loop", "membomb", "trap", "bigoutput", "chatty"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				_, err := plugin(t, name).Run(ctx, pluginapi.Call{TenantID: "evil", Input: textDoc("x", "x")})
				if err == nil {
					errs <- fmt.Errorf("%s succeeded", name)
				}
			}
		}()
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				text := fmt.Sprintf("good %d %d", g, i)
				r, err := plugin(t, "echo").Run(ctx, pluginapi.Call{TenantID: fmt.Sprint("good", g), Input: textDoc("x", text)})
				if err != nil {
					errs <- err
					return
				}
				if string(r.Derived[0].Content) != text {
					errs <- fmt.Errorf("got %q want %q", r.Derived[0].Content, text)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPoolReuseAndRetire(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{PoolSize: 2})
	m, mod := readPlugin(t, "echo")
	m.Limits.MemoryPages = 40
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	run := func(tenant, text string) pluginapi.ResourceReport {
		t.Helper()
		r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant, Input: textDoc("x", text)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Report
	}
	if r := run("a", "one"); !r.ColdStart {
		t.Fatal("first run not cold")
	}
	if r := run("a", "two"); r.ColdStart {
		t.Fatal("second run of the same tenant was cold")
	}
	if r := run("b", "three"); !r.ColdStart {
		t.Fatal("another tenant reused an instance")
	}
	// 2.5 MiB of input makes echo grow to ~41 pages' worth: over 75% of 40.
	if r := run("a", strings.Repeat("x", 2<<20)); !r.InstanceRetired {
		t.Fatalf("instance at %d bytes not retired", r.PeakMemoryBytes)
	}
	if r := run("a", "four"); !r.ColdStart {
		t.Fatal("retired instance was reused")
	}
	// A trap discards the instance.
	pt := plugin(t, "trap")
	for range 2 {
		r, _ := pt.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", "x")})
		if !r.Report.ColdStart || !r.Report.InstanceRetired {
			t.Fatalf("report = %+v", r.Report)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", "x")}); !errors.Is(err, pluginapi.ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
}

func TestRunValidation(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	tests := []struct {
		name   string
		plugin *Plugin
		call   pluginapi.Call
		want   error
	}{
		{"no tenant", plugin(t, "echo"), pluginapi.Call{}, pluginapi.ErrInvalidParams},
		{"no plugin", nil, pluginapi.Call{TenantID: "a"}, pluginapi.ErrInvalidParams},
		{"unknown param", plugin(t, "echo"), pluginapi.Call{TenantID: "a", Params: map[string]string{"x": "1"}}, pluginapi.ErrInvalidParams},
		{"missing required", plugin(t, "derive"), pluginapi.Call{TenantID: "a"}, pluginapi.ErrInvalidParams},
		{"bad bool", plugin(t, "lookup"), pluginapi.Call{TenantID: "a", Params: map[string]string{"panic": "maybe"}}, pluginapi.ErrInvalidParams},
		{"content type", plugin(t, "wordcount"), pluginapi.Call{TenantID: "a", Input: pluginapi.Document{ContentType: "image/png"}}, pluginapi.ErrContentTypeNotAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.plugin.Run(ctx, tt.call); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("caller cancels", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		m, mod := readPlugin(t, "loop")
		m.Limits.TimeoutMS = 10_000
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		_, err = p.Run(cctx, pluginapi.Call{TenantID: "a"})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pluginapi.ErrPluginTimeout) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMaxIdleBytes(t *testing.T) {
	ctx := context.Background()
	// echo idles at 17 pages (1.06 MiB) + 64 KiB: room for one instance.
	sb := newSandbox(t, Config{MaxIdleBytes: 3 << 19})
	m, mod := readPlugin(t, "echo")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	cold := func(tenant string) bool {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant, Input: textDoc("x", "x")})
		if err != nil {
			t.Fatal(err)
		}
		return r.Report.ColdStart
	}
	// b's instance evicts a's (least recently used), and back.
	if !cold("a") || cold("a") || !cold("b") || !cold("a") || cold("a") {
		t.Fatal("the idle budget should keep only the last tenant's instance")
	}
	if n, bytes := sb.idle.stats(); n != 1 || bytes > 3<<19 {
		t.Fatalf("idle = %d instances, %d bytes", n, bytes)
	}
	p.Close(ctx)
	if n, _ := sb.idle.stats(); n != 0 {
		t.Fatalf("idle after close = %d", n)
	}
}

func TestIdleTTL(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{IdleTTL: time.Minute})
	now := time.Now()
	sb.idle.now = func() time.Time { return now }
	m, mod := readPlugin(t, "echo")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	run := func() bool {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", "x")})
		if err != nil {
			t.Fatal(err)
		}
		return r.Report.ColdStart
	}
	if !run() || run() {
		t.Fatal("want a cold then a warm run")
	}
	now = now.Add(2 * time.Minute)
	if !run() {
		t.Fatal("an instance idle past the TTL was reused")
	}
}

// TestStopLatency measures how long a runaway guest runs past its deadline
// (Report.Duration - timeout) and logs the worst case: a latency test that
// only reports (it asserts the timeout error, not a wall-clock bound, so it
// holds on a loaded machine).
func TestStopLatency(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	for _, tc := range []struct {
		plugin string
		params map[string]string
		runs   int
	}{
		{"loop", nil, 10},
		{"lookup", map[string]string{"name": "x", "spin": "true"}, 3},
	} {
		plugin(t, tc.plugin) // compiled once, shared by hash
		m, mod := readPlugin(t, tc.plugin)
		m.Limits.TimeoutMS = 50
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		var worst time.Duration
		for range tc.runs {
			r, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Params: tc.params, Host: &fakeHost{tenant: "t"}})
			if !errors.Is(err, pluginapi.ErrPluginTimeout) || r == nil {
				t.Fatalf("%s: err = %v", tc.plugin, err)
			}
			worst = max(worst, r.Report.Duration-50*time.Millisecond)
		}
		t.Logf("%s: worst stop latency after the deadline: %s over %d runs", tc.plugin, worst, tc.runs)
		p.Close(ctx)
	}
}

// Concurrent Loads of one module compile it once and share it.
func TestLoadConcurrentCompilesOnce(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	m, mod := readPlugin(t, "echo")
	var wg sync.WaitGroup
	plugins := make([]*Plugin, 8)
	for i := range plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				t.Error(err)
			}
			plugins[i] = p
		}()
	}
	wg.Wait()
	if len(sb.compiled) != 1 || plugins[0].c != plugins[7].c || plugins[0].c.refs != 8 {
		t.Fatalf("compiled = %d entries", len(sb.compiled))
	}
	for _, p := range plugins {
		p.Close(ctx)
	}
	if len(sb.compiled) != 0 {
		t.Fatal("compiled module not released")
	}
}

// Closing the Sandbox while guests run makes those runs fail, not crash.
func TestCloseWhileRunning(t *testing.T) {
	ctx := context.Background()
	sb, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, mod := readPlugin(t, "loop")
	m.Limits.TimeoutMS = 60_000 // only Close can end these runs in time
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := p.Run(ctx, pluginapi.Call{TenantID: fmt.Sprint("t", i)})
			done <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case err := <-done:
			if !errors.Is(err, pluginapi.ErrClosed) {
				t.Fatalf("run ended with %v, want ErrClosed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not stop a running guest")
		}
	}
	if _, err := p.Run(ctx, pluginapi.Call{TenantID: "t"}); !errors.Is(err, pluginapi.ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
	if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrClosed) {
		t.Fatalf("load after close: %v", err)
	}
}

// Runaway guests must stay stoppable while the host garbage-collects: a
// guest loop that never reached a Go preemption point would block the GC's
// stop-the-world and, with it, the timer meant to stop the guest.
func TestStopDuringGC(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	m, mod := readPlugin(t, "loop")
	m.Limits.TimeoutMS = 300
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	done := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := p.Run(ctx, pluginapi.Call{TenantID: fmt.Sprint("gc", i)})
			done <- err
		}()
	}
	stopGC := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopGC:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer close(stopGC)
	for range 4 {
		if err := <-done; !errors.Is(err, pluginapi.ErrPluginTimeout) {
			t.Fatalf("err = %v", err)
		}
	}
}

// runWithin runs inv and fails the test if Run has not returned after a
// minute: far past any plugin's deadline, so it holds on a loaded machine,
// and it turns a guest that cannot be stopped into a failure, not a hang.
func runWithin(t *testing.T, p *Plugin, inv pluginapi.Call) (*pluginapi.Result, error) {
	t.Helper()
	type ret struct {
		r   *pluginapi.Result
		err error
	}
	done := make(chan ret, 1)
	go func() {
		r, err := p.Run(context.Background(), inv)
		done <- ret{r, err}
	}()
	select {
	case x := <-done:
		return x.r, x.err
	case <-time.After(time.Minute):
		t.Fatalf("%s still running a minute after its %s deadline", p.manifest.Name, p.limits.Timeout)
		return nil, nil
	}
}

// A start function or _initialize that never returns is stopped by
// Config.InitTimeout (issue 7, defect 2), loop or no loop.
func TestInitDeadline(t *testing.T) {
	sb := newSandbox(t, Config{InitTimeout: 300 * time.Millisecond})
	for _, name := range []string{"startspin", "initspin"} {
		t.Run(name, func(t *testing.T) {
			m, mod := readPlugin(t, name)
			p, err := sb.Load(context.Background(), m, mod)
			if err != nil {
				t.Fatal(err)
			}
			_, err = runWithin(t, p, pluginapi.Call{TenantID: "a"})
			if !errors.Is(err, pluginapi.ErrPluginTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v", err)
			}
			want := "_initialize"
			if name == "startspin" {
				want = "the start function"
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to name %s", err, want)
			}
		})
	}
}

// WASI calls made by a start function or _initialize count toward the
// plugin's max_host_calls (1000 for both plugins), start function and
// _initialize together: a loop of them stops with ErrHostCallLimit, naming
// the plugin and the function, long before Config.InitTimeout. Before,
// they were not counted and ran until InitTimeout (ErrPluginTimeout, after
// 30 s here).
func TestInitHostCalls(t *testing.T) {
	sb := newSandbox(t, Config{InitTimeout: 30 * time.Second})
	for _, c := range []struct{ name, in string }{{"startwasi", "the start function"}, {"initwasi", "_initialize"}} {
		t.Run(c.name, func(t *testing.T) {
			m, mod := readPlugin(t, c.name)
			p, err := sb.Load(context.Background(), m, mod)
			if err != nil {
				t.Fatal(err)
			}
			for i, tenant := range []string{"a", "a", "b"} { // no snapshot: every call initialises anew
				_, err = runWithin(t, p, pluginapi.Call{TenantID: tenant, Input: textDoc("x", "x")})
				want := fmt.Sprintf("more than 1000 WASI calls in the start function and _initialize (max_host_calls) (plugin %q, in %s)", c.name, c.in)
				if !errors.Is(err, pluginapi.ErrHostCallLimit) || !strings.Contains(err.Error(), want) {
					t.Fatalf("call %d: err = %v, want %v containing %q", i, err, pluginapi.ErrHostCallLimit, want)
				}
			}
		})
	}
}

// A docex host function called by the start function traps (there is no
// invocation to act on), and the error says "plugin trapped" once.
func TestHostCallInStart(t *testing.T) {
	m, mod := readPlugin(t, "starthost")
	p, err := sharedSandbox(t).Load(context.Background(), m, mod)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runWithin(t, p, pluginapi.Call{TenantID: "a"})
	if !errors.Is(err, pluginapi.ErrPluginTrap) || !strings.Contains(fmt.Sprint(err), errNoInvocation.Error()) {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(err.Error(), pluginapi.ErrPluginTrap.Error()); n != 1 {
		t.Fatalf("err = %v: says %q %d times", err, pluginapi.ErrPluginTrap, n)
	}
	if !strings.Contains(err.Error(), "the start function: docex.log: ") {
		t.Fatalf("err = %v, want it to name the start function and docex.log", err)
	}
}

// The instruction budget is deterministic: the same input takes the same
// units, and a budget stops a guest whatever its timeout.
func TestInstructionBudget(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	p := plugin(t, "wordcount")
	var units []int64
	for range 3 {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", words(500))})
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, r.Report.Instructions)
	}
	if units[0] <= 0 || units[0] != units[1] || units[1] != units[2] {
		t.Fatalf("units per identical run = %v, want equal and positive", units)
	}
	for _, name := range []string{"loop", "fanout", "binrec"} {
		t.Run(name, func(t *testing.T) {
			m, mod := readPlugin(t, name)
			m.Limits.TimeoutMS = 60_000
			m.Limits.MaxInstructions = 5_000_000
			p, err := sb.Load(ctx, m, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
			if !errors.Is(err, pluginapi.ErrInstructionLimit) || errors.Is(err, pluginapi.ErrPluginTimeout) {
				t.Fatalf("err = %v", err)
			}
			if r.Report.Instructions != 5_000_000 {
				t.Fatalf("report says %d units, want the budget", r.Report.Instructions)
			}
		})
	}
}

// No invocation sees another's state: not the same tenant's previous run
// (another basket, say), not another tenant's (issue 7, defect 5).
func TestFreshStatePerInvocation(t *testing.T) {
	ctx := context.Background()
	p := plugin(t, "stash")
	for i, tenant := range []string{"a", "a", "b", "a", "b"} {
		r, err := p.Run(ctx, pluginapi.Call{TenantID: tenant, Input: textDoc("x", fmt.Sprint("secret ", i))})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Derived) != 0 {
			t.Fatalf("run %d (%s) saw %q", i, tenant, r.Derived[0].Content)
		}
		if i > 1 && r.Report.ColdStart && tenant == "a" {
			t.Fatalf("run %d: the instance was not reused (restore failed?)", i)
		}
	}
}

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"a\nb\x1b[31mred":  `a\nb\x1b[31mred`,
		"sep\u2028x\u0085": `sep\u2028x\u0085`,
		"bad\xffutf8":      "bad\uFFFDutf8",
	} {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// nestedModule returns a plugin (manifest and module) whose docex_run
// nests depth empty blocks.
func nestedModule(depth int) (*pluginapi.Manifest, []byte) {
	body := append([]byte{0}, bytes.Repeat([]byte{0x02, 0x40}, depth)...)
	body = append(append(body, bytes.Repeat([]byte{0x0b}, depth)...), 0x41, 0, 0x0b)
	b := []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x05\x03\x01\x00\x01" +
		"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x00")
	b = append(b, 0x0a)
	b = binary.AppendUvarint(b, uint64(len(body)+1+len(binary.AppendUvarint(nil, uint64(len(body))))))
	b = append(binary.AppendUvarint(append(b, 1), uint64(len(body))), body...)
	sum := sha256.Sum256(b)
	return &pluginapi.Manifest{Name: "nest", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "n.wasm", SHA256: hex.EncodeToString(sum[:])}, b
}

// funcModule is a module whose only function, docex_run (function 0, ()
// -> i32), has body (its locals and instructions, the final end included).
func funcModule(name string, body []byte) (*pluginapi.Manifest, []byte) {
	b := []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x00\x01\x7f\x03\x02\x01\x00\x05\x03\x01\x00\x01" +
		"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x00")
	code := append(binary.AppendUvarint([]byte{1}, uint64(len(body))), body...)
	b = append(binary.AppendUvarint(append(b, 0x0a), uint64(len(code))), code...)
	sum := sha256.Sum256(b)
	return &pluginapi.Manifest{Name: name, Version: "1", ABIVersion: pluginapi.ABIVersion, Module: name + ".wasm", SHA256: hex.EncodeToString(sum[:])}, b
}

// localsModule is a module that imports docex.log (function 0) and whose
// docex_run (function 1) declares n i32 locals.
func localsModule(n int) (*pluginapi.Manifest, []byte) {
	body := append(binary.AppendUvarint([]byte{1}, uint64(n)), 0x7f, 0x41, 0, 0x0b)
	b := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x0c\x02\x60\x00\x01\x7f\x60\x03\x7f\x7f\x7f\x01\x7f" + // types () -> i32, (i32 i32 i32) -> i32
		"\x02\x0d\x01\x05docex\x03log\x00\x01" + // import docex.log: function 0
		"\x03\x02\x01\x00\x05\x03\x01\x00\x01" +
		"\x07\x16\x02\x06memory\x02\x00\x09docex_run\x00\x01")
	b = append(b, 0x0a)
	b = binary.AppendUvarint(b, uint64(len(body)+1+len(binary.AppendUvarint(nil, uint64(len(body))))))
	b = append(binary.AppendUvarint(append(b, 1), uint64(len(body))), body...)
	sum := sha256.Sum256(b)
	return &pluginapi.Manifest{Name: "locals", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "l.wasm", SHA256: hex.EncodeToString(sum[:])}, b
}

// An instrumented module cached before the caps (wasmcheck.CapsVersion)
// is not used: the module is checked again, and refused. Before, the
// entry, named by the instrumentation's version only, was compiled as it
// was.
func TestMeteredCacheFromBeforeTheCaps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sb, err := New(ctx, Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	m, mod := nestedModule(wasmcheck.MaxBlockDepth + 1)
	// The entry as the code before the caps wrote it (its contents: the
	// module itself, which is all Load needs of it).
	base := filepath.Join(dir, "metered", m.SHA256+"-v"+wasmcheck.Version)
	sum := sha256.Sum256(mod)
	if err := os.WriteFile(base+".wasm", mod, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".json", []byte(`{"sha256":"`+hex.EncodeToString(sum[:])+`","info":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("block nesting depth is %d, the limit is %d", wasmcheck.MaxBlockDepth+1, wasmcheck.MaxBlockDepth)
	if _, err := sb.Load(ctx, m, mod); !errors.Is(err, pluginapi.ErrInvalidModule) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %v mentioning %q", err, pluginapi.ErrInvalidModule, want)
	}
}

// A restart reads instrumented modules from CacheDir instead of
// instrumenting again; a damaged entry is ignored and rewritten.
func TestMeteredCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m, mod := readPlugin(t, "echo")
	load := func() {
		t.Helper()
		sb, err := New(ctx, Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close(ctx)
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x", "hello")})
		if err != nil || string(r.Derived[0].Content) != "hello" {
			t.Fatalf("run: %v", err)
		}
	}
	load()
	base := filepath.Join(dir, "metered", meteredName(m.SHA256))
	want, err := os.ReadFile(base + ".wasm")
	if err != nil {
		t.Fatalf("no instrumented module cached: %v", err)
	}
	if err := os.WriteFile(base+".wasm", want[:len(want)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	load() // the damaged entry is not used...
	got, err := os.ReadFile(base + ".wasm")
	if err != nil || string(got) != string(want) {
		t.Fatal("...and is rewritten")
	}
}

// slowHost is a Host whose every lookup takes a while (a busy database).
type slowHost struct{ fakeHost }

func (h *slowHost) Lookup(ctx context.Context, q pluginapi.LookupQuery) ([]pluginapi.DocumentRef, error) {
	time.Sleep(2 * time.Millisecond)
	return h.fakeHost.Lookup(ctx, q)
}

// A guest that loops on a slow host call spends few instruction units per
// call, so its own stop checks (every wasmcheck.Slice units: thousands of
// calls here) come long after its deadline: the host call count checks
// the deadline too. Before, this guest ran on to its max_host_calls and
// failed with ErrHostCallLimit after 2,000 calls (4 s), past its 100 ms
// timeout. No wall-clock assertion: the calls it made are counted.
func TestSlowHostCallLoopTimesOut(t *testing.T) {
	ctx := context.Background()
	sb := sharedSandbox(t)
	// (loop (drop (call $lookup_name "x" 1 64 1)) (br 0)), built with wat2wasm.
	b, err := hex.DecodeString("0061736d01000000010d0260047f7f7f7f017f6000017f02150105646f6365780b6c6f6f6b75705f6e616d65000003020101050401010101071602066d656d6f7279020009646f6365785f72756e00010a1701150003404100410141c000410110001a0c000b41000b0b07010041000b0178")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	m := &pluginapi.Manifest{Name: "slowloop", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "slowloop.wasm",
		SHA256: hex.EncodeToString(sum[:]), Capabilities: []string{"documents.lookup"},
		Limits: pluginapi.ManifestLimits{TimeoutMS: 100, MaxHostCalls: 2000}}
	p, err := sb.Load(ctx, m, b)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	host := &slowHost{fakeHost{tenant: "t", store: map[string]map[string]string{"t": {"x": "v"}}}}
	r, err := p.Run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("in", "text"), Host: host})
	if !errors.Is(err, pluginapi.ErrPluginTimeout) {
		t.Fatalf("err = %v, want %v", err, pluginapi.ErrPluginTimeout)
	}
	if r == nil || r.Report.HostCalls >= 2000 {
		t.Fatalf("report %+v: the loop was not stopped at its deadline", r)
	}
}

// A compile stopped by its context (a Ctrl-C during plugin install) is
// the context's error, not an invalid module: before, it was reported as
// "invalid module: context canceled" (plugin_invalid).
func TestCompileCancelledIsNotInvalid(t *testing.T) {
	sb, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(context.Background())
	m, mod := readPlugin(t, "wordcount")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = sb.Load(ctx, m, mod)
	if !errors.Is(err, context.Canceled) || errors.Is(err, pluginapi.ErrInvalidModule) {
		t.Fatalf("err = %v, want context.Canceled and not %v", err, pluginapi.ErrInvalidModule)
	}
}

// Bulk memory instructions pay one unit per 64 bytes of their length:
// 64 fills of 32 MiB in straight-line code (2^25 units) stop at a budget
// of 5 million units wherever they run, in docex_run, docex_validate or
// the start function (under the ceiling's budget). Before, each fill cost
// one unit: the 64 fills used 261 units and returned ok, and a function of
// 10,000 of them ran 184 s past a 1 s timeout.
func TestBulkFillBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 5_000_000
	t.Run("run", func(t *testing.T) {
		m, mod := readPlugin(t, "fillbomb")
		m.Entry = "docex_run_straight"
		m.Limits.TimeoutMS = 60_000
		m.Limits.MaxInstructions = budget
		p, err := sharedSandbox(t).Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
		if !errors.Is(err, pluginapi.ErrInstructionLimit) {
			t.Fatalf("err = %v, want %v", err, pluginapi.ErrInstructionLimit)
		}
		if r.Report.Instructions != budget {
			t.Fatalf("report says %d units, want the budget", r.Report.Instructions)
		}
	})
	t.Run("validate", func(t *testing.T) {
		m, mod := readPlugin(t, "fillbomb")
		m.Limits.TimeoutMS = 60_000
		m.Limits.MaxInstructions = budget
		p, err := sharedSandbox(t).Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		err = p.Validate(ctx, "a", nil)
		if want := "used more than 5000000 instruction units (in docex_validate)"; !errors.Is(err, pluginapi.ErrInstructionLimit) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInstructionLimit, want)
		}
	})
	t.Run("start", func(t *testing.T) {
		sb := newSandbox(t, Config{InitTimeout: time.Minute, Ceilings: pluginapi.Limits{MaxInstructions: budget}})
		m, mod := readPlugin(t, "fillstart")
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		_, err = runWithin(t, p, pluginapi.Call{TenantID: "a"})
		if want := "the start function used more than 5000000 instruction units"; !errors.Is(err, pluginapi.ErrInstructionLimit) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, pluginapi.ErrInstructionLimit, want)
		}
	})
}

// memory.grow and table.grow pay for their delta: a grow of 4095 pages
// (1024 units a page) or of 2^20 - 1 table elements (one a element) stops
// at a budget below that, before it runs. Before, each grow cost one
// unit: the call that grew memory to 256 MiB (the host allocating and
// zeroing it, on a new instance per call) used 5 units and returned ok.
func TestGrowBudget(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		entry  string
		budget int64
	}{
		{"docex_run", 4095 * 1024},
		{"docex_run_table", 1<<20 - 1},
	} {
		t.Run(tt.entry, func(t *testing.T) {
			m, mod := readPlugin(t, "growbomb")
			m.Entry = tt.entry
			m.Limits.TimeoutMS = 60_000
			m.Limits.MaxInstructions = tt.budget
			p, err := sharedSandbox(t).Load(ctx, m, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
			if !errors.Is(err, pluginapi.ErrInstructionLimit) {
				t.Fatalf("err = %v, want %v", err, pluginapi.ErrInstructionLimit)
			}
			if r.Report.Instructions != tt.budget || r.Report.PeakMemoryBytes != pageSize {
				t.Fatalf("report = %+v, want the budget spent and the memory not grown", r.Report)
			}
			// With room for the delta (and the few instructions around
			// it), the same grow runs.
			m.Limits.MaxInstructions = tt.budget + 100
			p2, err := sharedSandbox(t).Load(ctx, m, mod)
			if err != nil {
				t.Fatal(err)
			}
			defer p2.Close(ctx)
			if r, err = runWithin(t, p2, pluginapi.Call{TenantID: "a"}); err != nil {
				t.Fatal(err)
			}
			if r.Report.Instructions <= tt.budget {
				t.Fatalf("report says %d units, want more than the delta's %d", r.Report.Instructions, tt.budget)
			}
		})
	}
}

// A cold run's report has the time and instruction units of the start
// function and _initialize (startwork: a loop of 100,000 turns, then a
// grow of 16 pages and a 1 MiB fill, 16,384 units each), apart from the
// call's own; a warm run and a run on an instance made from the snapshot
// report zero. The units are the same in another sandbox. Before, the
// report had no trace of initialisation.
func TestInitReport(t *testing.T) {
	ctx := context.Background()
	units := make([]int64, 2)
	for i := range units {
		sb := newSandbox(t, Config{})
		m, mod := readPlugin(t, "startwork")
		p, err := sb.Load(ctx, m, mod)
		if err != nil {
			t.Fatal(err)
		}
		r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		rep := r.Report
		if !rep.ColdStart || rep.InitDuration <= 0 || rep.InitInstructions < 100_000+2*16_384 {
			t.Fatalf("cold run: report = %+v, want the initialisation's time and at least %d units", rep, 100_000+2*16_384)
		}
		if rep.Instructions >= rep.InitInstructions {
			t.Fatalf("cold run: %d units for the call, %d for initialisation: the call's must not include it", rep.Instructions, rep.InitInstructions)
		}
		units[i] = rep.InitInstructions
		// Warm (same tenant) and from the snapshot (another tenant's pool).
		for _, tenant := range []string{"a", "b"} {
			r, err := runWithin(t, p, pluginapi.Call{TenantID: tenant})
			if err != nil {
				t.Fatal(err)
			}
			if r.Report.InitDuration != 0 || r.Report.InitInstructions != 0 {
				t.Fatalf("tenant %s, second run: report = %+v, want no initialisation", tenant, r.Report)
			}
			if tenant == "b" && !r.Report.ColdStart {
				t.Fatalf("tenant b: report = %+v, want a new instance (from the snapshot)", r.Report)
			}
		}
	}
	if units[0] != units[1] {
		t.Fatalf("initialisation took %d units, then %d", units[0], units[1])
	}
}

// TestColdInitLimits: a module with no snapshot (it can change a table)
// initialises a fresh instance for every run; its start function runs
// under the plugin's own instruction budget and timeout, not
// Config.InitTimeout and the ceiling's budget, so that it cannot spend
// those on every run. Before, a start function of 800 million turns ran 7
// s per run against timeout_ms = 100.
func TestColdInitLimits(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t, Config{})
	m, mod := readPlugin(t, "startcold")
	p, err := sb.Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	var units int64
	for i := range 2 {
		r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !r.Report.ColdStart || r.Report.InitInstructions < 100_000 {
			t.Fatalf("run %d: report = %+v, want a cold start with its initialisation", i, r.Report)
		}
		units = r.Report.InitInstructions
	}
	// The same module with a budget of half its start function's units:
	// refused on its first run, and on every later one.
	m, mod = readPlugin(t, "startcold")
	m.Limits.MaxInstructions = units / 2
	p, err = newSandbox(t, Config{}).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
		if !errors.Is(err, pluginapi.ErrInstructionLimit) || !strings.Contains(err.Error(), fmt.Sprintf("the start function used more than %d instruction units", units/2)) {
			t.Fatalf("run %d with max_instructions %d: err = %v, want ErrInstructionLimit in the start function", i, units/2, err)
		}
	}
}

// One Sandbox instruments and compiles one module at a time, so that the
// compilers' memory of concurrent Loads does not add up
// (docs/sandbox.md, "Compile time"). The first Load to instrument waits
// (up to 5 s) for a second one to start instrumenting too; it never does.
// Before, Loads of different modules compiled at once.
func TestCompilesOneAtATime(t *testing.T) {
	ctx := context.Background()
	sb, err := New(ctx, Config{}) // no cache: every Load instruments
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close(ctx)
	var calls, active, most atomic.Int32
	second := make(chan struct{})
	var once sync.Once
	sb.instrument = func(mod []byte) ([]byte, wasmcheck.Info, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if calls.Add(1) == 1 {
			select {
			case <-second:
			case <-time.After(5 * time.Second):
			}
		} else {
			once.Do(func() { close(second) })
		}
		return wasmcheck.Instrument(mod)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"echo", "chatty"} {
		m, mod := readPlugin(t, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := sb.Load(ctx, m, mod)
			if err == nil {
				p.Close(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := most.Load(); n != 1 {
		t.Fatalf("%d modules were instrumented and compiled at once, want 1", n)
	}
}

// A module whose largest function is estimated to need more than a share
// of wasmcheck.MaxFunctionCompileMemory compiles with fewer workers.
func TestCompileWorkers(t *testing.T) {
	const c = wasmcheck.MaxFunctionCompileMemory
	for _, tc := range []struct {
		configured int
		largest    uint64
		want       int
	}{
		{4, 0, 4}, {4, 1 << 20, 4}, {4, c / 4, 4}, {4, c/4 + 1, 3}, {2, c / 2, 2}, {2, c/2 + 1, 1}, {4, c, 1}, {1, 1 << 20, 1},
	} {
		if got := compileWorkers(tc.configured, tc.largest); got != tc.want {
			t.Errorf("compileWorkers(%d, %d) = %d, want %d", tc.configured, tc.largest, got, tc.want)
		}
	}
}

// TestInitLimitsAfterEviction: a module that has a snapshot initialises
// under Config.InitTimeout and the ceiling's budget every time, also when
// its snapshot was not kept (larger than MaxIdleBytes) or was evicted
// (another tenant's runs can cause that), not under its own limits: those
// bind only modules that never have a snapshot (TestColdInitLimits).
// Before, every run after the first failed with ErrInstructionLimit.
func TestInitLimitsAfterEviction(t *testing.T) {
	ctx := context.Background()
	m, mod := readPlugin(t, "startwork")
	p, err := newSandbox(t, Config{}).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runWithin(t, p, pluginapi.Call{TenantID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	units := r.Report.InitInstructions
	m, mod = readPlugin(t, "startwork")
	m.Limits.MaxInstructions = units / 2
	p, err = newSandbox(t, Config{MaxIdleBytes: 1}).Load(ctx, m, mod)
	if err != nil {
		t.Fatal(err)
	}
	for i, tenant := range []string{"a", "a", "b", "a"} {
		r, err := runWithin(t, p, pluginapi.Call{TenantID: tenant})
		if err != nil {
			t.Fatalf("run %d (tenant %s), max_instructions %d, start function %d units: %v", i, tenant, units/2, units, err)
		}
		if r.Report.InitInstructions < units/2 {
			t.Fatalf("run %d: report %+v, want a new initialisation (no snapshot kept under MaxIdleBytes 1)", i, r.Report)
		}
	}
}
