package pgconfig

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// isolateEnv keeps pgx from finding a password outside the string under test.
func isolateEnv(t interface{ Setenv(k, v string) }) {
	for _, k := range []string{"PGPASSWORD", "PGSERVICE", "PGSSLPASSWORD"} {
		t.Setenv(k, "")
	}
	t.Setenv("PGPASSFILE", "/nonexistent/docex-test-pgpass")
	t.Setenv("PGSERVICEFILE", "/nonexistent/docex-test-pg_service.conf")
}

func TestParseDSN(t *testing.T) {
	isolateEnv(t)
	cases := []struct {
		dsn      string
		secret   bool
		password string
	}{
		{"host=h user=u dbname=d", false, ""},
		{"postgres://u@h:5432/d?sslmode=disable", false, ""},
		{"postgres://u:hunter2@h/d", true, "hunter2"},
		{"postgresql://u@h/d?password=hunter2", true, "hunter2"},
		{"host=h password=hunter2", true, "hunter2"},
		{"host=h password = hunter2", true, "hunter2"}, // spaces around '=': libpq and pgx accept them
		{"host=h password= 'RET QQQ' user=u", true, "RET QQQ"},
		{`host=h password='it\'s @127.0.0.1' user=u`, true, `it's @127.0.0.1`},
		{"postgres://u:RET%20QQQ%40x@127.0.0.1/d", true, "RET QQQ@x"},
		{"host=h sslpassword=keypass", true, ""},
		{"host=h application_name=password", false, ""},
		{"host=h options='-c password=x'", false, ""},
	}
	for _, c := range cases {
		d, err := ParseDSN(c.dsn)
		if err != nil {
			t.Fatalf("%q: %v", c.dsn, err)
		}
		if d.HasSecret != c.secret || d.Password != c.password {
			t.Errorf("%q: HasSecret=%v Password=%q, want %v %q", c.dsn, d.HasSecret, d.Password, c.secret, c.password)
		}
	}
}

func TestParseDSNIgnoresEnvironmentPassword(t *testing.T) {
	isolateEnv(t)
	t.Setenv("PGPASSWORD", "fromenv")
	d, err := ParseDSN("host=h user=u")
	if err != nil || d.HasSecret || d.Password != "fromenv" {
		t.Fatalf("%+v %v: the string has no secret, pgx would send the environment's", d, err)
	}
}

func TestUnparsableIsNotShown(t *testing.T) {
	isolateEnv(t)
	for _, dsn := range []string{"postgres://u:hunter2@h:notaport/d", "host=h password='hunter2", "host=h port=x password=hunter2"} {
		_, err := ParseDSN(dsn)
		if !errors.Is(err, ErrUnparsable) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%q: %v", dsn, err)
		}
	}
}

func TestMask(t *testing.T) {
	secret := `p@ss w'ord\x`
	for _, msg := range []string{
		"failed: " + secret + " rejected",
		"postgres://u:" + url.QueryEscape(secret) + "@h",
		"postgres://u:" + url.PathEscape(secret) + "@h",
		"password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "'",
		(&url.URL{Scheme: "postgres", User: url.UserPassword("u", secret), Host: "h"}).String(),
	} {
		got := Mask(msg, secret)
		if strings.Contains(got, "ss w") || strings.Contains(got, "p%40ss") || !strings.Contains(got, "xxxxx") {
			t.Errorf("Mask(%q) = %q", msg, got)
		}
	}
	if got := Mask("nothing here", ""); got != "nothing here" {
		t.Fatal(got)
	}
}

func TestCheckSchemas(t *testing.T) {
	for _, c := range []struct {
		boot, prefix, bad string
	}{
		{"docex_system", "docex_t_", ""},
		{"a", "t_", ""},
		{"", "docex_t_", "bootstrap_schema"},
		{"Docex", "docex_t_", "bootstrap_schema"},
		{"a;b", "docex_t_", "bootstrap_schema"},
		{"pg_docex", "docex_t_", "bootstrap_schema"},
		{strings.Repeat("a", 41), "docex_t_", "bootstrap_schema"},
		{"docex_system", "", "tenant_schema_prefix"},
		{"docex_system", "t-", "tenant_schema_prefix"},
		{"docex_system", strings.Repeat("t", 24), "tenant_schema_prefix"},
		{"docex_system", "p", "tenant_schema_prefix"},
		{"docex_system", "docex_", "tenant_schema_prefix"},
		{"docex_system", "docex_system_l", "tenant_schema_prefix"},
		{"docex_system", "docex_system_j", "tenant_schema_prefix"}, // tenant "obs" would be the job tables' schema
		{"docex_system", "docex_system_jobs", "tenant_schema_prefix"},
		{"docex_system", "docex_system_x", ""},
	} {
		err := CheckSchemas(c.boot, c.prefix)
		var se *SchemaError
		if c.bad == "" && err != nil || c.bad != "" && (!errors.As(err, &se) || se.Key != c.bad) {
			t.Errorf("CheckSchemas(%q, %q) = %v, want a %q error", c.boot, c.prefix, err, c.bad)
		}
	}
}

// FuzzDSN: the secret of any string pgx accepts is detected, and a string
// said to have none makes pgx send no password (the environment is empty).
func FuzzDSN(f *testing.F) {
	isolateEnv(f)
	for _, s := range []string{"host=h password = x", "postgres://u:p@h/d", "host=h", "postgres://h/d?password=x&sslmode=disable", `password='a\'b c'`} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, dsn, secret string) {
		d, err := ParseDSN(dsn)
		if err == nil && !d.HasSecret && d.Password != "" && !strings.Contains(dsn, "passfile") && !strings.Contains(dsn, "service") {
			t.Fatalf("%q: no secret detected, but pgx sends password %q", dsn, d.Password)
		}
		if err != nil && err != ErrUnparsable {
			t.Fatalf("error is not the fixed ErrUnparsable (it could show the string): %v", err)
		}
		if secret == "" || strings.ContainsRune(secret, 0) {
			return
		}
		// The same secret written in each form pgx reads must be found.
		kv := "host=h password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "' user=u"
		u := (&url.URL{Scheme: "postgres", User: url.UserPassword("u", secret), Host: "h", Path: "/d"}).String()
		for _, s := range []string{kv, u} {
			d, err := ParseDSN(s)
			if err != nil {
				continue
			}
			if !d.HasSecret || d.Password != secret {
				t.Fatalf("%q: HasSecret=%v Password=%q, want %q", s, d.HasSecret, d.Password, secret)
			}
			if !strings.Contains(secret, "x") && strings.Contains(Mask("error near "+secret+" in "+s, secret), secret) {
				t.Fatalf("Mask leaves %q in %q", secret, Mask("error near "+secret+" in "+s, secret))
			}
		}
	})
}
