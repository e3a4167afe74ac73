package markdown

import (
	"slices"
	"testing"
)

func TestFencedBlocks(t *testing.T) {
	const text = "intro\n```toml\na = 1\n```\n\n```\nplain\n```\n```sh\necho hi\n```\n```toml \nb = 2\n\n```\n```toml\nopen = true\n"
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"toml", []string{"a = 1\n", "b = 2\n\n"}},
		{"", []string{"plain\n"}},
		{"sh", []string{"echo hi\n"}},
		{"go", nil},
	} {
		if got := FencedBlocks(text, tc.lang); !slices.Equal(got, tc.want) {
			t.Errorf("FencedBlocks(%q) = %q, want %q", tc.lang, got, tc.want)
		}
	}
}
