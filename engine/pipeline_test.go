package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/docex-dev/docex"
)

// TestStoredZeroAttempts: a new definition may not say max_attempts = 0,
// but a version stored with it (older versions took it as the default)
// still parses, with the default, so that its jobs run.
func TestStoredZeroAttempts(t *testing.T) {
	src := []byte("name = \"x\"\nmax_attempts = 0\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n")
	p, err := ParsePipeline(src)
	if err != nil || p.MaxAttempts != DefaultAttempts {
		t.Fatalf("stored definition: %+v, %v; want max_attempts %d", p, err, DefaultAttempts)
	}
	if err := p.checkNew(src); !errors.Is(err, docex.ErrInvalid) {
		t.Fatalf("new definition: %v, want ErrInvalid", err)
	}
	for _, ok := range []string{"name = \"x\"\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n", "name = \"x\"\nmax_attempts = 1\n[[steps]]\nname = \"a\"\nplugin = \"tag\"\n"} {
		q, err := ParsePipeline([]byte(ok))
		if err == nil {
			err = q.checkNew([]byte(ok))
		}
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestUniqueIDs(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a", "a"}, []string{"a"}},
		{[]string{"b", "a", "b", "c", "a"}, []string{"b", "a", "c"}},
		{nil, nil},
	} {
		if got := uniqueIDs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("uniqueIDs(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
