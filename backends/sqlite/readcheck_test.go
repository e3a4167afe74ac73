package sqlite_test

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

const (
	envRegChildDir    = "DOCEX_REGCHILD_DIR"
	envRegChildOp     = "DOCEX_REGCHILD_OP" // suspend | resume | delete
	envRegChildTenant = "DOCEX_REGCHILD_TENANT"
)

// TestRegistryChild is the child process of TestReadsSeeOtherProcesses:
// it suspends, resumes or deletes a tenant and exits. It does nothing in
// a normal run.
func TestRegistryChild(t *testing.T) {
	op := os.Getenv(envRegChildOp)
	if op == "" {
		t.Skip("registry child: run by TestReadsSeeOtherProcesses only")
	}
	be, err := sqlite.Open(bgctx, sqlite.Config{Dir: os.Getenv(envRegChildDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	eng, err := engine.New(bgctx, be, engine.Config{MultiTenancy: true, BootstrapTenantID: "system", ContentStorage: engine.ContentDatabase})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	p, id := eng.Provisioner("child"), os.Getenv(envRegChildTenant)
	switch op {
	case "suspend":
		err = p.Suspend(bgctx, id)
	case "resume":
		err = p.Resume(bgctx, id)
	case "delete":
		err = p.Delete(bgctx, id)
	default:
		t.Fatalf("unknown op %q", op)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", op, id, err)
	}
}

// TestReadsSeeOtherProcesses: a tenant store of this process whose reads
// already passed the registry check (and skip it while the system
// database is unchanged) sees a suspension, resumption or deletion that
// another process commits: its next read is refused as a write would be
// (docex.ErrTenantSuspended, docex.ErrTenantUnknown), never served from
// what it held nor failing with the file gone, and the store of a tenant
// the other process did not touch keeps reading.
func TestReadsSeeOtherProcesses(t *testing.T) {
	scfg, ecfg := multi(t)
	r := openRig(t, scfg, ecfg, true)
	r.tenant("acme")
	r.tenant("beta")
	ad, bd := seed(t, r.as("acme"), "a", "acme text"), seed(t, r.as("beta"), "b", "beta text")
	open := func(id string) driver.TenantStore {
		st, err := r.be.OpenTenant(bgctx, id)
		if err != nil {
			t.Fatalf("OpenTenant(%s): %v", id, err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	sa, sb := open("acme"), open("beta")
	read := func(st driver.TenantStore, docID string) error {
		t.Helper()
		for range 3 { // the first read validates; the others reuse it
			if d, err := st.Document(bgctx, docID); err != nil {
				return err
			} else if d.ID != docID {
				t.Fatalf("Document(%s) = %+v", docID, d)
			}
		}
		_, err := st.Documents(bgctx, "", docex.Page{})
		return err
	}
	child := func(op, id string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestRegistryChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envRegChildDir+"="+scfg.Dir, envRegChildOp+"="+op, envRegChildTenant+"="+id)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child %s %s: %v\n%s", op, id, err, out)
		}
	}
	refused := func(what string, err, want error, msg string) {
		t.Helper()
		if !errors.Is(err, want) || err.Error() != msg {
			t.Errorf("%s: %v (code %s), want %q", what, err, docex.Code(err), msg)
		}
	}
	for _, st := range []struct {
		s  driver.TenantStore
		id string
	}{{sa, ad.ID}, {sb, bd.ID}} {
		if err := read(st.s, st.id); err != nil {
			t.Fatalf("read before: %v", err)
		}
	}

	child("suspend", "beta")
	refused("read of beta after another process suspended it", read(sb, bd.ID), docex.ErrTenantSuspended, `tenant "beta" is suspended`)
	if err := read(sa, ad.ID); err != nil {
		t.Fatalf("read of acme after beta's suspension: %v", err)
	}
	child("resume", "beta")
	if err := read(sb, bd.ID); err != nil {
		t.Fatalf("read of beta after another process resumed it: %v", err)
	}

	child("delete", "acme")
	refused("read of acme after another process deleted it", read(sa, ad.ID), docex.ErrTenantUnknown, `tenant "acme" was deleted since the store was opened`)
	_, err := sa.Baskets(bgctx, docex.Page{})
	refused("baskets of acme after another process deleted it", err, docex.ErrTenantUnknown, `tenant "acme" was deleted since the store was opened`)
	if err := read(sb, bd.ID); err != nil {
		t.Fatalf("read of beta after acme's deletion: %v", err)
	}
}
