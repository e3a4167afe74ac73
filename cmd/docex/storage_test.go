package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docex-dev/docex/config"
)

// TestInitNeverWritesPassword: whatever form the DSN's password takes (pgx
// accepts spaces around '=' and quoted values), the docex.yaml init writes
// for it does not hold it, and init never prints it. (No server needed:
// the connection to port 1 fails, and the failed init then removes the
// docex.yaml it wrote: TestInitFailureChangesNothing.)
func TestInitNeverWritesPassword(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 port=1 user=postgres password = sekr1tpw connect_timeout=2",
		"host=127.0.0.1 port=1 user=postgres password='sekr1tpw x' connect_timeout=2",
		"postgres://postgres:sekr1tpw@127.0.0.1:1/x?connect_timeout=2",
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=2&password=sekr1tpw",
	} {
		if cfg := config.Generate(config.GenerateOptions{Backend: config.PostgresBackend, DSN: dsn}); strings.Contains(string(cfg), "sekr1tpw") {
			t.Fatalf("%q: password in the docex.yaml init writes:\n%s", dsn, cfg)
		}
		h := newHarness(t)
		r := h.run("init", "--dsn", dsn)
		if r.code == 0 || strings.Contains(r.stderr+r.stdout, "sekr1tpw") {
			t.Fatalf("%q: exit %d, output %s %s", dsn, r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(h.dir, "docex.yaml")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%q: a failed init left docex.yaml (%v)", dsn, err)
		}
		// With --json, stderr holds the error object and nothing else:
		// the note on the password is not printed (it was, before).
		r = h.run("init", "--dsn", dsn, "--json")
		var e map[string]map[string]string
		if r.code == 0 || json.Unmarshal([]byte(r.stderr), &e) != nil || e["error"]["code"] == "" {
			t.Fatalf("%q --json: exit %d, stderr %q: want one JSON error object", dsn, r.code, r.stderr)
		}
	}
}

// TestFilesArePrivate: every file docex creates is readable by its owner
// only (0600) and every directory it creates is 0700: the system database,
// the single-file database (which holds all content), tenant databases,
// content, the compilation cache and docex.yaml (issue 8: system.db and
// docex.db were created 0644).
func TestFilesArePrivate(t *testing.T) {
	for _, mode := range []string{"multi", "single"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t)
			h.env["DOCEX_USER"] = "alice"
			h.env["DOCEX_ROLES"] = "admin"
			f := h.file("in.txt", "hello")
			if mode == "single" {
				h.ok("init", "--single-file")
			} else {
				h.ok("init")
				h.ok("tenant", "create", "acme")
				h.env["DOCEX_TENANT"] = "acme"
			}
			h.ok("basket", "create", "b")
			added := documents(decode[[]added](t, h.ok("doc", "add", "b", f, "--json").stdout))
			h.ok("plugin", "install", filepath.Join("..", "..", "testplugins", "echo"))
			h.ok("run", "echo", added[0].ID)
			h.ok("gc", "--grace", "0")
			os.Remove(f)
			err := filepath.WalkDir(h.dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				if p == h.dir {
					return nil
				}
				if perm := info.Mode().Perm(); d.IsDir() && perm != 0o700 || !d.IsDir() && perm != 0o600 {
					t.Errorf("%s: mode %v", strings.TrimPrefix(p, h.dir), info.Mode())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBasketNameCannotImpersonateAnID: issue 8's impostor basket. A writer
// cannot create a basket named after another basket's id, and commands
// that take a basket name or id act on the basket with that id.
func TestBasketNameCannotImpersonateAnID(t *testing.T) {
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.env["DOCEX_TENANT"], h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "acme", "alice", "admin"
	victim := decode[struct {
		ID string `json:"id"`
	}](t, h.ok("basket", "create", "invoices", "--json").stdout)
	h.want(exitInvalid, "basket", "create", victim.ID)
	h.want(exitInvalid, "basket", "create", strings.ToUpper(victim.ID))
	f := h.file("a.txt", "a")
	added := decode[[]struct {
		Document doc `json:"document"`
	}](t, h.ok("doc", "add", victim.ID, f, "--json").stdout)
	if added[0].Document.BasketID != victim.ID {
		t.Fatalf("added to %s, want %s", added[0].Document.BasketID, victim.ID)
	}
	h.want(exitNotFound, "doc", "list", "01900000-0000-7000-8000-000000000000")
}

// TestVerify: docex verify reads back every stored object and reports the
// damaged ones with their documents (exit 1); doc cat refuses a planted
// symbolic link before printing anything (issue 8).
func TestVerify(t *testing.T) {
	h := newHarness(t)
	h.ok("init")
	h.ok("tenant", "create", "acme")
	h.ok("tenant", "create", "beta")
	h.env["DOCEX_TENANT"], h.env["DOCEX_USER"], h.env["DOCEX_ROLES"] = "acme", "alice", "admin"
	h.ok("basket", "create", "b")
	// Filesystem content is packed: "intact" and "bit rot" share the pack
	// of one add, "gone" and "linked" have a pack each.
	type addedDoc struct {
		Document doc `json:"document"`
	}
	var added []addedDoc
	for _, group := range [][]string{{"intact", "bit rot"}, {"gone"}, {"linked"}} {
		args := []string{"doc", "add", "b", "--json"}
		for _, c := range group {
			args = append(args, h.file(strings.ReplaceAll(c, " ", "_")+".txt", "content: "+c))
		}
		added = append(added, decode[[]addedDoc](t, h.ok(args...).stdout)...)
	}
	type report struct {
		Tenants []string `json:"tenants"`
		Objects int      `json:"objects"`
		Damaged []struct {
			Tenant, Checksum, Problem string
			Documents                 []string
		} `json:"damaged"`
	}
	rep := decode[report](t, h.ok("verify", "--json").stdout)
	if rep.Objects != 4 || len(rep.Damaged) != 0 || len(rep.Tenants) != 2 {
		t.Fatalf("clean verify: %+v", rep)
	}
	// pack returns the pack file holding content and where.
	pack := func(content string) (string, int) {
		var found string
		var at int
		filepath.WalkDir(filepath.Join(h.dir, "docex-data", "content"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(d.Name(), ".pack") {
				b, _ := os.ReadFile(p)
				if i := bytes.Index(b, []byte(content)); i >= 0 {
					found, at = p, i
				}
			}
			return nil
		})
		if found == "" {
			t.Fatalf("no pack holds %q", content)
		}
		return found, at
	}
	rot, at := pack("content: bit rot")
	b, _ := os.ReadFile(rot)
	b[at] ^= 0x01
	must(t, os.WriteFile(rot, b, 0o600))
	gone, _ := pack("content: gone")
	must(t, os.Remove(gone))
	linked, _ := pack("content: linked")
	must(t, os.Remove(linked))
	secret := h.file("secret", "root:x:0:0:root:/root:/bin/bash")
	must(t, os.Symlink(secret, linked))

	r := h.want(exitInternal, "verify", "--json")
	rep = decode[report](t, r.stdout)
	got := map[string]string{}
	for _, d := range rep.Damaged {
		got[d.Checksum] = d.Problem
		if len(d.Documents) != 1 || d.Tenant != "acme" {
			t.Fatalf("damaged %+v", d)
		}
	}
	if len(got) != 3 || got[added[1].Document.Checksum] != "corrupt" || got[added[2].Document.Checksum] != "missing" || got[added[3].Document.Checksum] != "corrupt" {
		t.Fatalf("damage found: %+v", rep.Damaged)
	}
	if !strings.Contains(r.stderr, `"corrupt"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
	// The error says where the list is and what to do about it.
	if e := decode[map[string]map[string]string](t, r.stderr)["error"]; strings.Contains(e["message"], "above") || !strings.Contains(e["message"], "stdout") || !strings.Contains(e["hint"], "docex doc delete") || !strings.Contains(e["hint"], "storage.documents") || !strings.Contains(e["hint"], "adding the same file again does not repair it") {
		t.Fatalf("verify --json error: %s", r.stderr)
	}
	if r := h.want(exitInternal, "verify"); !strings.Contains(r.stdout, "3 damaged") || !strings.Contains(r.stderr, "listed above") || !strings.Contains(r.stderr, "hint: ") || strings.Contains(r.stderr, "runs docex verify") {
		t.Fatalf("verify:\n%s\n%s", r.stdout, r.stderr)
	}
	h.want(exitOK, "verify", "beta")
	h.want(exitInternal, "verify", "acme")
	h.want(exitNotFound, "verify", "nope")
	// A document whose content is gone exists: reading it is damaged
	// storage (exit 1, corrupt), not "not found" (exit 3), and the hint
	// names docex verify.
	g := h.want(exitInternal, "doc", "cat", added[2].Document.ID, "--json")
	if e := decode[map[string]map[string]string](t, g.stderr)["error"]; e["code"] != "corrupt" || !strings.Contains(e["message"], "missing") || !strings.Contains(e["hint"], "docex verify") || !strings.Contains(e["hint"], "storage.documents") {
		t.Fatalf("missing content: %s", g.stderr)
	}
	c := h.want(exitInternal, "doc", "cat", added[3].Document.ID)
	if strings.Contains(c.stdout, "root:") || c.stdout != "" {
		t.Fatalf("doc cat printed %q", c.stdout)
	}
	// Damaged content of up to 1 MiB writes nothing: it is read whole and
	// checked before a byte goes out (before, the flipped bytes did, then
	// the error).
	if r := h.want(exitInternal, "doc", "cat", added[1].Document.ID); r.stdout != "" || !strings.Contains(r.stderr, "checksum") {
		t.Fatalf("doc cat of damaged content: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if out := h.ok("doc", "cat", added[0].Document.ID).stdout; out != "content: intact" {
		t.Fatalf("intact document: %q", out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
