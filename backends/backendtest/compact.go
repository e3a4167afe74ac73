package backendtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testCompact: compacting gives back what deletions freed, changes no
// data, covers suspended tenants, refuses what it cannot compact and is
// audited; a store of a deleted tenant refuses it.
func (f *fixture) testCompact(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	e.tenant("beta")
	a, b := e.as("acme", "admin"), e.as("beta", "admin")
	ab, bb := e.basket(a, "b"), e.basket(b, "b")
	// Random hex: PostgreSQL compresses what repeats.
	pad := func() docex.Value {
		buf := make([]byte, 8<<10)
		rand.Read(buf) //nolint:errcheck // never fails
		return docex.String(hex.EncodeToString(buf))
	}
	var docs []docex.Document
	text := map[string]string{}
	for i := range 120 {
		d := e.add(a, ab.ID, fmt.Sprintf("a%03d.txt", i), fmt.Sprintf("acme text %d", i), map[string]docex.Value{"pad": pad()})
		docs, text[d.ID] = append(docs, d), fmt.Sprintf("acme text %d", i)
	}
	bd := e.add(b, bb.ID, "b.txt", "beta text", map[string]docex.Value{"pad": pad()})
	p := e.eng.Provisioner("ops")
	for _, d := range docs[10:] {
		must(t, a.DeleteDocument(bg, d.ID))
	}
	// 110 deleted documents held 110 × 16 KiB of metadata. PostgreSQL
	// keeps deleted rows that a transaction open in the database may
	// still see (an autovacuum's ANALYZE, at a high load: CI freed 48 KiB
	// once), and frees them at a later compact (docs/jobs.md, Retention):
	// the first compact's size before to the last's after, at most 5.
	var first, rep engine.CompactReport
	for i := range 5 {
		r, err := p.Compact(bg, "acme")
		must(t, err)
		if len(r.Tenants) != 1 || r.Tenants[0].Tenant != "acme" || r.Tenants[0].BytesBefore != r.BytesBefore || r.Tenants[0].BytesAfter != r.BytesAfter {
			t.Fatalf("compact acme: %+v", r)
		}
		if i == 0 {
			first = r
		}
		if rep = r; first.BytesBefore-rep.BytesAfter >= 1<<20 {
			break
		}
		t.Logf("compact %d of acme freed %d bytes in all: again", i+1, first.BytesBefore-rep.BytesAfter)
		time.Sleep(time.Second)
	}
	if freed := first.BytesBefore - rep.BytesAfter; freed < 1<<20 {
		t.Errorf("compact acme after deleting 110 documents, 5 times: %d bytes before, %d after: freed %d, want at least 1 MiB", first.BytesBefore, rep.BytesAfter, freed)
	}
	// Nothing changed: what stayed reads back whole, the other tenant too.
	for _, d := range docs[:10] {
		got, err := a.Document(bg, d.ID)
		must(t, err)
		if got.Metadata["pad"].Str() != d.Metadata["pad"].Str() || e.read(a, d.ID) != text[d.ID] {
			t.Errorf("document %s changed by compact", d.Name)
		}
	}
	if got, err := b.Document(bg, bd.ID); err != nil || got.Metadata["pad"].Str() != bd.Metadata["pad"].Str() || e.read(b, bd.ID) != "beta text" {
		t.Errorf("beta's document after compacting acme: %v", err)
	}
	ds, err := a.Documents(bg, ab.ID, docex.Page{Limit: 1000})
	must(t, err)
	if len(ds) != 10 {
		t.Errorf("acme has %d documents after compact, want 10", len(ds))
	}

	// Every tenant, in id order, a suspended one too.
	must(t, p.Suspend(bg, "beta"))
	all, err := p.Compact(bg, "")
	must(t, err)
	var ids []string
	var before, after int64
	for _, c := range all.Tenants {
		ids, before, after = append(ids, c.Tenant), before+c.BytesBefore, after+c.BytesAfter
		if c.BytesAfter <= 0 || c.BytesAfter > c.BytesBefore {
			t.Errorf("compact all: tenant %s: %d bytes before, %d after", c.Tenant, c.BytesBefore, c.BytesAfter)
		}
	}
	if !slices.Equal(ids, []string{"acme", "beta"}) || before != all.BytesBefore || after != all.BytesAfter {
		t.Errorf("compact all: %+v, want acme and beta with the sums", all)
	}

	// Interrupted: refused, and audited all the same.
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	if _, err := p.Compact(cancelled, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("compact with ctx done: %v, want %v", err, context.Canceled)
	}

	for _, c := range []struct {
		id   string
		want error
	}{
		{"system", docex.ErrBootstrapTenant},
		{"nosuch", docex.ErrTenantNotFound},
		{"Bad!", docex.ErrInvalidID},
		{"../acme", docex.ErrInvalidID},
	} {
		rep, err := p.Compact(bg, c.id)
		if !errors.Is(err, c.want) || len(rep.Tenants) != 0 {
			t.Errorf("compact %q: %v, %+v; want %v and no tenant", c.id, err, rep, c.want)
		}
	}

	sys, err := e.be.SystemAudit(bg, docex.Page{Limit: 100})
	must(t, err)
	var audited []string
	for _, en := range sys {
		if en.Operation == "system.compact" {
			audited = append(audited, en.Target+":"+string(en.Outcome))
			if en.Target == "acme" && en.Outcome == docex.OutcomeOK {
				if v, ok := en.Detail["bytes_before"].(float64); !ok || int64(v) != rep.BytesBefore {
					t.Errorf("system.compact entry of acme: detail %v, want bytes_before %d", en.Detail, rep.BytesBefore)
				}
			}
		}
	}
	// Newest first: the four refusals, the interrupted one, all tenants,
	// acme.
	if want := []string{"../acme:error", "Bad!:error", "nosuch:error", "system:denied", ":error", ":ok", "acme:ok"}; !slices.Equal(audited, want) {
		t.Errorf("system.compact audit entries %v, want %v", audited, want)
	}

	// A store of a tenant deleted since it was opened refuses it.
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	must(t, p.Delete(bg, "acme"))
	cp, ok := st.(driver.Compactor)
	if !ok {
		t.Fatalf("%T is not a driver.Compactor", st)
	}
	if _, err := cp.Compact(bg); !errors.Is(err, docex.ErrTenantUnknown) {
		t.Errorf("compact through the store of a deleted tenant: %v, want %v", err, docex.ErrTenantUnknown)
	}
	// A deleted tenant is no longer compacted.
	all, err = p.Compact(bg, "")
	must(t, err)
	if len(all.Tenants) != 1 || all.Tenants[0].Tenant != "beta" {
		t.Errorf("compact all after deleting acme: %+v", all)
	}
}
