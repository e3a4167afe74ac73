package spell

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Suggest returns ` (did you mean "x"?)` for the candidate Closest to
// name, or "" when none is close.
func Suggest(name string, candidates []string) string {
	best, ok := Closest(name, candidates)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Closest returns the candidate closest to name and true, or false when
// none is close: equal but for case and '-'/'_', or within an edit
// distance (a swap of neighbours counts one) of a third of name's length
// (at least 1, at most 3). name itself is not a candidate. Ties go to the
// candidate first in sorted order.
func Closest(name string, candidates []string) (string, bool) {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	limit := min(max(1, len(name)/3), 3)
	best, bestD := "", limit+1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if c == name {
			continue
		}
		if d := editDistance(fold(name), fold(c), limit); d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// FieldKeys returns the keys that struct type t's fields have in the
// given struct tag ("toml", "yaml"): the keys a strict parser accepts at
// that level (fields tagged "-" or untagged are left out).
func FieldKeys(t reflect.Type, tag string) []string {
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get(tag), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// editDistance is the edit distance of a and b (insertions, deletions,
// substitutions and transpositions of neighbours: optimal string
// alignment), or limit+1 when it is more than limit (names are short: at
// most 64 bytes).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	pprev := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pprev[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		pprev, prev, cur = prev, cur, pprev
	}
	return min(prev[len(b)], limit+1)
}

// SuggestOrList is Suggest, or when no candidate is close, ` (its NOUN:
// a, b, c)` listing the candidates sorted, or ` (it takes none)` when
// there are none: for an unknown name from a short list (a plugin's
// parameters).
func SuggestOrList(name string, candidates []string, noun string) string {
	if s := Suggest(name, candidates); s != "" {
		return s
	}
	if len(candidates) == 0 {
		return " (it takes none)"
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	return fmt.Sprintf(" (its %s: %s)", noun, strings.Join(sorted, ", "))
}
