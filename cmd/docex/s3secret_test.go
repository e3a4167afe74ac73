package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestS3SecretInEnvKeyNotPrinted: a credential pasted into
// access_key_id_env or secret_access_key_env in place of a variable's
// name is never printed, in text or --json output: not as an invalid
// name (it says it is not one and its length), not as a valid but
// unconventional name whose variable is unset (the message refers to
// the key instead). Conventional names are still printed. Before, the
// invalid one was quoted in the error and the valid one printed in the
// error and its hint.
func TestS3SecretInEnvKeyNotPrinted(t *testing.T) {
	t.Parallel()
	const (
		slashed = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" // not a name
		plain   = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYab" // a valid name
	)
	s3 := "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: docex\n      endpoint: http://127.0.0.1:1\n"
	for _, c := range []struct {
		name, yaml, want, secret string
	}{
		{"invalid name", s3 + "      access_key_id_env: TEST_K\n      secret_access_key_env: " + slashed + "\n",
			"config key storage.documents.s3.secret_access_key_env (line 9): is not an environment variable name (a string of 40 characters, not shown", slashed},
		{"valid unset name", s3 + "      access_key_id_env: TEST_K\n      secret_access_key_env: " + plain + "\n",
			"config key storage.documents.s3.secret_access_key_env (line 9): environment variables TEST_K and the variable storage.documents.s3.secret_access_key_env names must both be set: the variable storage.documents.s3.secret_access_key_env names is empty", plain},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.env["TEST_K"] = "k"
			cfg := h.file("docex.yaml", c.yaml)
			for _, args := range [][]string{{"init"}, {"tenant", "list"}, {"init", "--json"}, {"tenant", "list", "--json"}} {
				r := h.want(exitInvalid, args...)
				if strings.Contains(r.stdout+r.stderr, c.secret) || strings.Contains(r.stdout+r.stderr, c.secret[:12]) {
					t.Errorf("%s printed the value: %s%s", args, r.stdout, r.stderr)
				}
				if args[len(args)-1] != "--json" {
					if !strings.Contains(r.stderr, cfg+": "+c.want) {
						t.Errorf("%s: %s\nwant %s: %s", args, r.stderr, cfg, c.want)
					}
					continue
				}
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "invalid_config" || !strings.HasPrefix(e.Error.Message, cfg+": "+c.want) {
					t.Errorf("%s: %s\nwant %s: %s...", args, r.stderr, cfg, c.want)
				}
			}
		})
	}
}

// TestS3EndpointParsed: an endpoint without a host, that does not parse,
// or with user info, a query, a fragment or a path is invalid_config
// (exit 2) naming the key and its line, and a password in it is never
// printed. Before, "http://[::1" and a URL with a path failed as
// internal (exit 1), "http://" as storage_unavailable after three
// attempts, and "http://user:SECRET@host" was accepted and printed in
// every error.
func TestS3EndpointParsed(t *testing.T) {
	t.Parallel()
	s3 := "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: docex\n      endpoint: "
	for _, c := range []struct{ endpoint, want string }{
		{"http://[::1", `"http://[::1": want an http:// or https:// URL: missing ']' in host`},
		{"http://", `"http://": want an http:// or https:// URL with a host`},
		{"http://user:SECRET@127.0.0.1:1", `"http://REDACTED@127.0.0.1:1": want no user info`},
		{"http://127.0.0.1:1/docex?x=1", `"http://127.0.0.1:1/docex?x=1": want no query`},
		{"http://127.0.0.1:1/docex", `"http://127.0.0.1:1/docex": want no path`},
		{"http://127.0.0.1:1#f", `"http://127.0.0.1:1#f": want no fragment`},
	} {
		t.Run(strings.Fields(c.want)[1], func(t *testing.T) { // the temporary directory is named after the test
			t.Parallel()
			h := newHarness(t)
			cfg := h.file("docex.yaml", s3+c.endpoint+"\n")
			for _, args := range [][]string{{"init", "--json"}, {"tenant", "list", "--json"}} {
				r := h.want(exitInvalid, args...)
				var e struct {
					Error struct{ Code, Message string }
				}
				want := cfg + ": config key storage.documents.s3.endpoint (line 7): " + c.want
				if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "invalid_config" || !strings.HasPrefix(e.Error.Message, want) {
					t.Errorf("%s: %s\nwant %s...", args, r.stderr, want)
				}
				if strings.Contains(r.stdout+r.stderr, "SECRET") {
					t.Errorf("%s printed the password: %s%s", args, r.stdout, r.stderr)
				}
			}
		})
	}
}
