package tenancy_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/tenancy"
)

// idRule is the documented tenant id grammar (without the reserved words).
var idRule = regexp.MustCompile(`^[a-z][a-z0-9]*([-_][a-z0-9]+)*$`)

var reservedIDs = []string{
	"system", "public", "default", "admin", "root", "bootstrap", "template0",
	"template1", "information_schema", "postgres", "sqlite", "main", "temp",
	"all", "none", "null",
}

var reservedPrefixes = []string{"pg_", "pg-", "docex", "sqlite"}

func isReserved(id string) bool {
	for _, r := range reservedIDs {
		if id == r {
			return true
		}
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func TestValidateTenantID(t *testing.T) {
	valid := []string{
		"a", "acme", "acme-corp", "acme_corp", "a1", "a-1", "a_1-b", "t0", "x9y8z7",
		"abcdefghijklmnopqrstuvwxyz0123456789abcd", // 40 bytes
		"pg", "pgx", "docs", "systems", "rooted", "mainframe", "nul", "alls", "tempo",
		"sqlit", "docez", "pg0",
	}
	for _, id := range valid {
		if err := tenancy.ValidateTenantID(id); err != nil {
			t.Errorf("ValidateTenantID(%q) = %v, want nil", id, err)
		}
	}
	invalid := []string{
		"", "A", "Acme", "acmE", "1abc", "-abc", "_abc", "abc-", "abc_", "a--b", "a__b", "a-_b", "a_-b",
		"a b", "a.b", "a/b", `a\b`, "../x", "..", ".", "a:b", "a\x00b", "a\nb", "a;b", "a'b", `a"b`,
		"a%b", "a?b", "a#b", "é", "aé", "a\u0130", "ａ", // full-width a
		"abcdefghijklmnopqrstuvwxyz0123456789abcde", // 41 bytes
		strings.Repeat("a", 1000),
		"system", "public", "default", "admin", "root", "bootstrap", "template0", "template1",
		"information_schema", "postgres", "sqlite", "main", "temp", "all", "none", "null",
		"pg_x", "pg-x", "docex", "docex1", "docex-a", "sqlite3", "sqlite_master",
	}
	for _, id := range invalid {
		err := tenancy.ValidateTenantID(id)
		if err == nil {
			t.Errorf("ValidateTenantID(%q) = nil, want an error", id)
			continue
		}
		if !errors.Is(err, docex.ErrInvalidID) || !errors.Is(err, docex.ErrInvalid) {
			t.Errorf("ValidateTenantID(%q) = %v, want ErrInvalidID and ErrInvalid", id, err)
		}
		if docex.Code(err) != "invalid_id" {
			t.Errorf("Code(ValidateTenantID(%q)) = %q", id, docex.Code(err))
		}
	}
}

func TestValidateSyntaxAcceptsReserved(t *testing.T) {
	for _, id := range append(append([]string{}, reservedIDs...), "pg_x", "docex", "sqlite3") {
		if err := tenancy.ValidateSyntax(id); err != nil {
			t.Errorf("ValidateSyntax(%q) = %v, want nil (reserved ids are syntactically valid)", id, err)
		}
		if err := tenancy.ValidateTenantID(id); err == nil {
			t.Errorf("ValidateTenantID(%q) = nil, want reserved", id)
		}
	}
}

func TestValidateTenantIDErrorMessageIsBounded(t *testing.T) {
	id := strings.Repeat("\xff", 10000)
	err := tenancy.ValidateTenantID(id)
	if err == nil {
		t.Fatal("accepted")
	}
	if len(err.Error()) > 300 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}
	id = "a" + strings.Repeat("\xff", 30)
	err = tenancy.ValidateTenantID(id)
	if err == nil {
		t.Fatal("accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "\xff") {
		t.Errorf("error message contains invalid UTF-8: %q", msg)
	}
}

// checkID asserts the properties of an id in both directions: every
// accepted id satisfies the grammar and is safe as a path element and an
// identifier, and every id that satisfies the rule is accepted.
func checkID(t *testing.T, id string) {
	syntaxErr := tenancy.ValidateSyntax(id)
	err := tenancy.ValidateTenantID(id)
	ruleOK := idRule.MatchString(id) && len(id) <= tenancy.MaxTenantIDLen

	if (syntaxErr == nil) != ruleOK {
		t.Fatalf("ValidateSyntax(%q) = %v, grammar says valid=%v", id, syntaxErr, ruleOK)
	}
	if want := ruleOK && !isReserved(id); (err == nil) != want {
		t.Fatalf("ValidateTenantID(%q) = %v, want valid=%v", id, err, want)
	}
	if err != nil && !errors.Is(err, docex.ErrInvalidID) {
		t.Fatalf("ValidateTenantID(%q) = %v, not ErrInvalidID", id, err)
	}
	if syntaxErr != nil {
		if !errors.Is(syntaxErr, docex.ErrInvalidID) {
			t.Fatalf("ValidateSyntax(%q) = %v, not ErrInvalidID", id, syntaxErr)
		}
		return
	}
	// Accepted by the syntax check: safe everywhere an id is used.
	if len(id) == 0 || len(id) > 40 {
		t.Fatalf("accepted id %q has length %d", id, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			t.Fatalf("accepted id %q contains byte %q", id, c)
		}
	}
	for _, base := range []string{"/data/tenants", "tenants", `C:\data`} {
		p := filepath.Join(base, id)
		if filepath.Dir(p) != filepath.Clean(base) || filepath.Base(p) != id {
			t.Fatalf("filepath.Join(%q, %q) = %q is not a direct child", base, id, p)
		}
		if rel, err := filepath.Rel(base, p); err != nil || rel != id {
			t.Fatalf("filepath.Rel(%q, %q) = %q, %v", base, p, rel, err)
		}
	}
	// A bare SQL identifier (lowercase, no quoting needed) once '-' is
	// mapped to '_', as PostgreSQL schema names derived from the id are.
	schema := "docex_t_" + strings.ReplaceAll(id, "-", "_")
	if len(schema) > 63 {
		t.Fatalf("derived schema name %q longer than 63 bytes", schema)
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(schema) {
		t.Fatalf("derived identifier %q would need quoting", schema)
	}
}

func FuzzValidateTenantID(f *testing.F) {
	for _, s := range []string{
		"", "a", "acme", "acme-corp", "a_b-c", "A", "1a", "a-", "a--b", "a-_b", "system", "pg_x", "docex-a",
		"../etc", "a/b", "a\x00", "é", strings.Repeat("a", 40), strings.Repeat("a", 41), "a" + strings.Repeat("-b", 19),
		"abc\n", " abc", "abc ", "a.b", "a\\b", "a\u202eb", "a\u2066b",
	} {
		f.Add(s)
	}
	f.Fuzz(checkID)
}

func TestValidateTenantIDExhaustiveShort(t *testing.T) {
	// Every id of up to 3 bytes over an alphabet with every character class.
	alphabet := []byte("az09-_A. /\x00\xff")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		checkID(t, string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 3)
}

// TestDocumentedReservedPrefixes: README.md listed the reserved prefixes
// as pg_, docex and sqlite, but pg- is refused too. Every list of them in
// the docs is exactly the prefixes ValidateTenantID refuses.
func TestDocumentedReservedPrefixes(t *testing.T) {
	for _, p := range reservedPrefixes {
		if err := tenancy.ValidateTenantID(p + "x"); !errors.Is(err, docex.ErrInvalidID) {
			t.Errorf("ValidateTenantID(%q) = %v, want invalid_id", p+"x", err)
		}
	}
	want := "`" + strings.Join(reservedPrefixes, "`, `") + "`"
	for _, doc := range []string{"../README.md", "../docs/isolation.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(data)), " ")
		m := regexp.MustCompile("prefix(?:es)? \\((`pg[^)]*)\\)").FindAllStringSubmatch(text, -1)
		if len(m) == 0 {
			t.Errorf("%s lists no reserved prefixes", doc)
		}
		for _, l := range m {
			if l[1] != want {
				t.Errorf("%s lists the reserved prefixes %s, want %s", doc, l[1], want)
			}
		}
	}
}
