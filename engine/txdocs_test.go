package engine

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/tenancy"
)

// TestTxDocsResolved: documents added through a resolved txDocs (the
// batch path of a pipeline transaction) come out as DocumentByChecksum
// would read them at that point: a new checksum is added once however
// many runs derive it, a checksum the basket holds is a duplicate of its
// document, and a document whose metadata was set earlier in the same
// transaction (a step that tags its input and derives the same bytes)
// comes out with that metadata: read again after a direct set, or with
// the held values laid over the copy resolved at the start, as committed.
func TestTxDocsResolved(t *testing.T) {
	ctx := context.Background()
	s := acmeSession(t, nil)
	bk, err := s.CreateBasket(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.AddDocument(ctx, bk.ID, NewDocument{Name: "old.txt", Content: strings.NewReader("same bytes"),
		Metadata: map[string]docex.Value{"a": docex.Number(1)}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.open(ctx, tenancy.ActionWrite, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stage := func(contents ...string) *stagedDocs {
		var docs []NewDocument
		for i, c := range contents {
			docs = append(docs, NewDocument{Name: string(rune('p'+i)) + ".txt", Content: strings.NewReader(c)})
		}
		sd, err := s.stageDocuments(ctx, st, docs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sd.discard)
		return sd
	}
	// touch: metadata set on the old document inside the transaction,
	// directly ("b": insertIn reads the document again) or held for the
	// batch call ("c": insertIn lays the held values over its copy).
	for _, mode := range []string{"", "b", "c"} {
		touch := mode != ""
		a, b := stage("same bytes", "new bytes"), stage("new bytes")
		var got [][]Added
		err := st.Write(ctx, func(tx driver.Tx) error {
			got = nil
			td := newTxDocs(tx.(driver.BatchTx))
			if err := td.resolve(ctx, tx, []*stagedDocs{a, b}, []string{bk.ID, bk.ID}); err != nil {
				return err
			}
			if !td.resolved {
				t.Fatal("the SQLite transaction is a driver.ChecksumTx: resolve should have resolved")
			}
			switch mode {
			case "b":
				if err := tx.SetMetadata(ctx, old.Document.ID, map[string]docex.Value{"b": docex.Number(2)}, s.e.now()); err != nil {
					return err
				}
				td.touched(old.Document)
			case "c":
				// As a step run sets its input's metadata: held, not set.
				if err := td.setMeta(ctx, tx, old.Document, map[string]docex.Value{"c": docex.Number(3)}, s.e.now()); err != nil {
					return err
				}
				if len(td.meta) != 1 {
					t.Fatal("the SQLite transaction is a driver.MetadataBatchTx: setMeta should have held the metadata")
				}
			}
			for _, sd := range []*stagedDocs{a, b} {
				added, err := sd.insertIn(ctx, tx, bk.ID, td, nil)
				if err != nil {
					return err
				}
				got = append(got, added)
			}
			return td.flush(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		dup, first, second := got[0][0], got[0][1], got[1][0]
		if !dup.Duplicate || dup.Document.ID != old.Document.ID {
			t.Fatalf("touch %t: same bytes: %+v, want a duplicate of %s", touch, dup, old.Document.ID)
		}
		if _, ok := dup.Document.Metadata["b"]; ok != (mode != "") {
			t.Fatalf("touch %q: the duplicate's metadata %v (stale copy used?)", mode, dup.Document.Metadata)
		}
		if _, ok := dup.Document.Metadata["c"]; ok != (mode == "c") {
			t.Fatalf("touch %q: the duplicate's metadata %v (held metadata not set before the read?)", mode, dup.Document.Metadata)
		}
		// What the transaction returned for the duplicate is what it
		// committed: held metadata is laid over the resolved copy, not
		// read back, so compare with a read.
		if stored, err := s.Document(ctx, old.Document.ID); err != nil {
			t.Fatal(err)
		} else if !maps.Equal(stored.Metadata, dup.Document.Metadata) {
			t.Fatalf("touch %q: the duplicate came out with metadata %v, the transaction committed %v", mode, dup.Document.Metadata, stored.Metadata)
		}
		if second.Document.ID != first.Document.ID || !second.Duplicate {
			t.Fatalf("touch %t: new bytes derived twice in one transaction: %+v then %+v, want one document", touch, first, second)
		}
		docs, err := s.Documents(ctx, bk.ID, docex.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != 2 {
			t.Fatalf("touch %t: %d documents in the basket, want 2", touch, len(docs))
		}
		if content, err := s.ReadContent(ctx, first.Document.ID); err != nil || string(content) != "new bytes" {
			t.Fatalf("touch %t: content %q, %v", touch, content, err)
		}
	}
}

// acmeSession returns an admin session of tenant "acme" on an engine over
// a SQLite backend in a temporary directory, with sb (nil: none) running
// plugins.
func acmeSession(t *testing.T, sb PluginRuntime) *Session {
	t.Helper()
	be, dir := OpenTestSQLite(t)
	return acmeSessionOn(t, be, dir, sb)
}

// acmeSessionOn is acmeSession on be, with content in dir/content.
func acmeSessionOn(t *testing.T, be driver.Backend, dir string, sb PluginRuntime) *Session {
	t.Helper()
	ctx := context.Background()
	cfg := Config{MultiTenancy: true, ContentDir: dir + "/content", Sandbox: sb}
	if _, err := Bootstrap(ctx, be, cfg); err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.Provisioner("ops").Create(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	return e.As(docex.UserContext{UserID: "ann", TenantID: "acme", Roles: []string{"admin"}})
}
