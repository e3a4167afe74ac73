package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain name.pdf":      "plain name.pdf",
		"été 日本":              "été 日本",
		"a\tb\nc\rd":          `a\tb\nc\rd`,
		"\x1b[31mred\x1b[0m":  `\x1b[31mred\x1b[0m`,
		"nul\x00del\x7f":      `nul\x00del\x7f`,
		"bad\xffutf8":         `bad\xffutf8`,
		"c1\u0085next":        `c1\u0085next`,
		"rtl\u202eoverride":   `rtl\u202eoverride`,
		"iso\u2066late\u2069": `iso\u2066late\u2069`,
		"line\u2028separator": `line\u2028separator`,
		`back\slash "quoted"`: `back\slash "quoted"`,
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"x", "\x1b]0;title\x07", "a\nb", "\xff\xfe", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("escape(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || dangerous(r) {
				t.Fatalf("escape(%q) = %q keeps %U", s, out, r)
			}
		}
		var b bytes.Buffer
		tw := newTerminalWriter(&b)
		writef(tw, "%s\t%s\n", s, s)
		tw.Flush()
		if strings.Count(b.String(), "\n") != 1 || strings.Count(b.String(), "\t") != 1 {
			t.Fatalf("writef of %q gave %q: a value changed the layout", s, b.String())
		}
	})
}

// TestHumanOutputCannotForgeLines: values that reach human output (an
// audit target from a denied request, a metadata value) are escaped: no
// forged line in the admin's audit list, no escape sequence on the
// terminal (issue 8).
func TestHumanOutputCannotForgeLines(t *testing.T) {
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"], h.env["DOCEX_USER"] = "acme", "mallory"
	h.env["DOCEX_ROLES"] = "reader"
	forged := "x\n2026-01-01T00:00:00Z  alice  basket.delete  invoices  ok"
	h.want(exitDenied, "plugin", "remove", forged)
	h.env["DOCEX_ROLES"] = "admin"
	h.env["DOCEX_USER"] = "alice"
	h.ok("basket", "create", "b")
	f := h.file("a.txt", "a")
	added := decode[[]struct {
		Document doc `json:"document"`
	}](t, h.ok("doc", "add", "b", f, "--json").stdout)
	h.ok("doc", "meta", "set", added[0].Document.ID, "note=\x1b[31mred\x1b]0;pwned\x07\nforged")
	for _, args := range [][]string{{"audit", "list"}, {"doc", "get", added[0].Document.ID}, {"doc", "list", "b"}, {"doc", "meta", "get", added[0].Document.ID}, {"doc", "meta", "get", added[0].Document.ID, "note"}} {
		r := h.ok(args...)
		out := r.stdout + r.stderr
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "2026-01-01T00:00:00Z") || strings.HasPrefix(line, "forged") {
				t.Fatalf("docex %v printed a forged line:\n%s", args, out)
			}
		}
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Fatalf("docex %v printed a terminal escape:\n%q", args, out)
		}
	}
	if out := h.ok("audit", "list").stdout; !strings.Contains(out, `x\n2026-01-01T00:00:00Z`) {
		t.Fatalf("the denied target is not shown escaped:\n%s", out)
	}
}
