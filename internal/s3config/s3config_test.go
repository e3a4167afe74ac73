package s3config

import (
	"strings"
	"testing"
)

// TestCheckEndpoint: an endpoint is parsed, not only checked for its
// scheme: it needs a host; user info, a query, a fragment and a path are
// refused, and user info is never shown. Before, every case refused here
// but "ftp://h" was accepted, and failed later (an internal error, three
// attempts at an empty host) or sent its password in every error.
func TestCheckEndpoint(t *testing.T) {
	for _, c := range []struct {
		u, want string // want "" for accepted
	}{
		{"", ""},
		{"http://127.0.0.1:7070", ""},
		{"https://s3.example.com", ""},
		{"https://s3.example.com/", ""},
		{"http://[::1]:9000", ""},
		{"ftp://h", "want an http:// or https:// URL"},
		{"127.0.0.1:7070", "want an http:// or https:// URL"},
		{"http://", "with a host"},
		{"http://:7070", "with a host"},
		{"http://[::1", "want an http:// or https:// URL: missing ']' in host"},
		{"http://h:port", "want an http:// or https:// URL: "},
		{"http://h/path", "want no path"},
		{"http://h?x=1", "want no query"},
		{"http://h/?", "want no query"},
		{"http://h#frag", "want no fragment"},
		{"http://user:SECRET@host", "want no user info"},
		{"http://user:SEC/RET@host", "want no user info"},
		{"http://user@host:9000/", "want no user info"},
		{"u:SECRET@127.0.0.1:7070", "want no user info"},
		{"http:/u:SECRET@127.0.0.1:7070", "want no user info"},
		{"//u:SECRET@127.0.0.1:7070", "want no user info"},
	} {
		err := CheckEndpoint(c.u)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.u, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want %q", c.u, err, c.want)
		case err != nil && strings.Contains(err.Error(), "SECRET"):
			t.Errorf("%q: %v shows the password", c.u, err)
		}
	}
	for u, want := range map[string]string{
		"http://h:1":               "http://h:1",
		"http://user:SECRET@host":  "http://REDACTED@host",
		"https://u:p@w@host:9/x?y": "https://REDACTED@host:9/x?y",
		"http://h/a@b":             "http://REDACTED@b",
		"http://user:SEC/RET@host": "http://REDACTED@host",
		// No "://" or a misspelt one (P11's H2: shown in full before).
		"u:SECRET@127.0.0.1:7070":       "REDACTED@127.0.0.1:7070",
		"http:/u:SECRET@127.0.0.1:7070": "REDACTED@127.0.0.1:7070",
		"//u:SECRET@127.0.0.1:7070":     "REDACTED@127.0.0.1:7070",
		"u:SE://CRET@h":                 "REDACTED@h",
	} {
		if got := ShowEndpoint(u); got != want || strings.Contains(got, "SECRET") || strings.Contains(got, "CRET") {
			t.Errorf("ShowEndpoint(%q) = %q, want %q", u, got, want)
		}
	}
}
