package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/internal/s3test"
)

// TestLaterConfigErrorsNameLines: an error about a value of docex.yaml
// found after it was loaded (a store or backend opened with it, an
// environment variable it names, the data the system was initialised
// with) names the file, the key and its line, as the loader's errors do
// ("PATH: config key KEY (line N): ..."). Before, each named neither line
// nor file, and most not the key ("s3 bucket \"Bad_Bucket\": want ...",
// "the system was initialised with bootstrap tenant ...").
func TestLaterConfigErrorsNameLines(t *testing.T) {
	t.Parallel()
	s3 := "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n"
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string // after "PATH: "
	}{
		{"s3 bucket", s3 + "      bucket: Bad_Bucket\n", nil,
			`config key storage.documents.s3.bucket (line 6): "Bad_Bucket": want 3 to 63 lowercase letters, digits, '.' and '-'`},
		{"s3 prefix", s3 + "      bucket: docex\n      prefix: /p/\n", nil,
			`config key storage.documents.s3.prefix (line 7): "/p/": want slash-separated segments`},
		{"s3 endpoint", s3 + "      bucket: docex\n      endpoint: ftp://h\n", nil,
			`config key storage.documents.s3.endpoint (line 7): "ftp://h": want an http:// or https:// URL`},
		{"s3 key id unset", s3 + "      bucket: docex\n      access_key_id_env: TEST_K\n      secret_access_key_env: TEST_S\n", map[string]string{"TEST_S": "s"},
			"config key storage.documents.s3.access_key_id_env (line 7): environment variables TEST_K and TEST_S must both be set: TEST_K is empty"},
		{"s3 secret unset", s3 + "      bucket: docex\n      access_key_id_env: TEST_K\n      secret_access_key_env: TEST_S\n", map[string]string{"TEST_K": "k"},
			"config key storage.documents.s3.secret_access_key_env (line 8): environment variables TEST_K and TEST_S must both be set: TEST_S is empty"},
		{"content directory", "config_version: 1\nstorage:\n  documents:\n    path: afile/content\n", nil,
			"config key storage.documents.path (line 4): content directory "},
		{"dsn pool settings", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: host=127.0.0.1 port=1 pool_max_conns=many\n", nil,
			"config key database.postgres.dsn (line 5): postgres: the connection string's pool settings (pool_*) do not parse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			for k, v := range c.env {
				h.env[k] = v
			}
			h.file("afile", "")
			cfg := h.file("docex.yaml", c.yaml)
			for _, args := range [][]string{{"init"}, {"tenant", "list"}} {
				if c.name == "content directory" && args[0] != "init" {
					continue // init checks the directory
				}
				r := h.want(exitInvalid, append(args, "--json")...)
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

// TestChangedSettingNamesLine: a system initialised with one bootstrap
// tenant or multi-tenancy setting, opened with docex.yaml changed, is
// refused naming the key that changed and its line.
func TestChangedSettingNamesLine(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	orig := "config_version: 1\nmulti_tenancy:\n  enabled: true\n  bootstrap_tenant:\n    id: system\ndatabase:\n  sqlite:\n    system_file: sys.db\n"
	cfg := h.file("docex.yaml", orig)
	h.ok("init")
	for _, c := range []struct{ from, to, want string }{
		{"id: system", "id: root", `config key multi_tenancy.bootstrap_tenant.id (line 5): the system was initialised with bootstrap tenant "system", the configuration says "root"`},
		{"enabled: true", "enabled: false", `config key multi_tenancy.enabled (line 3): the system was initialised with multi_tenancy "true", the configuration says "false"`},
	} {
		if err := os.WriteFile(cfg, []byte(strings.Replace(orig, c.from, c.to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"init"}, {"audit", "list", "--system", "--user", "op", "--roles", "admin"}} {
			r := h.want(exitInvalid, args...)
			if !strings.HasPrefix(r.stderr, "docex: "+cfg+": "+c.want+"\n") {
				t.Errorf("%s %s:\n%s\nwant docex: %s: %s", c.to, args, r.stderr, cfg, c.want)
			}
		}
	}
}

// TestS3NoSuchBucketNamesLine: init with a bucket that does not exist
// names storage.documents.s3.bucket and its line.
func TestS3NoSuchBucketNamesLine(t *testing.T) {
	srv := s3test.Start(t)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	cfg := h.file("docex.yaml", s3Config("", "docex-no-such-bucket", srv.Endpoint))
	r := h.want(exitInvalid, "init")
	want := "docex: " + cfg + ": config key storage.documents.s3.bucket (line 7): "
	if !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "hint: create the bucket") {
		t.Fatalf("stderr %q\nwant %s...", r.stderr, want)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "docex-data")); !os.IsNotExist(err) {
		t.Fatalf("init created the data directory: %v", err)
	}
}

// TestStrictConfigValues: through the CLI, a docex.yaml whose s3 section
// the storage type does not read, a key without a value, or a value with
// an explicit tag not its own is refused by init (creating nothing) and
// every other command, exit 2, invalid_config, naming the key and its
// line. Before, the s3 section and the empty values were read as if not
// there (content stayed on local disk; enabled: took true), config_version:
// ~ said "0 is not supported", enabled: !!bool yes was "not valid YAML"
// without key or line, and pool_size: !!str 5 was told to drop quotes it
// did not have.
func TestStrictConfigValues(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, want string }{
		{"s3 without type", "config_version: 1\nstorage:\n  documents:\n    s3:\n      bucket: docex-prod\n",
			"config key storage.documents.s3 (line 4): storage.documents.s3 is set but storage.documents.type is filesystem: add type: s3, or remove the s3 section"},
		{"s3 with database", "config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    type: database\n    s3:\n      bucket: docex-prod\n",
			"config key storage.documents.s3 (line 7): storage.documents.s3 is set but storage.documents.type is database: add type: s3, or remove the s3 section"},
		{"empty boolean", "config_version: 1\nmulti_tenancy:\n  enabled:\n",
			"config key multi_tenancy.enabled (line 3): no value: leave the key out for the default"},
		{"null pool size", "config_version: 1\nsandbox:\n  pool_size: ~\n",
			"config key sandbox.pool_size (line 3): no value: leave the key out for the default"},
		{"null section", "config_version: 1\ndatabase: ~\n",
			"config key database (line 2): no value: leave the key out for the default"},
		{"null version", "config_version: ~\n",
			"config key config_version (line 1): no value: config_version is required; write config_version: 1"},
		{"missing version", "data_dir: d\n",
			"config key config_version: missing: it is required; write config_version: 1"},
		{"tagged boolean", "config_version: 1\nmulti_tenancy:\n  enabled: !!bool yes\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool yes: use true or false"},
		{"tagged number", "config_version: 1\nsandbox:\n  pool_size: !!str 5\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!str 5: write it without the tag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			cfg := h.file("docex.yaml", c.yaml)
			for _, args := range [][]string{{"init"}, {"tenant", "list"}, {"gc"}} {
				r := h.want(exitInvalid, append(args, "--json")...)
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(r.stderr), &e); err != nil || e.Error.Code != "invalid_config" || e.Error.Message != cfg+": "+c.want {
					t.Errorf("%s: %s\nwant %s: %s", args, r.stderr, cfg, c.want)
				}
			}
			for _, d := range []string{"docex-data", "d"} {
				if _, err := os.Stat(filepath.Join(h.dir, d)); !os.IsNotExist(err) {
					t.Errorf("init created %s: %v", d, err)
				}
			}
		})
	}
}
