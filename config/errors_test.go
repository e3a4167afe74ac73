package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

// TestDecodeErrorsNameKeys: decoding errors name the key path as written
// and what it should hold, never a Go type.
func TestDecodeErrorsNameKeys(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
	}{
		{"config_version: 1\nmulti_tenancy:\n  enabled: maybe\n", []string{"multi_tenancy.enabled (line 3)", "true or false", "maybe"}},
		{"config_version: 1\nsandbox:\n  max_memory_pages: -5\n", []string{"sandbox.max_memory_pages (line 3)", "0 or more"}},
		{"config_version: 1\nsandbox:\n  max_memory_pages: lots\n  pool_size: x\n", []string{"sandbox.max_memory_pages (line 3)", "sandbox.pool_size (line 4)"}},
		{"config_version: 1\ndatabase:\n  type: sqlite\n  colour: red\n", []string{"database.colour (line 4): unknown key"}},
		{"config_version: 1\nbogus: true\n", []string{"config key bogus (line 2): unknown key"}},
		{"config_version: 1\ndatabse:\n  type: sqlite\n", []string{`config key databse (line 2): unknown key (did you mean "database"?)`}},
		{"config_version: 1\ndatabase:\n  sqlite:\n    synchronus: full\n", []string{`database.sqlite.synchronus (line 4): unknown key (did you mean "synchronous"?)`}},
		{"config_version: 1\nsandbox:\n  max_memory_page: 10\n", []string{`sandbox.max_memory_page (line 3): unknown key (did you mean "max_memory_pages"?)`}},
		{"config_version: 1\ndatabase: [1,2]\n", []string{"database (line 2)", "a mapping", "a list"}},
		{"config_version: x\n", []string{"config_version (line 1)", "whole number"}},
		{"config_version: \"1\"\n", []string{`config_version (line 1): want a whole number, got "1" (text): write it without the quotes`}},
		{"config_version: 1\nmulti_tenancy:\n  enabled: 'true'\n", []string{`multi_tenancy.enabled (line 3): want true or false, got "true" (text): write it without the quotes`}},
		{"config_version: 1\nstorage:\n  documents:\n    fsync: 3\n", []string{"storage.documents.fsync (line 4)"}},
		{"config_version: 1\nstorage: {documents: {type: [a]}}\n", []string{"storage.documents.type (line 2)", "text"}},
		{"{{{", []string{"not valid YAML"}},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), t.TempDir())
		if !errors.Is(err, docex.ErrInvalidConfig) {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %q lacks %q", c.yaml, err, w)
			}
		}
		for _, goName := range []string{"uint32", "int64", "config.", "!!", "unmarshal", " into "} {
			if strings.Contains(err.Error(), goName) {
				t.Errorf("%q: %q names a Go type (%s)", c.yaml, err, goName)
			}
		}
	}
}
