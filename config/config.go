package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/internal/fdlimit"
	"github.com/docex-dev/docex/internal/pgconfig"
	"github.com/docex-dev/docex/tenancy"
	"go.yaml.in/yaml/v3"
)

// Version is the config_version this binary reads.
const Version = 1

// File is docex.yaml. Field comments give the defaults applied by Load.
type File struct {
	ConfigVersion int `yaml:"config_version"`
	// DataDir is where docex keeps its files on every backend: the
	// defaults of database.sqlite.path (DataDir itself),
	// storage.documents.path (DataDir/content) and sandbox.cache_dir
	// (DataDir/wasm-cache) are under it. Default: database.sqlite.path
	// when that is set, else "docex-data".
	DataDir      string       `yaml:"data_dir"`
	MultiTenancy MultiTenancy `yaml:"multi_tenancy"`
	Database     Database     `yaml:"database"`
	Storage      Storage      `yaml:"storage"`
	Sandbox      Sandbox      `yaml:"sandbox"`

	// Dir is the directory of the file; relative paths resolve against it.
	Dir string `yaml:"-"`

	// path is the file Load read, "" for a File parsed from bytes or
	// built in code.
	path string

	// lines holds the line of each key path written in the file
	// ("sandbox.max_memory_pages"), for errors to name; nil for a File
	// built in code.
	lines map[string]int
}

// MultiTenancy is the multi_tenancy section.
type MultiTenancy struct {
	Enabled           *bool           `yaml:"enabled"`            // default true
	IsolationStrategy string          `yaml:"isolation_strategy"` // default "schema"; the only one supported today
	BootstrapTenant   BootstrapTenant `yaml:"bootstrap_tenant"`
}

// BootstrapTenant names the tenant that owns system metadata.
type BootstrapTenant struct {
	ID string `yaml:"id"` // default "system"
	// Schema is the PostgreSQL schema of the system tables, default
	// "docex_system". The SQLite backend ignores it (its system tables
	// are in the system file); Parse checks it on every backend.
	Schema string `yaml:"schema"`
}

// Database is the database section.
type Database struct {
	Type     string   `yaml:"type"` // "sqlite" (default) or "postgres"
	SQLite   SQLite   `yaml:"sqlite"`
	Postgres Postgres `yaml:"postgres"`
}

// SQLite configures the SQLite backend.
type SQLite struct {
	Path           string `yaml:"path"`             // system and tenant databases, default data_dir
	SystemFile     string `yaml:"system_file"`      // default "system.db" ("docex.db" in single-file mode)
	Synchronous    string `yaml:"synchronous"`      // "full" (default) or "normal"
	MaxOpenTenants int    `yaml:"max_open_tenants"` // 0: from the open-file limit, at most 256 (sqlite.DefaultMaxOpenTenants)
	BusyTimeoutMS  int    `yaml:"busy_timeout_ms"`  // default 5000
	// LockTimeoutMS bounds how long tenant suspend and delete wait for a
	// write of the tenant in flight (its process holds the tenant
	// database's write lock).
	LockTimeoutMS int `yaml:"lock_timeout_ms"` // default 30000
}

// Postgres configures the PostgreSQL backend. The connection string is
// given by reference: DSNEnv names an environment variable holding it. DSN
// may hold a connection string without a password.
type Postgres struct {
	DSN          string `yaml:"dsn"`
	DSNEnv       string `yaml:"dsn_env"`              // default "DOCEX_POSTGRES_DSN" when dsn is empty
	MaxConns     int    `yaml:"max_conns"`            // default 8
	SchemaPrefix string `yaml:"tenant_schema_prefix"` // default "docex_t_"; at most 23 bytes of a-z, 0-9, '_'
	// IdleInTransactionTimeoutMS: PostgreSQL ends a tenant transaction
	// idle (its client stopped between two statements) for longer.
	IdleInTransactionTimeoutMS int `yaml:"idle_in_transaction_timeout_ms"` // default 300000 (5 min), also when 0 (0 does not disable it)
	// LockTimeoutMS bounds how long tenant suspend, resume and delete wait
	// for the tenant's transactions in flight.
	LockTimeoutMS int `yaml:"lock_timeout_ms"` // default 30000, also when 0 (0 does not disable it)

}

// Storage is the storage section.
type Storage struct {
	Documents Documents `yaml:"documents"`
}

// Documents configures content storage.
type Documents struct {
	Type             string `yaml:"type"`               // "filesystem" (default), "database" or "s3"
	TenantScoped     *bool  `yaml:"tenant_scoped"`      // default true; false is refused (it would change nothing)
	Path             string `yaml:"path"`               // filesystem root, default "<data_dir>/content"
	MaxDocumentBytes int64  `yaml:"max_document_bytes"` // default 268435456 (256 MiB)
	// MaxStagedMemory bounds the content one add holds in memory before
	// writing it out (a pack, a spool file); default 16777216 (16 MiB).
	MaxStagedMemory int64 `yaml:"max_staged_memory"`
	// SpoolDir is the directory of the spool files of type database,
	// past MaxStagedMemory (relative to docex.yaml's directory), or ""
	// (the default) for the system's temporary directory ($TMPDIR).
	// Refused with another type (S3 stages in s3.spool_dir).
	SpoolDir string `yaml:"spool_dir"`
	Fsync    *bool  `yaml:"fsync"` // fsync content files; default: true unless database.sqlite.synchronous is normal
	S3       S3     `yaml:"s3"`    // with type s3
}

// S3 configures content in an S3 bucket (storage.documents.type: s3).
// Credentials are only named, never written here: the environment
// variables holding them, or, when both names are empty, the AWS SDK's
// default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared files,
// the instance role).
type S3 struct {
	Bucket             string `yaml:"bucket"`                // required; docex never creates it
	Prefix             string `yaml:"prefix"`                // key prefix, default none
	Region             string `yaml:"region"`                // default "us-east-1"
	Endpoint           string `yaml:"endpoint"`              // URL of an S3-compatible server, default AWS
	PathStyle          bool   `yaml:"path_style"`            // bucket in the path, not the host name; default false
	AccessKeyIDEnv     string `yaml:"access_key_id_env"`     // environment variable with the access key id
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"` // environment variable with the secret key
	SessionTokenEnv    string `yaml:"session_token_env"`     // environment variable with a session token, optional
	RequestTimeoutMS   int    `yaml:"request_timeout_ms"`    // default 30000
	PartSizeMiB        int    `yaml:"part_size_mib"`         // multipart part size, default 16, at least 5
	SpoolDir           string `yaml:"spool_dir"`             // staging of content over 1 MiB, default "<data_dir>/s3-spool"

	// Refused: present only to say where credentials go instead.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// Sandbox configures the plugin sandbox: the operator ceilings on what a
// plugin manifest may ask for, and the instance pools. A zero field takes
// the sandbox package's default (sandbox.DefaultCeilings and
// sandbox.Config), given in each comment.
type Sandbox struct {
	CacheDir             string `yaml:"cache_dir"`               // compilation cache, default "<data_dir>/wasm-cache"
	MaxMemoryPages       uint32 `yaml:"max_memory_pages"`        // ceiling in 64 KiB pages, default 4096 (256 MiB)
	MaxTimeoutMS         int    `yaml:"max_timeout_ms"`          // ceiling, default 60000
	MaxOutputBytes       int64  `yaml:"max_output_bytes"`        // ceiling, default 268435456 (256 MiB)
	MaxHostCalls         int64  `yaml:"max_host_calls"`          // ceiling, default 10000000
	MaxLogBytes          int64  `yaml:"max_log_bytes"`           // ceiling, default 1048576 (1 MiB)
	MaxInstructions      int64  `yaml:"max_instructions"`        // ceiling on instruction units per call, default 10^15
	InitTimeoutMS        int    `yaml:"init_timeout_ms"`         // start function + _initialize of a new instance, default 10000
	PoolSize             int    `yaml:"pool_size"`               // instances per (tenant, plugin) running at once and idle, default 4
	MaxIdleBytes         int64  `yaml:"max_idle_bytes"`          // idle instances and snapshots in all, default 536870912 (512 MiB)
	IdleTTLMS            int    `yaml:"idle_ttl_ms"`             // an idle instance or plugin snapshot unused this long is closed, default 300000 (5 min)
	MaxCompiledCodeBytes int64  `yaml:"max_compiled_code_bytes"` // estimated machine code of the loaded plugins, added up, at least 167772160 (160 MiB), default 2147483648 (2 GiB)
}

// MinCompiledCodeBytes is the least sandbox.max_compiled_code_bytes: the
// estimated machine code one plugin's module may have
// (sandbox.MaxModuleCode), so that every plugin the sandbox accepts can
// be loaded.
const MinCompiledCodeBytes = 160 << 20

// Backend types.
const (
	SQLiteBackend   = "sqlite"
	PostgresBackend = "postgres"
)

// Parse decodes and validates a docex.yaml document; dir is the directory
// relative paths resolve against. It returns an error matching
// docex.ErrInvalidConfig that names the offending key, and its line when
// the key is written in data.
func Parse(data []byte, dir string) (*File, error) {
	// The node tree gives the line of each key, and the values the
	// decoder would read otherwise than written (nodeIssues).
	var root yaml.Node
	var pre []issue
	var tagged []*yaml.Node
	if yaml.Unmarshal(data, &root) == nil {
		if err := largeMapping(&root); err != nil {
			return nil, err
		}
		pre, tagged = nodeIssues(&root)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, docex.Errorf(docex.ErrInvalidConfig, "config is empty")
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) && len(tagged) > 0 {
			// The decoder stopped at a value its explicit tag does not
			// fit ("cannot decode !!str `yes` as a !!bool"), one of
			// pre's, and reported nothing else: the other errors (an
			// unknown key, a wrong type) are those of the document
			// without the tags pre names.
			if again := untagged(data, tagged); again != nil {
				dec := yaml.NewDecoder(bytes.NewReader(again))
				dec.KnownFields(true)
				switch err2 := dec.Decode(&File{}); {
				case err2 == nil:
					return nil, issuesError(pre)
				case errors.As(err2, &te):
					err = err2
				}
			}
		}
		return nil, decodeError(&root, err, pre)
	}
	var extra yaml.Node // a node: the decoder reads no mapping into it
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "config: more than one YAML document")
	}
	if len(pre) > 0 {
		return nil, issuesError(pre)
	}
	f.Dir = dir
	f.lines = keyLines(&root)
	if err := f.normalize(); err != nil {
		return nil, err
	}
	return &f, nil
}

// MaxConfigBytes is the largest docex.yaml Load reads.
const MaxConfigBytes = 1 << 20

// Load reads and parses the file at path. It returns an error matching
// docex.ErrNotInitialized when the file does not exist, and
// docex.ErrInvalidConfig when it is invalid, is not a regular file (a
// directory, a device), cannot be read or is larger than MaxConfigBytes.
func Load(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "config path %q: %v", path, err)
	}
	// Checked before it is opened: opening a FIFO would wait for a writer.
	st, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, docex.Errorf(docex.ErrNotInitialized, "no config file at %s: docex is not initialised here", abs)
	}
	if err == nil && !st.Mode().IsRegular() {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "config %s is not a regular file", abs)
	}
	fh, err := os.Open(abs)
	if fdlimit.IsExhaustion(err) {
		return nil, fdlimit.Wrap(fmt.Errorf("cannot read config %s: %w", abs, err))
	}
	if err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "cannot read config %s: %v", abs, pathErr(err))
	}
	defer fh.Close()
	if fst, err := fh.Stat(); err != nil || !os.SameFile(st, fst) {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "config %s was replaced while being read", abs)
	}
	// One byte past the limit tells a file that is too large: a huge
	// file is never read whole.
	data, err := io.ReadAll(io.LimitReader(fh, MaxConfigBytes+1))
	if err != nil {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "cannot read config %s: %v", abs, pathErr(err))
	}
	if len(data) > MaxConfigBytes {
		return nil, docex.Errorf(docex.ErrInvalidConfig, "config %s is larger than %d bytes", abs, MaxConfigBytes)
	}
	f, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	f.path = abs
	return f, nil
}

// pathErr returns the cause of an *os.PathError (its path is named
// already), else err.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// invalid returns docex.ErrInvalidConfig naming key, and its line when
// the key is written in the file f was parsed from (the format of the
// decoder's errors: "config key sandbox.pool_size (line 12): ..."). A key
// that is absent (a default, a missing required value) has no line.
func (f *File) invalid(key, format string, args ...any) error {
	return f.KeyError(key, errors.New(fmt.Sprintf(format, args...)))
}

// KeyError returns err as an error about the value of key, a dotted path
// ("storage.documents.s3.bucket"), found when the value was used after
// Load: a backend or a store opened with it, an environment variable it
// names read. It reads as Load's errors do, "PATH: config key KEY (line
// N): ERR", with the file's path when f was loaded and the key's line when
// the key is written in the file (none for a default). The error matches
// docex.ErrInvalidConfig and whatever err matches.
func (f *File) KeyError(key string, err error) error {
	msg := keyMsg(key, f.lines[key], err.Error())
	if f.path != "" {
		msg = f.path + ": " + msg
	}
	return &keyError{key: key, msg: msg, err: err}
}

// ErrorKey returns the key (a dotted path) that err, or an error it
// wraps, is about when it comes from File.KeyError or from Load's checks
// of a key's value, else "".
func ErrorKey(err error) string {
	var ke *keyError
	if errors.As(err, &ke) {
		return ke.key
	}
	return ""
}

// Line returns the line of key, a dotted path ("database.sqlite.system_file"),
// in the file f was parsed from, or 0 when the key is not written there
// (its value is the default, or f was built in code).
func (f *File) Line(key string) int { return f.lines[key] }

// keyError is the error of File.KeyError.
type keyError struct {
	key string
	msg string
	err error
}

func (e *keyError) Error() string   { return e.msg }
func (e *keyError) Unwrap() []error { return []error{docex.ErrInvalidConfig, e.err} }

func (f *File) normalize() error {
	if f.ConfigVersion != Version {
		if _, written := f.lines["config_version"]; f.ConfigVersion == 0 && !written {
			return f.invalid("config_version", "missing: it is required; write config_version: %d", Version)
		}
		return f.invalid("config_version", "%d is not supported (this binary reads %d)", f.ConfigVersion, Version)
	}
	mt := &f.MultiTenancy
	if mt.Enabled == nil {
		t := true
		mt.Enabled = &t
	}
	switch mt.IsolationStrategy {
	case "", "schema":
		mt.IsolationStrategy = "schema"
	case "database", "row":
		return f.invalid("multi_tenancy.isolation_strategy", "%q is planned but not supported yet (use schema)", mt.IsolationStrategy)
	default:
		return f.invalid("multi_tenancy.isolation_strategy", "%q: want schema", mt.IsolationStrategy)
	}
	if mt.BootstrapTenant.ID == "" {
		mt.BootstrapTenant.ID = "system"
	}
	if err := tenancy.ValidateSyntax(mt.BootstrapTenant.ID); err != nil {
		return f.invalid("multi_tenancy.bootstrap_tenant.id", "%v", err)
	}
	if mt.BootstrapTenant.Schema == "" {
		mt.BootstrapTenant.Schema = "docex_system"
	}

	db := &f.Database
	_, pgWritten := f.lines["database.postgres"]
	switch db.Type {
	case "":
		db.Type = SQLiteBackend
	case SQLiteBackend, PostgresBackend:
	default:
		return f.invalid("database.type", "%q: want sqlite or postgres", db.Type)
	}
	switch {
	case f.DataDir != "":
	case db.SQLite.Path != "":
		f.DataDir = db.SQLite.Path
	default:
		f.DataDir = "docex-data"
	}
	f.DataDir = f.Resolve(f.DataDir)
	if db.SQLite.Path == "" {
		db.SQLite.Path = f.DataDir
	}
	db.SQLite.Path = f.Resolve(db.SQLite.Path)
	if db.SQLite.SystemFile == "" {
		db.SQLite.SystemFile = "system.db"
		if !*mt.Enabled {
			db.SQLite.SystemFile = "docex.db"
		}
	}
	if sf := db.SQLite.SystemFile; sf != filepath.Base(sf) || strings.HasPrefix(sf, ".") {
		// ".", "..", ".x.db": the SQLite backend refused them later,
		// naming no key.
		return f.invalid("database.sqlite.system_file", "%q must be a plain file name, not starting with a dot", sf)
	}
	switch db.SQLite.Synchronous {
	case "":
		db.SQLite.Synchronous = "full"
	case "full", "normal":
	default:
		return f.invalid("database.sqlite.synchronous", "%q: want full or normal", db.SQLite.Synchronous)
	}
	if db.SQLite.MaxOpenTenants < 0 {
		return f.invalid("database.sqlite.max_open_tenants", "%d is negative", db.SQLite.MaxOpenTenants)
	}
	if db.SQLite.BusyTimeoutMS < 0 {
		return f.invalid("database.sqlite.busy_timeout_ms", "%d is negative", db.SQLite.BusyTimeoutMS)
	}
	if err := f.checkMS("database.sqlite.busy_timeout_ms", db.SQLite.BusyTimeoutMS); err != nil {
		return err
	}
	if db.SQLite.LockTimeoutMS < 0 {
		return f.invalid("database.sqlite.lock_timeout_ms", "%d is negative", db.SQLite.LockTimeoutMS)
	}
	if err := f.checkMS("database.sqlite.lock_timeout_ms", db.SQLite.LockTimeoutMS); err != nil {
		return err
	}
	if db.Postgres.SchemaPrefix == "" {
		db.Postgres.SchemaPrefix = "docex_t_"
	}
	var se *pgconfig.SchemaError
	if err := pgconfig.CheckSchemas(mt.BootstrapTenant.Schema, db.Postgres.SchemaPrefix); errors.As(err, &se) {
		key := "database.postgres.tenant_schema_prefix"
		if se.Key == "bootstrap_schema" {
			key = "multi_tenancy.bootstrap_tenant.schema"
		}
		return f.invalid(key, "%q: %s", se.Value, se.Reason)
	}
	if db.Type == PostgresBackend {
		if db.Postgres.DSN == "" && db.Postgres.DSNEnv == "" {
			db.Postgres.DSNEnv = "DOCEX_POSTGRES_DSN"
		}
		if db.Postgres.DSN != "" {
			has, err := pgconfig.HasPassword(db.Postgres.DSN)
			if err != nil {
				return f.invalid("database.postgres.dsn", "%v", err)
			}
			if has {
				return f.invalid("database.postgres.dsn", "contains a password; put the DSN in an environment variable and name it with dsn_env")
			}
		}
		if db.Postgres.MaxConns < 0 {
			return f.invalid("database.postgres.max_conns", "negative")
		}
		if db.Postgres.MaxConns > math.MaxInt32 {
			// The pool's size is an int32: 4294967297 was 1.
			return f.invalid("database.postgres.max_conns", "%d is more than %d", db.Postgres.MaxConns, math.MaxInt32)
		}
		for _, k := range []struct {
			key string
			ms  int
		}{{"idle_in_transaction_timeout_ms", db.Postgres.IdleInTransactionTimeoutMS}, {"lock_timeout_ms", db.Postgres.LockTimeoutMS}} {
			switch {
			case k.ms < 0:
				return f.invalid("database.postgres."+k.key, "%d is negative", k.ms)
			case k.ms > math.MaxInt32:
				// PostgreSQL's limit on its timeouts.
				return f.invalid("database.postgres."+k.key, "%d is more than %d (about 24 days, PostgreSQL's limit)", k.ms, math.MaxInt32)
			}
		}
	}
	if _, typed := f.lines["database.type"]; pgWritten && !typed {
		// type left out means sqlite: the file would seem to configure
		// PostgreSQL while everything went into local SQLite files. With
		// type written, the other backend's section may stay (a switch of
		// type then finds it ready).
		return f.invalid("database.postgres", "database.postgres is set but database.type is not: docex would use sqlite (the default) and read none of it; add type: postgres (or type: sqlite to keep the section unread)")
	}

	d := &f.Storage.Documents
	switch d.Type {
	case "":
		d.Type = "filesystem"
	case "filesystem", "database":
	case "s3":
		if err := f.normalizeS3(&d.S3); err != nil {
			return err
		}
	default:
		return f.invalid("storage.documents.type", "%q: want filesystem, database or s3", d.Type)
	}
	if _, written := f.lines["storage.documents.s3"]; written && d.Type != "s3" {
		// Read by nothing: content would stay where type says while the
		// file seems to send it to S3.
		return f.invalid("storage.documents.s3", "storage.documents.s3 is set but storage.documents.type is %s: add type: s3, or remove the s3 section", d.Type)
	}
	if d.TenantScoped == nil {
		t := true
		d.TenantScoped = &t
	}
	if !*d.TenantScoped {
		// Read by nothing: content is scoped to its tenant (or, without
		// multi-tenancy, to the one local store) whatever the key says.
		if *mt.Enabled {
			return f.invalid("storage.documents.tenant_scoped", "false is not supported with multi-tenancy: content is always tenant-scoped")
		}
		return f.invalid("storage.documents.tenant_scoped", "false is not supported: without multi-tenancy all content belongs to the one local store, and false would change nothing (leave the key out)")
	}
	if d.Path == "" {
		d.Path = filepath.Join(f.DataDir, "content")
	}
	d.Path = f.Resolve(d.Path)
	if d.Fsync == nil {
		sync := !(db.Type == SQLiteBackend && db.SQLite.Synchronous == "normal")
		d.Fsync = &sync
	}
	if d.MaxDocumentBytes < 0 {
		return f.invalid("storage.documents.max_document_bytes", "negative")
	}
	if d.Type == "s3" {
		// S3 takes at most 10,000 parts per upload: larger content could
		// be staged but never uploaded.
		if most := int64(d.S3.PartSizeMiB) << 20 * S3MaxParts; d.MaxDocumentBytes > most {
			return f.invalid("storage.documents.max_document_bytes", "%d is more than S3 can take in one upload with storage.documents.s3.part_size_mib %d: at most %d (10,000 parts); raise part_size_mib or lower max_document_bytes", d.MaxDocumentBytes, d.S3.PartSizeMiB, most)
		}
	}
	if d.MaxStagedMemory < 0 {
		return f.invalid("storage.documents.max_staged_memory", "negative")
	}
	if d.SpoolDir != "" {
		switch {
		case d.Type == "s3":
			// Read by nothing: S3 staging has its own directory.
			return f.invalid("storage.documents.spool_dir", "not read with type s3: S3 storage stages content in storage.documents.s3.spool_dir (default <data_dir>/s3-spool); remove it")
		case d.Type != "database":
			// Read by nothing: filesystem content spills into packs.
			return f.invalid("storage.documents.spool_dir", "not read with type %s (it spills staged content into pack files under storage.documents.path): remove it, or set type: database", d.Type)
		}
		// Relative to docex.yaml's directory, as every path key.
		d.SpoolDir = f.Resolve(d.SpoolDir)
		if abs, err := filepath.Abs(d.SpoolDir); err == nil {
			d.SpoolDir = abs
		}
	}

	s := &f.Sandbox
	if s.CacheDir == "" {
		s.CacheDir = filepath.Join(f.DataDir, "wasm-cache")
	}
	s.CacheDir = f.Resolve(s.CacheDir)
	// Zero fields stay zero: the sandbox applies its own defaults.
	if s.MaxMemoryPages > 65536 {
		return f.invalid("sandbox.max_memory_pages", "%d is more than 65536 (4 GiB)", s.MaxMemoryPages)
	}
	for _, n := range []struct {
		key string
		v   int64
	}{
		{"sandbox.max_timeout_ms", int64(s.MaxTimeoutMS)}, {"sandbox.max_output_bytes", s.MaxOutputBytes},
		{"sandbox.max_host_calls", s.MaxHostCalls}, {"sandbox.max_log_bytes", s.MaxLogBytes},
		{"sandbox.max_instructions", s.MaxInstructions}, {"sandbox.init_timeout_ms", int64(s.InitTimeoutMS)},
		{"sandbox.pool_size", int64(s.PoolSize)}, {"sandbox.max_idle_bytes", s.MaxIdleBytes}, {"sandbox.idle_ttl_ms", int64(s.IdleTTLMS)},
		{"sandbox.max_compiled_code_bytes", s.MaxCompiledCodeBytes},
	} {
		if n.v < 0 {
			return f.invalid(n.key, "%d is negative", n.v)
		}
	}
	if v := s.MaxCompiledCodeBytes; v > 0 && v < MinCompiledCodeBytes {
		return f.invalid("sandbox.max_compiled_code_bytes", "%d is less than %d (160 MiB), the estimated machine code one plugin may have", v, int64(MinCompiledCodeBytes))
	}
	for _, n := range []struct {
		key string
		ms  int
	}{{"sandbox.max_timeout_ms", s.MaxTimeoutMS}, {"sandbox.init_timeout_ms", s.InitTimeoutMS}, {"sandbox.idle_ttl_ms", s.IdleTTLMS}} {
		if err := f.checkMS(n.key, n.ms); err != nil {
			return err
		}
	}
	// A NUL byte in a path fails every file operation, as an internal
	// error. A key written in the file is named first (a default path
	// holds data_dir's NUL byte).
	paths := []struct{ key, path string }{
		{"data_dir", f.DataDir}, {"database.sqlite.path", db.SQLite.Path}, {"database.sqlite.system_file", db.SQLite.SystemFile},
		{"storage.documents.path", d.Path}, {"storage.documents.spool_dir", d.SpoolDir}, {"storage.documents.s3.spool_dir", d.S3.SpoolDir}, {"sandbox.cache_dir", s.CacheDir},
	}
	for _, written := range []bool{true, false} {
		for _, p := range paths {
			if _, w := f.lines[p.key]; w == written && strings.ContainsRune(p.path, 0) {
				return f.invalid(p.key, "%q contains a NUL byte", p.path)
			}
		}
	}
	return f.checkPaths()
}

// maxMS is the most milliseconds a time.Duration holds (about 292 years).
const maxMS = math.MaxInt64 / int64(time.Millisecond)

// checkMS refuses a number of milliseconds at key that a time.Duration
// cannot hold: it would wrap around to a negative duration (busy_timeout_ms:
// 9223372036854775807 became the default 5 s).
func (f *File) checkMS(key string, ms int) error {
	if int64(ms) > maxMS {
		return f.invalid(key, "%d is more than %d (about 292 years)", ms, maxMS)
	}
	return nil
}

// checkPaths refuses data paths that overlap. Each store owns its files:
// the SQLite backend the tenants directory and the system file in
// database.sqlite.path, filesystem content storage.documents.path, the
// plugin sandbox sandbox.cache_dir. No two of them may be equal or nested
// either way, or a sweep of one store could delete another's files. (The
// data directory itself may hold the others: that is the default layout.)
func (f *File) checkPaths() error {
	type area struct{ key, path string }
	var areas []area
	if db := f.Database; db.Type == SQLiteBackend {
		areas = append(areas,
			area{"database.sqlite.path", filepath.Join(db.SQLite.Path, "tenants")},
			area{"database.sqlite.system_file", filepath.Join(db.SQLite.Path, db.SQLite.SystemFile)})
	}
	if d := f.Storage.Documents; d.Type == "filesystem" {
		areas = append(areas, area{"storage.documents.path", d.Path})
	}
	areas = append(areas, area{"sandbox.cache_dir", f.Sandbox.CacheDir})
	for i, a := range areas {
		for _, b := range areas[:i] {
			if overlaps(a.path, b.path) {
				if _, written := f.lines[a.key]; !written {
					if _, written := f.lines[b.key]; written {
						a, b = b, a // name the key written in the file
					}
				}
				return f.invalid(a.key, "%s overlaps %s (%s): each store needs a directory of its own, or cleaning up one could delete the other's files", a.path, b.key, b.path)
			}
		}
	}
	return nil
}

// overlaps reports whether two clean absolute paths are equal or one is
// inside the other.
func overlaps(a, b string) bool {
	inside := func(p, dir string) bool {
		return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
	}
	return inside(a, b) || inside(b, a)
}

var (
	envNameRule = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// conventionalEnvName is a name that is safe to print: at most 64
	// upper-case letters, digits and underscores. A valid name beyond
	// that may be a credential pasted in its place (an AWS secret key
	// can be letters and digits only).
	conventionalEnvName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,63}$`)
)

// S3EnvName returns how messages name the environment variable name
// that storage.documents.s3.<key> (access_key_id_env,
// secret_access_key_env, session_token_env) holds: the name when it is a
// conventional one (at most 64 upper-case letters, digits and
// underscores), else "the variable storage.documents.s3.<key> names", so
// that a credential pasted in place of a name is never printed.
func S3EnvName(key, name string) string {
	if conventionalEnvName.MatchString(name) {
		return name
	}
	return "the variable storage.documents.s3." + key + " names"
}

// PostgresEnvName returns how messages name the environment variable
// that database.postgres.dsn_env holds: the name when it is a
// conventional one (at most 64 upper-case letters, digits and
// underscores), else "the variable database.postgres.dsn_env names", so
// that a DSN pasted in place of a name is never printed.
func PostgresEnvName(name string) string {
	if conventionalEnvName.MatchString(name) {
		return name
	}
	return "the variable database.postgres.dsn_env names"
}

// S3MaxParts is S3's limit of parts per multipart upload: with
// storage.documents.type s3, max_document_bytes is at most part_size_mib
// MiB times it.
const S3MaxParts = 10000

func (f *File) normalizeS3(c *S3) error {
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		key := "storage.documents.s3.access_key_id"
		if c.SecretAccessKey != "" {
			key = "storage.documents.s3.secret_access_key"
		}
		return f.invalid(key, "credentials are never written in docex.yaml: name the environment variables that hold them with access_key_id_env and secret_access_key_env (or leave both out for the AWS SDK's default chain)")
	}
	if c.Bucket == "" {
		return f.invalid("storage.documents.s3.bucket", "required with storage.documents.type s3")
	}

	if (c.AccessKeyIDEnv == "") != (c.SecretAccessKeyEnv == "") {
		return f.invalid("storage.documents.s3", "access_key_id_env and secret_access_key_env go together (or neither, for the AWS SDK's default chain)")
	}
	for key, v := range map[string]string{"access_key_id_env": c.AccessKeyIDEnv, "secret_access_key_env": c.SecretAccessKeyEnv, "session_token_env": c.SessionTokenEnv} {
		if v != "" && !envNameRule.MatchString(v) {
			// Never printed: it may be the credential itself.
			return f.invalid("storage.documents.s3."+key, "is not an environment variable name (a string of %d characters, not shown: it may be a credential pasted in place of the name of the variable that holds it); want letters, digits and underscores, not starting with a digit, at most 128", len(v))
		}
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.RequestTimeoutMS == 0 {
		c.RequestTimeoutMS = 30000
	}
	if c.RequestTimeoutMS < 0 {
		return f.invalid("storage.documents.s3.request_timeout_ms", "negative")
	}
	if err := f.checkMS("storage.documents.s3.request_timeout_ms", c.RequestTimeoutMS); err != nil {
		return err
	}
	if c.PartSizeMiB == 0 {
		c.PartSizeMiB = 16
	}
	if c.PartSizeMiB < 5 || c.PartSizeMiB > 5120 {
		return f.invalid("storage.documents.s3.part_size_mib", "%d: want 5 to 5120", c.PartSizeMiB)
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(f.DataDir, "s3-spool")
	}
	c.SpoolDir = f.Resolve(c.SpoolDir)
	return nil
}

// Resolve returns p made absolute against the file's directory.
func (f *File) Resolve(p string) string {
	if filepath.IsAbs(p) || f.Dir == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(f.Dir, p)
}

// MultiTenant reports whether multi-tenancy is enabled.
func (f *File) MultiTenant() bool { return f.MultiTenancy.Enabled == nil || *f.MultiTenancy.Enabled }

// PostgresDSN returns the PostgreSQL connection string: the environment
// variable named by dsn_env, else dsn. It returns docex.ErrInvalidConfig
// when neither gives one. The DSN is a secret: never print it.
func (f *File) PostgresDSN(getenv func(string) string) (string, error) {
	p := f.Database.Postgres
	if p.DSNEnv != "" {
		if v := getenv(p.DSNEnv); v != "" {
			return v, nil
		}
		if p.DSN == "" {
			// A DSN pasted in place of the name holds its password:
			// only a conventional name is printed.
			if !conventionalEnvName.MatchString(p.DSNEnv) {
				return "", f.invalid("database.postgres.dsn_env", "the environment variable it names (%d bytes, not printed: not an upper-case name, it may be a DSN) is empty", len(p.DSNEnv))
			}
			return "", f.invalid("database.postgres.dsn_env", "environment variable %s is empty", p.DSNEnv)
		}
	}
	return p.DSN, nil
}

// S3Credentials returns the S3 access key id, secret key and session
// token held by the environment variables storage.documents.s3 names, or
// three empty strings when it names none (the AWS SDK's default chain
// applies then). It returns docex.ErrInvalidConfig, naming the key of the
// variable and its line, when the variable named for the key id or the
// secret key is empty. The values are secrets: never print them.
func (f *File) S3Credentials(getenv func(string) string) (id, secret, token string, err error) {
	c := f.Storage.Documents.S3
	if c.AccessKeyIDEnv == "" && c.SecretAccessKeyEnv == "" {
		return "", "", "", nil
	}
	id, secret = getenv(c.AccessKeyIDEnv), getenv(c.SecretAccessKeyEnv)
	for _, v := range []struct{ key, name, value string }{
		{"access_key_id_env", c.AccessKeyIDEnv, id}, {"secret_access_key_env", c.SecretAccessKeyEnv, secret},
	} {
		if v.value == "" {
			return "", "", "", f.invalid("storage.documents.s3."+v.key, "environment variables %s and %s must both be set: %s is empty",
				S3EnvName("access_key_id_env", c.AccessKeyIDEnv), S3EnvName("secret_access_key_env", c.SecretAccessKeyEnv), S3EnvName(v.key, v.name))
		}
	}
	if c.SessionTokenEnv != "" {
		token = getenv(c.SessionTokenEnv)
	}
	return id, secret, token, nil
}

// DSNHasPassword reports whether a URL or keyword/value PostgreSQL
// connection string itself carries a password, as pgx parses it (a
// password pgx would read from the environment or a password file does not
// count). A string pgx cannot parse counts as carrying one, so that it is
// never written or shown.
func DSNHasPassword(dsn string) bool {
	has, err := pgconfig.HasPassword(dsn)
	return has || err != nil
}
