package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
)

func TestExampleParses(t *testing.T) {
	data, err := os.ReadFile("../docex.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, "/srv/docex")
	if err != nil {
		t.Fatalf("docex.yaml.example: %v", err)
	}
	if f.Database.SQLite.Path != "/srv/docex/docex-data" || f.Storage.Documents.Path != "/srv/docex/docex-data/content" || !f.MultiTenant() {
		t.Fatalf("resolved: %+v", f)
	}
}

func TestGenerateParses(t *testing.T) {
	for _, o := range []GenerateOptions{{}, {SingleFile: true}, {Backend: PostgresBackend}, {DataDir: "with space/and \"quote\""}} {
		f, err := Parse(Generate(o), "/x")
		if err != nil {
			t.Fatalf("%+v: %v\n%s", o, err, Generate(o))
		}
		if o.SingleFile && (f.MultiTenant() || f.Storage.Documents.Type != "database" || f.Database.SQLite.SystemFile != "docex.db") {
			t.Fatalf("single file: %+v", f)
		}
		if strings.Contains(string(Generate(o)), "password") {
			t.Fatal("generated config mentions a password")
		}
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "config_version: 1\nfoo: 1\n", "line 2"},
		{"unknown nested key", "config_version: 1\nstorage:\n  documents:\n    kind: x\n", "line 4"},
		{"wrong type", "config_version: 1\nmulti_tenancy:\n  enabled: 3x\n", "line 3"},
		{"missing version", "multi_tenancy:\n  enabled: true\n", "config_version"},
		{"future version", "config_version: 9\n", "config_version"},
		{"bad strategy", "config_version: 1\nmulti_tenancy:\n  isolation_strategy: row\n", "isolation_strategy"},
		{"bad bootstrap id", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    id: ../x\n", "bootstrap_tenant.id"},
		{"bad schema", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: a;b\n", "schema"},
		{"bad db", "config_version: 1\ndatabase:\n  type: mysql\n", "database.type"},
		{"bad storage", "config_version: 1\nstorage:\n  documents:\n    type: ftp\n", "storage.documents.type"},
		{"s3 without bucket", "config_version: 1\nstorage:\n  documents:\n    type: s3\n", "storage.documents.s3.bucket"},
		{"s3 inline secret", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      secret_access_key: hunter2\n", "never written"},
		{"s3 inline key id", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      access_key_id: AKIA\n", "never written"},
		{"s3 one env name", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      access_key_id_env: K\n", "go together"},
		{"s3 bad env name", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      access_key_id_env: K-1\n      secret_access_key_env: S\n", "access_key_id_env"},
		{"s3 small parts", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      part_size_mib: 4\n", "part_size_mib"},
		{"s3 negative timeout", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      request_timeout_ms: -1\n", "request_timeout_ms"},
		{"unscoped", "config_version: 1\nstorage:\n  documents:\n    tenant_scoped: false\n", "tenant_scoped"},
		{"password", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: host=x password=hunter2\n", "dsn"},
		{"two docs", "config_version: 1\n---\nconfig_version: 1\n", "more than one"},
		{"negative", "config_version: 1\nstorage:\n  documents:\n    max_document_bytes: -1\n", "max_document_bytes"},
		{"negative staged memory", "config_version: 1\nstorage:\n  documents:\n    max_staged_memory: -1\n", "max_staged_memory"},
		{"spool dir with filesystem", "config_version: 1\nstorage:\n  documents:\n    spool_dir: /var/tmp\n", "storage.documents.spool_dir (line 4): not read with type filesystem"},
		{"spool dir with s3", "config_version: 1\nstorage:\n  documents:\n    type: s3\n    spool_dir: /var/tmp\n    s3:\n      bucket: b\n", "storage.documents.s3.spool_dir"},
		{"spool dir with NUL", "config_version: 1\nstorage:\n  documents:\n    type: database\n    spool_dir: \"/var/t\\0mp\"\n", "NUL"},
		{"spool dir misspelt", "config_version: 1\nstorage:\n  documents:\n    type: database\n    spool_directory: /var/tmp\n", "line 5"},
		{"system file path", "config_version: 1\ndatabase:\n  sqlite:\n    system_file: ../x.db\n", "system_file"},
		{"password with spaces", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: host=x password = hunter2\n", "dsn"},
		{"quoted password", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: \"host=x password='hunter2 x'\"\n", "dsn"},
		{"url password", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: postgres://u:hunter2@h/d\n", "dsn"},
		{"unparsable dsn", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: \"host=x password='hunter2\"\n", "dsn"},
		{"bad prefix", "config_version: 1\ndatabase:\n  postgres:\n    tenant_schema_prefix: T-\n", "database.postgres.tenant_schema_prefix"},
		{"long prefix", "config_version: 1\ndatabase:\n  postgres:\n    tenant_schema_prefix: abcdefghijklmnopqrstuvwxyz\n", "database.postgres.tenant_schema_prefix"},
		{"prefix of bootstrap schema", "config_version: 1\ndatabase:\n  postgres:\n    tenant_schema_prefix: docex_\n", "database.postgres.tenant_schema_prefix"},
		{"prefix of the job schema", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: docex_system\ndatabase:\n  postgres:\n    tenant_schema_prefix: docex_system_j\n", "database.postgres.tenant_schema_prefix"},
		{"pg_ schema", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: pg_docex\n", "multi_tenancy.bootstrap_tenant.schema"},
		// Overlapping data paths (a sweep of one store would delete the other's files).
		{"content = sqlite data", "config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data\n", "storage.documents.path"},
		{"content = sqlite tenants", "config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data/tenants\n", "storage.documents.path"},
		{"content inside sqlite tenants", "config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data/tenants/c\n", "storage.documents.path"},
		{"content contains sqlite data", "config_version: 1\ndatabase:\n  sqlite:\n    path: data/db\nstorage:\n  documents:\n    path: data\n", "storage.documents.path"},
		{"content = system file", "config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data/system.db\n", "storage.documents.path"},
		{"cache = content", "config_version: 1\nstorage:\n  documents:\n    path: c\nsandbox:\n  cache_dir: c\n", "sandbox.cache_dir"},
		{"cache inside content", "config_version: 1\nstorage:\n  documents:\n    path: c\nsandbox:\n  cache_dir: c/wasm\n", "sandbox.cache_dir"},
		{"content inside cache", "config_version: 1\nstorage:\n  documents:\n    path: /w/c\nsandbox:\n  cache_dir: /w\n", "sandbox.cache_dir"},
		{"cache = sqlite data, absolute", "config_version: 1\ndatabase:\n  sqlite:\n    path: /srv/d\nsandbox:\n  cache_dir: /srv/d/tenants/..//tenants\n", "sandbox.cache_dir"},
		{"postgres content = cache", "config_version: 1\ndatabase:\n  type: postgres\nstorage:\n  documents:\n    path: x\nsandbox:\n  cache_dir: x\n", "sandbox.cache_dir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "/x")
			if !errors.Is(err, docex.ErrInvalidConfig) || !errors.Is(err, docex.ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("secret in error")
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, docex.ErrNotInitialized) {
		t.Fatalf("err = %v", err)
	}
}

// TestLoadNotAFile: Load read its file whole, so --config /dev/zero never
// returned and a huge file was read into memory; a directory or a file it
// could not read gave an untyped error. Each is docex.ErrInvalidConfig,
// naming the path once.
func TestLoadNotAFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, append([]byte("config_version: 1\n"), bytes.Repeat([]byte("# padding\n"), MaxConfigBytes/10+1)...), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{dir, "is not a regular file"},
		{big, "is larger than 1048576 bytes"},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases = append(cases, struct{ path, want string }{"/dev/zero", "is not a regular file"})
	}
	if os.Geteuid() != 0 { // root reads a file whatever its mode
		locked := filepath.Join(dir, "locked.yaml")
		if err := os.WriteFile(locked, []byte("config_version: 1\n"), 0); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ path, want string }{locked, "permission denied"})
	}
	for _, c := range cases {
		_, err := Load(c.path)
		if !errors.Is(err, docex.ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), c.path) != 1 {
			t.Errorf("Load(%s) = %v, want ErrInvalidConfig %q naming the path once", c.path, err, c.want)
		}
	}
}

func TestPostgresDSN(t *testing.T) {
	f, err := Parse([]byte("config_version: 1\ndatabase:\n  type: postgres\n"), "/x")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DOCEX_POSTGRES_DSN": "postgres://u:secret@h/db"}
	dsn, err := f.PostgresDSN(func(k string) string { return env[k] })
	if err != nil || dsn != env["DOCEX_POSTGRES_DSN"] {
		t.Fatalf("dsn %q %v", dsn, err)
	}
	if _, err := f.PostgresDSN(func(string) string { return "" }); !errors.Is(err, docex.ErrInvalidConfig) {
		t.Fatalf("empty env: %v", err)
	}
}

// Layouts that share a parent directory but not a store's own files are
// accepted, the default one included.
func TestDataPathsThatDoNotOverlap(t *testing.T) {
	for _, y := range []string{
		"config_version: 1\n",
		"config_version: 1\nstorage:\n  documents:\n    path: docex-data/content2\nsandbox:\n  cache_dir: docex-data/tenantsx\n",
		"config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: content\n",
		"config_version: 1\ndatabase:\n  type: postgres\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data/tenants\n",
		"config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    type: database\n    path: docex-data\n",
	} {
		if _, err := Parse([]byte(y), "/x"); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

func TestDSNHasPassword(t *testing.T) {
	t.Setenv("PGPASSWORD", "fromenv")
	t.Setenv("PGPASSFILE", "/nonexistent")
	for dsn, want := range map[string]bool{
		"host=h user=u":                    false, // the environment's password is not in the string
		"postgres://u@h/d":                 false,
		"host=h password = x":              true,
		"postgres://u:x@h/d":               true,
		"postgres://u@h/d?password=x":      true,
		"host=h password='unterminated":    true, // unparsable: treated as secret
		"host=h application_name=password": false,
	} {
		if got := DSNHasPassword(dsn); got != want {
			t.Errorf("DSNHasPassword(%q) = %v", dsn, got)
		}
	}
}

// configLineRe finds the lines a config error names.
var configLineRe = regexp.MustCompile(`\(line (\d+)\)|at line (\d+)`)

// yamlLines returns the number of lines of data as YAML counts them: a
// line break is \n, \r\n, a lone \r, or U+0085, U+2028, U+2029.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("config_version: 1\n"))
	if data, err := os.ReadFile("../docex.yaml.example"); err == nil {
		f.Add(data)
	}
	f.Add(Generate(GenerateOptions{SingleFile: true}))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/base")
		if err != nil {
			if !errors.Is(err, docex.ErrInvalidConfig) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			// A line the error names is one of data's (when data
			// cannot put the words there itself).
			for _, m := range configLineRe.FindAllStringSubmatch(err.Error(), -1) {
				if bytes.Contains(data, []byte("line")) {
					break
				}
				if n, _ := strconv.Atoi(m[1] + m[2]); n < 1 || n > yamlLines(data) {
					t.Fatalf("error names line %d of %d: %v", n, yamlLines(data), err)
				}
			}
			return
		}
		if cfg.ConfigVersion != Version || !filepath.IsAbs(cfg.Database.SQLite.Path) || !filepath.IsAbs(cfg.Storage.Documents.Path) {
			t.Fatalf("accepted config not normalised: %+v", cfg)
		}
	})
}

func TestS3Defaults(t *testing.T) {
	f, err := Parse([]byte("config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      access_key_id_env: K\n      secret_access_key_env: S\n"), "/srv")
	if err != nil {
		t.Fatal(err)
	}
	c := f.Storage.Documents.S3
	if c.Region != "us-east-1" || c.RequestTimeoutMS != 30000 || c.PartSizeMiB != 16 || c.SpoolDir != "/srv/docex-data/s3-spool" || c.PathStyle {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestValueErrorsNameLines: an error about a value written in the file
// names the key's line, as unknown keys and wrong types do ("config key
// PATH (line N): ..."); before, every check after decoding (versions,
// ranges, enumerations, overlapping paths) named the key without its line.
// A key that is absent (a default, a missing required value) has no line.
func TestValueErrorsNameLines(t *testing.T) {
	s3 := "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"version", "config_version: 2\n", "config key config_version (line 1): 2 is not supported (this binary reads 1)"},
		{"version after a comment", "# docex\n\nconfig_version: 9\n", "config key config_version (line 3): 9 is not supported"},
		{"version 0", "config_version: 0\n", "config key config_version (line 1): 0 is not supported"},
		{"memory pages", "config_version: 1\nsandbox: {max_memory_pages: 70000}\n", "config key sandbox.max_memory_pages (line 2): 70000 is more than 65536 (4 GiB)"},
		{"synchronous", "config_version: 1\ndatabase:\n  sqlite:\n    synchronous: fast\n", `config key database.sqlite.synchronous (line 4): "fast": want full or normal`},
		{"pool size", "config_version: 1\nsandbox:\n  cache_dir: wc\n  pool_size: -1\n", "config key sandbox.pool_size (line 4): -1 is negative"},
		{"database type", "config_version: 1\ndatabase:\n  type: mysql\n", `config key database.type (line 3): "mysql": want sqlite or postgres`},
		{"strategy", "config_version: 1\nmulti_tenancy:\n  isolation_strategy: row\n", `config key multi_tenancy.isolation_strategy (line 3): "row" is planned`},
		{"document bytes", "config_version: 1\nstorage:\n  documents:\n    max_document_bytes: -5\n", "config key storage.documents.max_document_bytes (line 4): negative"},
		// More than 10,000 parts of part_size_mib: staged, never uploaded
		// (accepted before).
		{"document bytes over s3 parts", "config_version: 1\nstorage:\n  documents:\n    max_document_bytes: 52428800001\n    type: s3\n    s3:\n      bucket: docex\n      part_size_mib: 5\n",
			"config key storage.documents.max_document_bytes (line 4): 52428800001 is more than S3 can take in one upload with storage.documents.s3.part_size_mib 5: at most 52428800000 (10,000 parts)"},
		{"bootstrap id", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    id: Bad!\n", "config key multi_tenancy.bootstrap_tenant.id (line 4): "},
		{"bootstrap schema", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: pg_docex\n", "config key multi_tenancy.bootstrap_tenant.schema (line 4): "},
		// Ignored on SQLite, but checked there too (docex.yaml.example).
		{"bootstrap schema sqlite", "config_version: 1\nmulti_tenancy:\n  bootstrap_tenant:\n    schema: Bad-Name\ndatabase:\n  type: sqlite\n", "config key multi_tenancy.bootstrap_tenant.schema (line 4): "},
		{"schema prefix", "config_version: 1\ndatabase:\n  postgres:\n    tenant_schema_prefix: T-\n", "config key database.postgres.tenant_schema_prefix (line 4): "},
		{"system file", "config_version: 1\ndatabase:\n  sqlite:\n    system_file: ../x.db\n", "config key database.sqlite.system_file (line 4): "},
		{"open tenants", "config_version: 1\ndatabase:\n  sqlite:\n    max_open_tenants: -1\n", "config key database.sqlite.max_open_tenants (line 4): -1 is negative"},
		{"busy timeout", "config_version: 1\ndatabase:\n  sqlite:\n    busy_timeout_ms: -1\n", "config key database.sqlite.busy_timeout_ms (line 4): -1 is negative"},
		{"sqlite lock timeout", "config_version: 1\ndatabase:\n  sqlite:\n    lock_timeout_ms: -1\n", "config key database.sqlite.lock_timeout_ms (line 4): -1 is negative"},
		{"dsn password", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: host=x password=hunter2\n", "config key database.postgres.dsn (line 5): contains a password"},
		{"max conns", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    max_conns: -1\n", "config key database.postgres.max_conns (line 5): negative"},
		{"idle in transaction timeout", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    idle_in_transaction_timeout_ms: -1\n", "config key database.postgres.idle_in_transaction_timeout_ms (line 5): -1 is negative"},
		{"lock timeout", "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    lock_timeout_ms: -1\n", "config key database.postgres.lock_timeout_ms (line 5): -1 is negative"},
		{"storage type", "config_version: 1\nstorage:\n  documents:\n    type: ftp\n", `config key storage.documents.type (line 4): "ftp"`},
		{"unscoped", "config_version: 1\nstorage:\n  documents:\n    tenant_scoped: false\n", "config key storage.documents.tenant_scoped (line 4): false is not supported with multi-tenancy"},
		// Without multi-tenancy false changed nothing, and was accepted.
		{"unscoped single-file", "config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    type: database\n    tenant_scoped: false\n",
			"config key storage.documents.tenant_scoped (line 7): false is not supported: without multi-tenancy all content belongs to the one local store, and false would change nothing (leave the key out)"},
		{"unscoped single-tenant files", "config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    tenant_scoped: false\n", "config key storage.documents.tenant_scoped (line 6): false is not supported: without"},
		{"unscoped single-tenant postgres", "config_version: 1\nmulti_tenancy: {enabled: false}\ndatabase: {type: postgres}\nstorage: {documents: {tenant_scoped: false}}\n", "config key storage.documents.tenant_scoped (line 4): false is not supported: without"},
		{"part size", s3 + "      part_size_mib: 4\n", "config key storage.documents.s3.part_size_mib (line 7): 4: want 5 to 5120"},
		{"request timeout", s3 + "      request_timeout_ms: -1\n", "config key storage.documents.s3.request_timeout_ms (line 7): negative"},
		{"env name", s3 + "      access_key_id_env: K-1\n      secret_access_key_env: S\n", `config key storage.documents.s3.access_key_id_env (line 7): is not an environment variable name (a string of 3 characters, not shown`},
		{"inline secret", s3 + "      secret_access_key: hunter2\n", "config key storage.documents.s3.secret_access_key (line 7): credentials are never written"},
		{"one env name", s3 + "      access_key_id_env: K\n", "config key storage.documents.s3 (line 5): access_key_id_env and secret_access_key_env go together"},
		{"overlap", "config_version: 1\ndatabase:\n  sqlite:\n    path: data\nstorage:\n  documents:\n    path: data/tenants\n", "config key storage.documents.path (line 7): "},
		{"overlap with a default", "config_version: 1\nstorage:\n  documents:\n    path: docex-data/wasm-cache/c\n", "config key storage.documents.path (line 4): "},
		{"merged", "config_version: 1\nsandbox:\n  <<: {pool_size: -2}\n  cache_dir: wc\n", "config key sandbox.pool_size (line 3): -2 is negative"},
		// Absent keys have no line.
		{"missing version", "data_dir: d\n", "config key config_version: missing"},
		{"missing bucket", "config_version: 1\nstorage:\n  documents:\n    type: s3\n", "config key storage.documents.s3.bucket: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docex.yaml")
			if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if !errors.Is(err, docex.ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %q\nlacks %q", err, c.want)
			}
			if strings.HasSuffix(c.want, ": missing") || strings.HasSuffix(c.want, ": required") {
				if strings.Contains(err.Error(), "line") {
					t.Fatalf("err %q names a line for an absent key", err)
				}
			}
		})
	}

	// A File built in code has no lines.
	f := &File{Database: Database{Postgres: Postgres{DSNEnv: "DOCEX_TEST_UNSET"}}}
	if _, err := f.PostgresDSN(func(string) string { return "" }); err == nil || err.Error() != "config key database.postgres.dsn_env: environment variable DOCEX_TEST_UNSET is empty" {
		t.Fatalf("built in code: %v", err)
	}
	// A DSN pasted in place of the name is not printed: its password.
	f = &File{Database: Database{Postgres: Postgres{DSNEnv: "postgres://u:s3cret@db/x"}}}
	if _, err := f.PostgresDSN(func(string) string { return "" }); err == nil || strings.Contains(err.Error(), "s3cret") ||
		err.Error() != "config key database.postgres.dsn_env: the environment variable it names (24 bytes, not printed: not an upper-case name, it may be a DSN) is empty" {
		t.Fatalf("pasted DSN: %v", err)
	}
	// Parsed, dsn_env written on line 5.
	f, err := Parse([]byte("config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn_env: DOCEX_TEST_UNSET\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.PostgresDSN(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "config key database.postgres.dsn_env (line 5): environment variable DOCEX_TEST_UNSET is empty") {
		t.Fatalf("parsed: %v", err)
	}
}

// wholeNumberKeys returns the dotted path of every whole-number key.
func wholeNumberKeys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		switch t.Kind() {
		case reflect.Struct:
			for f := range t.Fields() {
				if k, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); k != "" && k != "-" && f.IsExported() {
					walk(f.Type, strings.TrimPrefix(prefix+"."+k, "."))
				}
			}
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32:
			out = append(out, prefix)
		}
	}
	walk(reflect.TypeFor[File](), "")
	return out
}

// TestMisreadValuesRefused: values the loader read otherwise than
// written, or accepted and then failed with later (a wrapped-around
// duration, a truncated pool size, a system file the SQLite backend
// refuses naming no key, a NUL byte in a path), are errors naming their
// key and line. Each case was accepted by the old code.
func TestMisreadValuesRefused(t *testing.T) {
	keys := wholeNumberKeys()
	if len(keys) != 22 {
		t.Fatalf("whole-number keys %v: a new one?", keys)
	}
	for _, k := range keys {
		for _, c := range []struct{ value, tip string }{
			{"0x10", "write it as 16"}, {"0o17", "write it as 15"}, {"0b11", "write it as 3"},
			{"1_000", "write it as 1000"}, {"+1", "write it as 1"}, {"010", "write it without leading zeros"},
		} {
			y, line := nested(k, c.value)
			w := "a whole number"
			if k == "sandbox.max_memory_pages" {
				w += ", 0 or more"
			}
			want := fmt.Sprintf("config key %s (line %d): want %s, got %s: %s", k, line, w, c.value, c.tip)
			if _, err := Parse([]byte(y), "/x"); !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != want {
				t.Errorf("%q:\n got  %v\n want %s", y, err, want)
			}
		}
	}
	pg := "config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n"
	s3 := "config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n"
	cases := []struct{ name, yaml, want string }{
		// Keys without a name, which the decoder skipped.
		{"null key", "config_version: 1\n~: x\n", "config (line 2): a key without a name"},
		{"null section", "config_version: 1\nnull: {pool_size: 1}\n", "config (line 2): a key without a name"},
		{"explicit null key", "config_version: 1\n? ~\n: x\n", "config (line 2): a key without a name"},
		{"empty key", "config_version: 1\nsandbox:\n  \"\": 1\n", "config (line 3): a key without a name"},
		// Durations a time.Duration cannot hold.
		{"busy timeout", "config_version: 1\ndatabase:\n  sqlite:\n    busy_timeout_ms: 9223372036854775807\n",
			"config key database.sqlite.busy_timeout_ms (line 4): 9223372036854775807 is more than 9223372036854 (about 292 years)"},
		{"sqlite lock timeout", "config_version: 1\ndatabase:\n  sqlite:\n    lock_timeout_ms: 9223372036855\n",
			"config key database.sqlite.lock_timeout_ms (line 4): 9223372036855 is more than 9223372036854 (about 292 years)"},
		{"plugin timeout", "config_version: 1\nsandbox:\n  max_timeout_ms: 9223372036855\n",
			"config key sandbox.max_timeout_ms (line 3): 9223372036855 is more than 9223372036854 (about 292 years)"},
		{"init timeout", "config_version: 1\nsandbox:\n  init_timeout_ms: 9223372036855\n", "config key sandbox.init_timeout_ms (line 3): "},
		{"idle ttl", "config_version: 1\nsandbox:\n  idle_ttl_ms: 9223372036855\n", "config key sandbox.idle_ttl_ms (line 3): "},
		{"s3 timeout", s3 + "      request_timeout_ms: 9223372036855\n", "config key storage.documents.s3.request_timeout_ms (line 7): "},
		// A code budget smaller than one plugin's machine code may be.
		{"code budget", "config_version: 1\nsandbox:\n  max_compiled_code_bytes: 1\n",
			"config key sandbox.max_compiled_code_bytes (line 3): 1 is less than 167772160 (160 MiB), the estimated machine code one plugin may have"},
		// The pool size is an int32.
		{"max conns", pg + "    max_conns: 4294967297\n", "config key database.postgres.max_conns (line 5): 4294967297 is more than 2147483647"},
		// PostgreSQL's timeouts are int32 milliseconds.
		{"idle in transaction timeout", pg + "    idle_in_transaction_timeout_ms: 2147483648\n", "config key database.postgres.idle_in_transaction_timeout_ms (line 5): 2147483648 is more than 2147483647 (about 24 days, PostgreSQL's limit)"},
		{"lock timeout", pg + "    lock_timeout_ms: 2147483648\n", "config key database.postgres.lock_timeout_ms (line 5): 2147483648 is more than 2147483647"},
		// File names the SQLite backend refuses.
		{"hidden system file", "config_version: 1\ndatabase:\n  sqlite:\n    system_file: .x.db\n",
			`config key database.sqlite.system_file (line 4): ".x.db" must be a plain file name, not starting with a dot`},
		{"dot system file", "config_version: 1\ndatabase:\n  sqlite:\n    system_file: .\n", `config key database.sqlite.system_file (line 4): "." must be`},
		{"dot-dot system file", "config_version: 1\ndatabase:\n  sqlite:\n    system_file: ..\n", "config key database.sqlite.system_file (line 4): \"..\" must be"},
		// A NUL byte in a path.
		{"nul data dir", "config_version: 1\ndata_dir: \"a\\0b\"\n", `config key data_dir (line 2): "/x/a\x00b" contains a NUL byte`},
		{"nul cache dir", "config_version: 1\nsandbox:\n  cache_dir: \"c\\0\"\n", "config key sandbox.cache_dir (line 3): "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "/x")
			if !errors.Is(err, docex.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err %v\nwant %s", err, c.want)
			}
		})
	}
	// The largest values that fit are accepted.
	y := "config_version: 1\ndatabase:\n  type: postgres\n  sqlite:\n    busy_timeout_ms: 9223372036854\n    lock_timeout_ms: 9223372036854\n  postgres:\n    max_conns: 2147483647\n    idle_in_transaction_timeout_ms: 2147483647\n    lock_timeout_ms: 2147483647\n"
	if _, err := Parse([]byte(y), "/x"); err != nil {
		t.Fatal(err)
	}
}

// TestIgnoredSectionRefused: a storage.documents.s3 section that the
// storage type does not read (type filesystem, the default, or database)
// is an error naming the section and its line. Before, it was ignored
// silently: a user who forgot type: s3 kept content on local disk,
// believing it went to S3.
func TestIgnoredSectionRefused(t *testing.T) {
	s3 := "    s3:\n      bucket: docex-prod\n      region: eu-west-1\n"
	cases := []struct{ name, yaml, want string }{
		{"type left out", "config_version: 1\nstorage:\n  documents:\n" + s3,
			"config key storage.documents.s3 (line 4): storage.documents.s3 is set but storage.documents.type is filesystem: add type: s3, or remove the s3 section"},
		{"filesystem", "config_version: 1\nstorage:\n  documents:\n    type: filesystem\n    path: content\n" + s3,
			"config key storage.documents.s3 (line 6): storage.documents.s3 is set but storage.documents.type is filesystem: add type: s3, or remove the s3 section"},
		{"database", "config_version: 1\nmulti_tenancy:\n  enabled: false\nstorage:\n  documents:\n    type: database\n" + s3,
			"config key storage.documents.s3 (line 7): storage.documents.s3 is set but storage.documents.type is database: add type: s3, or remove the s3 section"},
		{"empty section", "config_version: 1\nstorage:\n  documents:\n    s3: {}\n",
			"config key storage.documents.s3 (line 4): storage.documents.s3 is set but storage.documents.type is filesystem: add type: s3, or remove the s3 section"},
		{"merged in", "config_version: 1\nstorage:\n  documents:\n    <<: {s3: {bucket: b}}\n",
			"config key storage.documents.s3 (line 4): storage.documents.s3 is set but storage.documents.type is filesystem: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "/x")
			if !errors.Is(err, docex.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err %v\nwant %s", err, c.want)
			}
		})
	}
	// A postgres section with database.type left out (sqlite, the
	// default): the file seems to configure PostgreSQL and would read none
	// of it.
	for _, y := range []string{
		"config_version: 1\ndatabase:\n  postgres:\n    dsn_env: PG\n",
		"config_version: 1\ndatabase:\n  sqlite:\n    path: d\n  postgres: {}\n",
		"config_version: 1\ndatabase:\n  <<: {postgres: {dsn: host=x}}\n",
	} {
		_, err := Parse([]byte(y), "/x")
		if want := "config key database.postgres (line "; !errors.Is(err, docex.ErrInvalidConfig) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "add type: postgres") {
			t.Errorf("%q: %v, want %s", y, err, want)
		}
	}
	// With type s3 the section is read; and the database sections stay
	// as docex.yaml.example shows them, both written whatever the type
	// (database.sqlite.path is data_dir's default on every backend).
	for _, y := range []string{
		"config_version: 1\nstorage:\n  documents:\n    type: s3\n" + s3,
		"config_version: 1\ndatabase:\n  type: sqlite\n  postgres:\n    dsn_env: PG\n    max_conns: 8\n",
		"config_version: 1\ndatabase:\n  type: postgres\n  sqlite:\n    path: data\n    synchronous: full\n",
	} {
		if _, err := Parse([]byte(y), "/x"); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

// TestEmptyValuesRefused: a key written without a value (nothing after the
// colon, ~, null, !!null) is an error naming the key and its line. Before,
// the decoder read it as if the key were not there: enabled: took the
// default true, pool_size: ~ the sandbox's default, database: ~ every
// database default, and config_version: ~ failed with "0 is not
// supported". An empty text written in quotes ("") stays a value
// (docex.yaml.example writes dsn: "").
func TestEmptyValuesRefused(t *testing.T) {
	const tip = "no value: leave the key out for the default"
	cases := []struct{ yaml, want string }{
		{"config_version: 1\nmulti_tenancy:\n  enabled:\n", "config key multi_tenancy.enabled (line 3): " + tip},
		{"config_version: 1\nmulti_tenancy:\n  enabled: ~\n", "config key multi_tenancy.enabled (line 3): " + tip},
		{"config_version: 1\nmulti_tenancy:\n  enabled: null\n", "config key multi_tenancy.enabled (line 3): " + tip},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!null\n", "config key multi_tenancy.enabled (line 3): " + tip},
		{"config_version: 1\nsandbox:\n  pool_size: ~\n", "config key sandbox.pool_size (line 3): " + tip},
		{"config_version: 1\ndatabase: ~\n", "config key database (line 2): " + tip},
		{"config_version: 1\ndatabase:\n", "config key database (line 2): " + tip},
		{"config_version: 1\ndatabase:\n  sqlite:\n    path: ~\n", "config key database.sqlite.path (line 4): " + tip},
		{"config_version: 1\nstorage:\n  documents:\n    type:\n", "config key storage.documents.type (line 4): " + tip},
		{"config_version: 1\nsandbox: {pool_size: ~, max_timeout_ms: 5}\n", "config key sandbox.pool_size (line 2): " + tip},
		{"config_version: 1\nsandbox:\n  <<: {pool_size: ~}\n", "config key sandbox.pool_size (line 3): " + tip},
		{"config_version: ~\n", "config key config_version (line 1): no value: config_version is required; write config_version: 1"},
		{"config_version:\ndata_dir: d\n", "config key config_version (line 1): no value: config_version is required; write config_version: 1"},
		{"data_dir: d\n", "config key config_version: missing: it is required; write config_version: 1"},
		// With another error: both, in line order.
		{"config_version: 1\nsandbox:\n  pool_size: ~\n  max_timeout_ms: x\n",
			"config key sandbox.pool_size (line 3): " + tip + `; config key sandbox.max_timeout_ms (line 4): want a whole number, got "x" (text)`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "/x")
		if !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != c.want {
			t.Errorf("%q:\n got  %v\n want %s", c.yaml, err, c.want)
		}
	}
	for _, y := range []string{
		"config_version: 1\ndatabase:\n  type: postgres\n  postgres:\n    dsn: \"\"\n",
		"config_version: 1\nstorage:\n  documents:\n    type: s3\n    s3:\n      bucket: b\n      session_token_env: \"\"\n      spool_dir: ''\n",
		"config_version: 1\nsandbox: {}\n",
	} {
		if _, err := Parse([]byte(y), "/x"); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

// TestExplicitTags: a value written with an explicit tag is accepted only
// with the key's own tag and a value that tag reads as written. Otherwise
// the error names the key and its line and says what is wrong. Before,
// enabled: !!bool yes was refused with "config is not valid YAML: cannot
// decode !!str `yes` as a !!bool" (no key, no line), pool_size: !!str 5
// was told to "write it without the quotes" (there were none), !foo 5
// named a Go type, and cache_dir: !!int 5 was read as the text 5.
func TestExplicitTags(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool yes\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool yes: use true or false"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool 1\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool 1: use true or false"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!str true\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!str true: write it without the tag"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!str 'false'\n",
			`config key multi_tenancy.enabled (line 3): want true or false, got !!str "false": write it without the tag and the quotes`},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool: use true or false"},
		{"config_version: 1\nsandbox:\n  pool_size: !!str 5\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!str 5: write it without the tag"},
		{"config_version: 1\nsandbox:\n  pool_size: !!str \"5\"\n",
			`config key sandbox.pool_size (line 3): want a whole number, got !!str "5": write it without the tag and the quotes`},
		{"config_version: 1\nsandbox:\n  pool_size: !!float 5\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!float 5: write it without the tag"},
		{"config_version: 1\nsandbox:\n  pool_size: !!int x\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!int x: write it in decimal digits"},
		{"config_version: 1\nsandbox:\n  pool_size: !!int 0x10\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!int 0x10: write it as 16"},
		{"config_version: 1\nsandbox:\n  pool_size: !foo 5\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !foo 5: write it without the tag"},
		{"config_version: !!str 1\n",
			"config key config_version (line 1): want a whole number, got !!str 1: write it without the tag"},
		{"config_version: 1\nsandbox:\n  cache_dir: !!int 5\n",
			"config key sandbox.cache_dir (line 3): want text, got !!int 5: write it without the tag"},
		{"config_version: 1\nsandbox:\n  cache_dir: !!bool yes\n",
			"config key sandbox.cache_dir (line 3): want text, got !!bool yes: write it without the tag"},
		{"config_version: 1\nsandbox:\n  cache_dir: !foo x\n",
			"config key sandbox.cache_dir (line 3): want text, got !foo x: write it without the tag"},
		{"config_version: 1\nsandbox:\n  cache_dir: !!binary eA==\n",
			"config key sandbox.cache_dir (line 3): want text, got !!binary eA=="},
		{"config_version: 1\nsandbox:\n  cache_dir: !!null x\n",
			"config key sandbox.cache_dir (line 3): no value: leave the key out for the default"},
		// A section's tag is !!map; another was ignored silently.
		{"config_version: 1\nsandbox: !foo\n  pool_size: 1\n",
			"config key sandbox (line 2): want a mapping of keys, got !foo and a mapping: write it without the tag"},
		{"config_version: 1\nstorage:\n  documents: !!binary {type: database}\nbogus: 1\n",
			"config key storage.documents (line 3): want a mapping of keys, got !!binary and a mapping: write it without the tag; config key bogus (line 4): unknown key"},
		// Merged in, and with another error: each once, in line order.
		{"config_version: 1\nsandbox:\n  <<: {pool_size: !!str 5}\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!str 5: write it without the tag"},
		{"config_version: 1\nmulti_tenancy:\n  enabled: !!bool off\nsandbox:\n  pool_size: !!str 5\n  max_timeout_ms: 1.5\n",
			"config key multi_tenancy.enabled (line 3): want true or false, got !!bool off: use true or false; " +
				"config key sandbox.pool_size (line 5): want a whole number, got !!str 5: write it without the tag; " +
				"config key sandbox.max_timeout_ms (line 6): want a whole number, got 1.5"},
		{"config_version: 1\nsandbox:\n  pool_size: !!str 5\n  max_timeout_ms: x\n",
			"config key sandbox.pool_size (line 3): want a whole number, got !!str 5: write it without the tag; " +
				`config key sandbox.max_timeout_ms (line 4): want a whole number, got "x" (text)`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "/x")
		if !errors.Is(err, docex.ErrInvalidConfig) || err.Error() != c.want {
			t.Errorf("%q:\n got  %v\n want %s", c.yaml, err, c.want)
		}
	}
	// A key's own tag, with a value it reads as written, is accepted.
	for _, y := range []string{
		"config_version: !!int 1\nmulti_tenancy:\n  enabled: !!bool true\n",
		"config_version: 1\nsandbox:\n  pool_size: !!int 5\n  cache_dir: !!str 5\n",
		"config_version: 1\nsandbox: !!map\n  pool_size: 3\n",
		"config_version: 1\nsandbox:\n  cache_dir: !!str\n",
	} {
		if _, err := Parse([]byte(y), "/x"); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

// TestSpoolDir: storage.documents.spool_dir is kept (cleaned) with type
// database, a relative one taken from docex.yaml's directory; left out, it
// is empty (the system's temporary directory).
func TestSpoolDir(t *testing.T) {
	dir := t.TempDir() // absolute on every platform
	for _, c := range []struct{ yaml, want string }{
		{"config_version: 1\nstorage:\n  documents:\n    type: database\n    spool_dir: '" + dir + "/docex/../spool/'\n", filepath.Join(dir, "spool")},
		{"config_version: 1\nstorage:\n  documents:\n    type: database\n    spool_dir: spool\n", filepath.Join(dir, "spool")},
		{"config_version: 1\nstorage:\n  documents:\n    type: database\n", ""},
		{"config_version: 1\nstorage:\n  documents:\n    type: database\n    spool_dir: \"\"\n", ""},
		{"config_version: 1\n", ""},
	} {
		f, err := Parse([]byte(c.yaml), dir)
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if got := f.Storage.Documents.SpoolDir; got != c.want {
			t.Errorf("%q: spool_dir %q, want %q", c.yaml, got, c.want)
		}
	}
}
