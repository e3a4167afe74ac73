package sandbox

import (
	"bytes"
	"context"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// Plugins built by other toolchains than Go's load under the compile caps
// and run: C with the whole SQLite library compiled in (clang 14,
// wasi-libc), Rust's std (rustc 1.63, wasm32-wasi) and AssemblyScript
// (testplugins/build-other.sh rebuilds them). Each runs twice on one
// pooled instance, the second run restored from the snapshot.
func TestOtherLanguagePlugins(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		plugin, input string
		meta          map[string]any
		derived       string
	}{
		{"csqlite", "a\nb\na\nc\nb\n", map[string]any{"distinct_lines": 3.0}, ""},
		{"rsword", "the cat and the dog and THE bird", map[string]any{"top_word": "the", "top_count": 3.0}, ""},
		{"asupper", "hello, World 42", nil, "HELLO, WORLD 42"},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			p := plugin(t, tc.plugin)
			for run := range 2 {
				r, err := p.Run(ctx, pluginapi.Call{TenantID: "a", Input: textDoc("x.txt", tc.input)})
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if r.Status != pluginapi.StatusOK {
					t.Fatalf("run %d: status %v %q", run, r.Status, r.Message)
				}
				for k, v := range tc.meta {
					if r.Metadata[k] != v {
						t.Errorf("run %d: metadata %s = %#v, want %#v (all: %v)", run, k, r.Metadata[k], v, r.Metadata)
					}
				}
				if tc.derived != "" && (len(r.Derived) != 1 || !bytes.Equal(r.Derived[0].Content, []byte(tc.derived))) {
					t.Errorf("run %d: derived %+v, want one document %q", run, r.Derived, tc.derived)
				}
			}
		})
	}
}
