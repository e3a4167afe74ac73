package postgres

import "testing"

// TestOneLine: a connection error's attempts, one a line in pgx's
// message, are given on one line, each once.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dial error: refused", "dial error: refused"},
		{"failed to connect to `user=u database=x`:\n\t127.0.0.1:5432 (127.0.0.1): server error: FATAL: role \"u\" does not exist (SQLSTATE 28000)\n\t127.0.0.1:5432 (127.0.0.1): server error: FATAL: role \"u\" does not exist (SQLSTATE 28000)",
			"failed to connect to `user=u database=x`: 127.0.0.1:5432 (127.0.0.1): server error: FATAL: role \"u\" does not exist (SQLSTATE 28000)"},
		{"failed to connect to `user=u database=x`:\n\ta: tls error: refused\n\tb: server error: FATAL: no",
			"failed to connect to `user=u database=x`: a: tls error: refused; b: server error: FATAL: no"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
