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
