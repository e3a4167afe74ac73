package mcpserver

import (
	"fmt"
	"strings"
	"testing"
)

// TestStdioIDMembers: the id members of a message as the transport reads
// them (members), and the id an error reply gives (usableID).
func TestStdioIDMembers(t *testing.T) {
	cases := []struct {
		msg    string
		ids    []string
		usable string // "" for nil
	}{
		{`{}`, nil, ""},
		{`{"id":1}`, []string{"1"}, "1"},
		{` { "id" : "a\"}" , "x" : [1,{"id":2}] } `, []string{`"a\"}"`}, `"a\"}"`},
		{`{"x":{"id":2},"id":-3}`, []string{"-3"}, "-3"},
		{`{"params":"\"id\":5","id":true}`, []string{"true"}, ""},
		{`{"\u0069d":7,"iD":8,"ID":9}`, []string{"7"}, "7"},
		{`{"id":1,"id":2}`, []string{"1", "2"}, "2"},
		{`{"id":1,"id":2.5}`, []string{"1", "2.5"}, ""},
		{`{"id":null}`, []string{"null"}, ""},
		{`{"a":[[]],"b":{"c":{}},"id":"z","d":null}`, []string{`"z"`}, `"z"`},
	}
	for _, c := range cases {
		msg := []byte(strings.TrimSpace(c.msg))
		var got []string
		for _, v := range members(msg, "id") {
			got = append(got, string(v))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.ids) {
			t.Errorf("members(%s) = %q, want %q", c.msg, got, c.ids)
		}
		if u := string(usableID(msg)); u != c.usable {
			t.Errorf("usableID(%s) = %q, want %q", c.msg, u, c.usable)
		}
	}
	for _, c := range []struct {
		arr  string
		max  int
		want []string
		ok   bool
	}{
		{`[]`, 2, nil, true},
		{`[ 1 , "a,]" ,{"b":[1,2]}]`, 3, []string{"1", `"a,]"`, `{"b":[1,2]}`}, true},
		{`[1,2,3]`, 2, nil, false},
		{`[[],[[]]]`, 2, []string{"[]", "[[]]"}, true},
	} {
		elems, ok := elements([]byte(c.arr), c.max)
		var got []string
		for _, v := range elems {
			got = append(got, string(v))
		}
		if ok != c.ok || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("elements(%s, %d) = %q, %v; want %q, %v", c.arr, c.max, got, ok, c.want, c.ok)
		}
	}
}
