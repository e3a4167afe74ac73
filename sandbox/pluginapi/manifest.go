package pluginapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/docex-dev/docex/internal/spell"
)

// ABIVersion is the plugin ABI implemented by this package (docs/plugin-abi.md).
const ABIVersion = 1

// ManifestFile is the manifest's file name inside a plugin directory.
const ManifestFile = "plugin.toml"

// DefaultEntry is the export a plugin's manifest names when it sets no entry.
const DefaultEntry = "docex_run"

// Size caps applied before parsing or hashing anything.
const (
	maxManifestBytes = 64 << 10
	// maxManifestNesting bounds how deep arrays and tables nest (a
	// manifest needs 2 or 3): BurntSushi/toml's cost grows with the
	// square of the nesting.
	maxManifestNesting = 16
	// MaxModuleBytes is the largest module accepted (16 MiB; the sandbox's
	// caps bound what a module of this size costs to compile, see
	// docs/sandbox.md, "Compile time").
	MaxModuleBytes = 16 << 20
)

// Capability names a group of host functions a manifest may grant.
type Capability string

// The known capabilities. Anything else in a manifest is an error.
const (
	CapLog             Capability = "log"
	CapContentRead     Capability = "content.read"
	CapMetadataRead    Capability = "metadata.read"
	CapMetadataWrite   Capability = "metadata.write"
	CapDocumentsEmit   Capability = "documents.emit"
	CapDocumentsLookup Capability = "documents.lookup"
)

// Capabilities lists every capability this ABI version understands, in a
// fixed order (the sandbox numbers them by position).
func Capabilities() []Capability {
	return []Capability{CapLog, CapContentRead, CapMetadataRead, CapMetadataWrite, CapDocumentsEmit, CapDocumentsLookup}
}

// Manifest is a parsed, validated plugin.toml. Unknown keys are rejected.
type Manifest struct {
	Name        string `toml:"name"`
	Version     string `toml:"version"`
	Description string `toml:"description"`
	ABIVersion  int    `toml:"abi_version"`
	// Module is the wasm file name, relative to the plugin directory.
	Module string `toml:"module"`
	// Entry is the exported function called per invocation, () -> i32:
	// "docex_run" (the default when empty) or "docex_run_" followed by
	// [a-z0-9_]. Several plugins can share one module (compiled once) and
	// differ by entry.
	Entry string `toml:"entry"`
	// SHA256 is the lowercase hex sha256 of the module bytes.
	SHA256       string   `toml:"sha256"`
	Capabilities []string `toml:"capabilities"`
	// AcceptedContentTypes are media-type globs ("text/*"); empty accepts all.
	// In TOML it must appear before the [limits] table.
	AcceptedContentTypes []string                 `toml:"accepted_content_types"`
	Limits               ManifestLimits           `toml:"limits"`
	Parameters           map[string]ParameterSpec `toml:"parameters"`
}

// ManifestLimits is the [limits] table; zero means default.
type ManifestLimits struct {
	MemoryPages    uint32 `toml:"memory_pages"`
	TimeoutMS      int64  `toml:"timeout_ms"`
	MaxOutputBytes int64  `toml:"max_output_bytes"`
	MaxHostCalls   int64  `toml:"max_host_calls"`
	MaxLogBytes    int64  `toml:"max_log_bytes"`
	// MaxInstructions is the instruction budget of one call (units as
	// counted by the sandbox's metering, see docs/sandbox.md).
	MaxInstructions int64 `toml:"max_instructions"`
}

func (l ManifestLimits) limits() Limits {
	return Limits{
		MemoryPages:     l.MemoryPages,
		Timeout:         time.Duration(l.TimeoutMS) * time.Millisecond,
		MaxOutputBytes:  l.MaxOutputBytes,
		MaxHostCalls:    l.MaxHostCalls,
		MaxLogBytes:     l.MaxLogBytes,
		MaxInstructions: l.MaxInstructions,
	}
}

// Has reports whether the manifest grants capability c.
func (m *Manifest) Has(c Capability) bool {
	return slices.Contains(m.Capabilities, string(c))
}

// Accepts reports whether contentType matches accepted_content_types
// (parameters such as "; charset=utf-8" are ignored; empty list accepts all).
func (m *Manifest) Accepts(contentType string) bool {
	if len(m.AcceptedContentTypes) == 0 {
		return true
	}
	mt := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	for _, p := range m.AcceptedContentTypes {
		if ok, _ := path.Match(p, mt); ok {
			return true
		}
	}
	return false
}

// ParseManifest parses and validates plugin.toml content. It returns an
// error wrapping ErrInvalidManifest for malformed TOML, an unknown key (the
// error names it), a missing or invalid field, an unknown capability or an
// unsupported abi_version. It does not check limits against ceilings (see
// Manifest.Resolve) nor the module hash. Keys are known only as spelt:
// Name or [Limits] is an unknown key.
func ParseManifest(data []byte) (*Manifest, error) {
	return parseManifest(data, false)
}

// ParseStoredManifest is ParseManifest for a manifest stored when its
// plugin was installed: a key spelt in another case that the decoder took
// for the key (Name for name), which ParseManifest once accepted, is not
// an error, so that such a plugin still runs. A plugin being installed is
// checked with ParseManifest.
func ParseStoredManifest(data []byte) (*Manifest, error) {
	return parseManifest(data, true)
}

func parseManifest(data []byte, stored bool) (m *Manifest, err error) {
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("%w: manifest is %d bytes, limit %d", ErrInvalidManifest, len(data), maxManifestBytes)
	}
	defer func() { // defence in depth: a parser bug must not crash the host
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: parser panic: %v", ErrInvalidManifest, r)
		}
	}()
	if depth, line := spell.TOMLNesting(data); depth > maxManifestNesting {
		return nil, fmt.Errorf("%w: line %d: arrays and tables nested %d deep, more than %d", ErrInvalidManifest, line, depth, maxManifestNesting)
	}
	m = new(Manifest)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(m)
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("%w: line %d: %s", ErrInvalidManifest, spell.TOMLLine(pe.Position.Line, pe.Position.Start, pe.Position.Len, data), spell.TOMLSyntax(pe.Message))
	}
	// Unknown keys first: a wrong-case key (Name) was decoded into a field,
	// and may be why a value has the wrong type.
	if und := unknownManifestKeys(md, err == nil, stored); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		hint := ""
		if len(und) == 1 { // "limits.memory_page": did you mean "memory_pages"?
			hint = spell.Suggest(und[0][len(und[0])-1], knownKeys(und[0]))
		}
		return nil, fmt.Errorf("%w: unknown key %q%s", ErrInvalidManifest, strings.Join(keys, ", "), hint)
	}
	if err != nil {
		if line, key, msg, ok := spell.TOMLTypeError(err.Error(), manifestWant); ok {
			return nil, fmt.Errorf("%w: line %d, key %s: %s", ErrInvalidManifest, line, key, msg)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	return m, nil
}

// unknownManifestKeys returns the keys of a manifest that plugin.toml does
// not define, in source order: a key is known only as spelt (the decoder
// matches keys to fields whatever their case, so Name or [Limits] were
// taken for name and [limits]); of an unknown table, only the table.
// decoded says the decoder filled the Manifest without an error, so that
// a key it left undecoded is unknown too; otherwise the decoder's error
// says what is wrong with the value. With stored, a key the decoder took
// into a field (see ParseStoredManifest) is not returned.
func unknownManifestKeys(md toml.MetaData, decoded, stored bool) []toml.Key {
	undecoded := map[string]bool{}
	if decoded {
		for _, k := range md.Undecoded() {
			undecoded[k.String()] = true
		}
	}
	var out []toml.Key
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		n := unknownDepth(k)
		if n == 0 && undecoded[k.String()] {
			n = len(k)
		}
		if n == 0 || seen[k[:n].String()] || stored && decoded && !undecoded[k.String()] {
			continue
		}
		seen[k[:n].String()] = true
		out = append(out, k[:n])
	}
	return out
}

// unknownDepth returns how many of key's parts name a key plugin.toml
// does not define (the fields of Manifest, of [limits], of a
// [parameters.NAME] table, spelt exactly), or 0.
func unknownDepth(key toml.Key) int {
	t := reflect.TypeFor[Manifest]()
	for i, part := range key {
		switch t.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(t, part)
			if !ok {
				return i + 1
			}
			t = f.Type
		case reflect.Map: // [parameters.NAME]: any name
			t = t.Elem()
		default:
			return 0 // inside a value: the decoder checks it
		}
	}
	return 0
}

// manifestWant words what a plugin.toml key wants where the plain words
// ("an array") would not say how to write it (see spell.TOMLTypeError).
func manifestWant(key, _ string) string {
	switch key {
	case "capabilities":
		return `an array of capabilities, for example capabilities = ["content.read", "metadata.write"]`
	case "accepted_content_types":
		return `an array of content types, for example accepted_content_types = ["text/*", "application/pdf"]`
	}
	return ""
}

// knownKeys returns the keys plugin.toml defines in the table that holds
// key (a key path as the TOML decoder reports it): the fields of
// Manifest, of [limits] or of a [parameters.NAME] table; none when key is
// inside a value.
func knownKeys(key toml.Key) []string {
	t := reflect.TypeFor[Manifest]()
	for _, part := range key[:len(key)-1] {
		switch t.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(t, part)
			if !ok {
				return nil
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		default:
			return nil
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return spell.FieldKeys(t, "toml")
}

// fieldByTag returns the field of struct type t whose toml key is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("toml"), ","); k == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func validName(s string) bool {
	if len(s) < 1 || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidEntry reports whether s may name a plugin's entry export:
// DefaultEntry, or "docex_run_" followed by 1-54 of [a-z0-9_].
func ValidEntry(s string) bool {
	if s == DefaultEntry {
		return true
	}
	rest, ok := strings.CutPrefix(s, DefaultEntry+"_")
	if !ok || len(rest) < 1 || len(rest) > 54 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidateEntry is the optional export that checks a plugin's parameters
// (docs/plugin-abi.md): "docex_validate" for the entry "docex_run",
// "docex_validate_NAME" for "docex_run_NAME".
const ValidateEntry = "docex_validate"

// ValidateExport returns the name of the optional export that checks the
// parameters of a plugin whose entry is entry (ValidEntry): ValidateEntry
// for DefaultEntry, "docex_validate_NAME" for "docex_run_NAME".
func ValidateExport(entry string) string {
	return ValidateEntry + strings.TrimPrefix(entry, DefaultEntry)
}

// IsValidateExport reports whether an export named s is one the sandbox
// may call to check parameters, and so must have the signature () -> i32:
// ValidateEntry, or a name starting with "docex_validate_".
func IsValidateExport(s string) bool {
	return s == ValidateEntry || strings.HasPrefix(s, ValidateEntry+"_")
}

// printable reports whether s is at most maxLen bytes of valid UTF-8
// without control characters (but newline and tab) or bidirectional
// controls (bidiControl).
func printable(s string, maxLen int) bool {
	if len(s) > maxLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || bidiControl(r) {
			return false
		}
	}
	return true
}

// bidiControl reports whether r is a bidirectional control: the
// embeddings and overrides (U+202A to U+202E) and the isolates and
// their pop (U+2066 to U+2069), which reorder the text shown after them
// (a description reading as another in plugin show, through MCP's
// list_plugins). The host's rule, tenancy.IsBidiControl (pluginapi
// imports nothing of the module; a test compares the two for every rune).
func bidiControl(r rune) bool {
	return r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// checkText returns nil when s is printable within maxLen, else an
// error naming what: for a bidirectional control, the code point
// ("description contains a bidirectional control character U+202E"),
// as a pipeline's description is refused.
func checkText(what, s string, maxLen int) error {
	if utf8.ValidString(s) {
		for _, r := range s {
			if bidiControl(r) {
				return fmt.Errorf("%s contains a bidirectional control character %U", what, r)
			}
		}
	}
	if !printable(s, maxLen) {
		return fmt.Errorf("%s: want at most %d printable characters", what, maxLen)
	}
	return nil
}

// Validate checks a manifest built or changed in code as ParseManifest
// checks a parsed one, filling in the default entry and lowering the
// sha256. It returns the reason without wrapping ErrInvalidManifest.
func (m *Manifest) Validate() error {
	if !validName(m.Name) {
		return fmt.Errorf("name %q: want 1-64 of [a-z0-9_-] starting with a letter", m.Name)
	}
	if m.Version == "" || !printable(m.Version, 64) || strings.ContainsAny(m.Version, " \n\t") {
		if err := checkText("version", m.Version, 64); err != nil && m.Version != "" {
			return err
		}
		return fmt.Errorf("version %q: want 1-64 printable characters without spaces", m.Version)
	}
	if err := checkText("description", m.Description, 4096); err != nil {
		return err
	}
	if m.ABIVersion != ABIVersion {
		return fmt.Errorf("abi_version %d is not supported (want %d)", m.ABIVersion, ABIVersion)
	}
	if m.Module == "" || len(m.Module) > 255 || !fs.ValidPath(m.Module) || m.Module == "." ||
		strings.ContainsAny(m.Module, "\\:\x00") || !printable(m.Module, 255) {
		return fmt.Errorf("module %q: want a relative file name without '..'", m.Module)
	}
	if m.Entry == "" {
		m.Entry = DefaultEntry
	}
	if !ValidEntry(m.Entry) {
		return fmt.Errorf("entry %q: want %q or %q followed by 1-54 of [a-z0-9_]", m.Entry, DefaultEntry, DefaultEntry+"_")
	}
	if len(m.SHA256) != 64 {
		return fmt.Errorf("sha256 %q: want 64 hex digits", m.SHA256)
	}
	if _, err := hex.DecodeString(m.SHA256); err != nil {
		return fmt.Errorf("sha256 %q: want 64 hex digits", m.SHA256)
	}
	m.SHA256 = strings.ToLower(m.SHA256)
	known := Capabilities()
	seen := map[string]bool{}
	for _, c := range m.Capabilities {
		if !slices.Contains(known, Capability(c)) {
			names := make([]string, len(known))
			for i, k := range known {
				names[i] = string(k)
			}
			hint := spell.Suggest(c, names)
			if hint == "" {
				hint = " (the capabilities: " + strings.Join(names, ", ") + ")"
			}
			return fmt.Errorf("unknown capability %q%s", c, hint)
		}
		if seen[c] {
			return fmt.Errorf("duplicate capability %q", c)
		}
		seen[c] = true
	}
	if len(m.AcceptedContentTypes) > 64 {
		return errors.New("accepted_content_types: at most 64 entries")
	}
	for i, p := range m.AcceptedContentTypes {
		p = strings.ToLower(strings.TrimSpace(p))
		m.AcceptedContentTypes[i] = p
		if _, err := path.Match(p, ""); err != nil || !strings.Contains(p, "/") || !printable(p, 255) {
			return fmt.Errorf("accepted_content_types: bad pattern %q: want a media type (text/plain) or a pattern (text/*)", p)
		}
		if !strings.Contains(p, "*") {
			if _, _, err := mime.ParseMediaType(p); err != nil {
				return fmt.Errorf("accepted_content_types: bad media type %q", p)
			}
		}
	}
	if err := m.Limits.limits().validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	if len(m.Parameters) > 64 {
		return errors.New("parameters: at most 64")
	}
	names := slices.Sorted(maps.Keys(m.Parameters)) // the first bad one by name, every time
	for _, name := range names {
		p := m.Parameters[name]
		if !validName(name) {
			return fmt.Errorf("parameter name %q: want 1-64 of [a-z0-9_-] starting with a letter", name)
		}
		if p.Type == "" {
			p.Type = "string"
			m.Parameters[name] = p
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("parameter %q: %w", name, err)
		}
	}
	for _, name := range names {
		p := m.Parameters[name]
		if p.LessThan == "" {
			continue
		}
		other, ok := m.Parameters[p.LessThan]
		switch {
		case p.LessThan == name:
			return fmt.Errorf("parameter %q: less_than names the parameter itself", name)
		case !ok:
			return fmt.Errorf("parameter %q: less_than names %q, which is not a parameter%s", name, p.LessThan, spell.Suggest(p.LessThan, slices.Collect(maps.Keys(m.Parameters))))
		case other.Type != "int" && other.Type != "number":
			return fmt.Errorf("parameter %q: less_than names %q, a %s parameter (want int or number)", name, p.LessThan, other.Type)
		}
	}
	return nil
}

// VerifyModule checks that module hashes to m.SHA256. It returns an error
// wrapping ErrHashMismatch if not.
func (m *Manifest) VerifyModule(module []byte) error {
	sum := sha256.Sum256(module)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return fmt.Errorf("%w: plugin %q: manifest says %s, module is %s", ErrHashMismatch, m.Name, m.SHA256, got)
	}
	return nil
}

// ReadPluginDir returns the bytes of dir/plugin.toml and of the module it
// names, confined to dir (symlinks and '..' cannot escape it) and
// size-capped (64 KiB of manifest, 16 MiB of module). It parses the manifest
// (to find the module) but does not verify the module's hash: sandbox.Sandbox.Load
// does. It returns errors wrapping ErrInvalidManifest, ErrInvalidModule (a
// module over the size cap) or the underlying fs error (fs.ErrNotExist).
func ReadPluginDir(dir string) (manifest, module []byte, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: open plugin dir: %w", err)
	}
	defer root.Close()
	raw, _, mod, err := readPluginFS(root.FS())
	return raw, mod, err
}

func readPluginFS(fsys fs.FS) (raw []byte, m *Manifest, mod []byte, err error) {
	raw, err = readCapped(fsys, ManifestFile, maxManifestBytes, ErrInvalidManifest)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sandbox: read %s: %w", ManifestFile, err)
	}
	if m, err = ParseManifest(raw); err != nil {
		return nil, nil, nil, err
	}
	if mod, err = readCapped(fsys, m.Module, MaxModuleBytes, ErrInvalidModule); err != nil {
		return nil, nil, nil, fmt.Errorf("sandbox: read module %q: %w", m.Module, err)
	}
	return raw, m, mod, nil
}

// readCapped reads name, a regular file of at most limit bytes (tooBig
// otherwise). It is checked before it is opened: opening a FIFO would wait
// for a writer.
func readCapped(fsys fs.FS, name string, limit int64, tooBig error) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		// Not os.Root's "statat NAME: no such file or directory".
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", tooBig, name)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", tooBig, name, limit)
	}
	return b, nil
}

// bidiIn reports whether s holds a bidirectional control.
func bidiIn(s string) bool { return strings.IndexFunc(s, bidiControl) >= 0 }
