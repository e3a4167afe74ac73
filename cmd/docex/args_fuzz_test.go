package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzArgs runs the CLI in-process on fuzzed command lines against a
// system with a tenant, a basket, a document (@doc in a command line), a
// plugin, a pipeline and a queued job (@job). Whatever the arguments,
// docex does not crash, every error maps to a documented exit code other
// than 1 (internal: a bad command line is never docex's own failure), a
// failure says something on stderr, and with --json the error is one
// JSON object whose kind is its exit code's. Command lines that would
// block or reach outside the test's directory are left out: a worker or
// an MCP server (they serve until stopped), --wait, another --config, and
// any argument with a path separator.
func FuzzArgs(f *testing.F) {
	dir := f.TempDir()
	cfg := filepath.Join(dir, "docex.yaml")
	env := map[string]string{noBuiltinEnv: "1"}
	getenv := func(k string) string { return env[k] }
	doc := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(doc, []byte("hello fuzz"), 0o644); err != nil {
		f.Fatal(err)
	}
	acme := []string{"--tenant", "acme", "--user", "ann", "--roles", "admin"}
	pl := filepath.Join(dir, "p.toml")
	if err := os.WriteFile(pl, []byte("name = \"p\"\n[[steps]]\nname = \"up\"\nplugin = \"upper\"\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	setup := func(args ...string) string {
		var out, errb bytes.Buffer
		if err := runIO(context.Background(), append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb, getenv); err != nil {
			f.Fatalf("docex %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	setup("init")
	setup("tenant", "create", "acme")
	setup(append([]string{"basket", "create", "in"}, acme...)...)
	var as []added
	if err := json.Unmarshal([]byte(setup(append([]string{"doc", "add", "in", doc, "--json"}, acme...)...)), &as); err != nil || len(as) != 1 {
		f.Fatalf("doc add: %+v, %v", as, err)
	}
	setup(append([]string{"plugin", "install", "../../testplugins/upper"}, acme...)...)
	setup(append([]string{"pipeline", "create", pl}, acme...)...)
	// A job that stays queued: no worker runs in this process.
	job := strings.TrimSpace(setup(append([]string{"pipeline", "run", "p", "--doc", as[0].Document.ID, "--quiet"}, acme...)...))
	ids := strings.NewReplacer("@doc", as[0].Document.ID, "@job", job)
	for _, s := range []string{
		"",
		"--help",
		"help doc add",
		"tenant list --json",
		"tenant show acme",
		"tenant create 9bad",
		"tenant suspend nobody --json",
		"basket list --tenant acme --user ann --roles admin",
		"basket show in --tenant acme --user ann --roles reader --json",
		"basket create in --tenant acme --user ann --roles writer",
		"doc list in --tenant acme --user ann --roles reader --limit -1",
		"doc list in --tenant acme --user ann --roles reader --sort nope",
		"doc find in --meta a=1 --meta b --tenant acme --user ann --roles reader",
		"doc get 0190c1a2-0000-7000-8000-000000000000 --tenant acme --user ann --roles reader",
		"doc meta set x k=v --tenant acme --user ann --roles writer",
		"doc lineage nope --tenant acme --user ann --roles reader --json",
		"doc delete x --cascade --keep-derived --tenant acme --user ann --roles admin",
		"pipeline list --tenant acme --user ann --roles reader",
		"pipeline show nope --version 0 --tenant acme --user ann --roles reader",
		"pipeline run p --doc a,b --basket in --tenant acme --user ann --roles writer",
		"job list --state nope --tenant acme --user ann --roles reader",
		"job show x --tenant acme --user ann --roles reader --json",
		"job retry x --tenant acme --user ann --roles writer",
		"plugin list --system",
		"plugin show nope --tenant acme --user ann --roles reader",
		"run upper x --param a=b --tenant acme --user ann --roles writer",
		"audit list --limit 0 --tenant acme --user ann --roles admin",
		"audit list --system --json",
		"verify acme",
		"gc --dry-run --grace 1s",
		"--tenant acme basket list",
		"basket list --tenant acme --user ann --roles nobody",
		"basket list --tenant ACME --user ann --roles admin",
		"basket list --tenant acme --user '' --roles admin",
		"tenant delete acme",
		"--bogus",
		"doc --json",
		"basket list --limit=x --tenant acme --user ann --roles admin",
		"doc add in --tenant acme --user ann --roles writer",
		"doc add in missing.txt --tenant acme --user ann --roles writer --json",
		"doc get @doc --tenant acme --user ann --roles reader --json",
		"doc lineage @doc --tenant acme --user ann --roles reader",
		"doc meta set @doc k=1 k=2 --tenant acme --user ann --roles writer",
		"doc meta get @doc nokey --tenant acme --user ann --roles reader",
		"doc cat @doc --tenant acme --user ann --roles reader",
		"doc update @doc --tenant acme --user ann --roles writer",
		"doc delete @doc --tenant acme --user ann --roles reader",
		"doc get @doc --tenant globex --user ann --roles admin",
		"job show @job --tenant acme --user ann --roles reader --json",
		"job cancel @job --tenant acme --user ann --roles reader",
		"job retry @job --tenant acme --user ann --roles writer",
		"job list --state queued --pipeline p --tenant acme --user ann --roles reader --json",
		"pipeline run p --doc @doc,@doc --tenant acme --user ann --roles writer --quiet",
		"pipeline run p --basket in --doc @doc --tenant acme --user ann --roles writer",
		"pipeline show p --version 2 --tenant acme --user ann --roles reader",
		"pipeline delete p --tenant acme --user ann --roles admin",
		"basket bind in p --tenant acme --user ann --roles admin",
		"basket unbind in --tenant acme --user ann --roles admin --json",
		"basket create b2 --pipeline nope --tenant acme --user ann --roles admin",
		"run upper @doc --tenant acme --user ann --roles writer --json",
		"run upper @doc --param x=1 --tenant acme --user ann --roles writer",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		for i, a := range args {
			if strings.ContainsAny(a, `/\`) || strings.Contains(a, "..") || strings.Contains(a, "config") ||
				strings.Contains(a, "worker") || strings.Contains(a, "mcp") || strings.Contains(a, "wait") {
				return
			}
			args[i] = ids.Replace(a)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard, not a bound
		defer cancel()
		var out, errb bytes.Buffer
		err := runIO(ctx, append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb, getenv)
		code := exitCode(err)
		if err == nil {
			return
		}
		if code == exitInternal {
			t.Fatalf("docex %q: exit 1 (internal): %v\nstderr: %s", args, err, errb.String())
		}
		if errb.Len() == 0 {
			t.Fatalf("docex %q: exit %d with nothing on stderr", args, code)
		}
		if !hasFlag(args, "--json") {
			return
		}
		var e errorJSON
		dec := json.NewDecoder(&errb)
		if derr := dec.Decode(&e); derr != nil || dec.More() || e.Error.Kind != exitKinds[code] || e.Error.Message == "" {
			t.Fatalf("docex %q: exit %d; stderr is not one JSON error of kind %q: %v, %+v", args, code, exitKinds[code], derr, e)
		}
	})
}
