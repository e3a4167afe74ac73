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

func TestSection(t *testing.T) {
	const text = "# Doc\nintro\n## A\na1\n### A.1\na11\n## B\nb1\n#hashtag\n# Next\nn\n"
	for _, tc := range []struct {
		heading, want string
		ok            bool
	}{
		{"# Doc", "intro\n## A\na1\n### A.1\na11\n## B\nb1\n#hashtag\n", true},
		{"## A", "a1\n### A.1\na11\n", true},
		{"### A.1", "a11\n", true},
		{"## B", "b1\n#hashtag\n", true},
		{"# Next", "n\n", true},
		{"## C", "", false},
		{"A", "", false},
	} {
		got, ok := Section(text, tc.heading)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Section(%q) = %q, %v; want %q, %v", tc.heading, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTableRows(t *testing.T) {
	const text = "| a | b |\n|---|---|\n| 1 | `x\\|y` |\n|2|3|\n\nprose | not a row\n\n| h |\n|:-:|\n| z |\n"
	got := TableRows(text)
	want := [][]string{{"1", "`x\\|y`"}, {"2", "3"}, {"z"}}
	if len(got) != len(want) {
		t.Fatalf("TableRows = %q, want %q", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, got[i], want[i])
		}
	}
}
