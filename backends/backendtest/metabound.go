package backendtest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// testMetaBound: the store lists documents with each document's metadata
// bounded (driver.MetaBoundReader, the MCP listings): in key order, a
// value whose key and value would bring the metadata past the bound (at
// their least JSON length, driver.BoundMeta: a value's length in bytes,
// not characters) is not returned and its key is named; the smaller
// values after it are returned. The pages are Documents's and
// FindDocuments's, and a bound nothing passes returns what they do.
// Before, a listing returned every value of every document (up to 16 MiB
// + 64 KiB each) and the MCP server left them out afterwards.
func (f *fixture) testMetaBound(t *testing.T) {
	e := f.env(t)
	e.tenant("acme")
	s := e.as("acme", "admin")
	b := e.basket(s, "b")
	yes := docex.Bool(true)
	str := func(c string, n int) docex.Value { return docex.String(strings.Repeat(c, n)) }
	const bound = 1000
	type want struct {
		kept    []string
		omitted []string
	}
	cases := []struct {
		name string
		meta map[string]docex.Value
		want want
	}{
		// 2 + a 307 + c 207 + k 9 + n 6 + t 9: b (807) passes 1000.
		{"mixed.txt", map[string]docex.Value{"a": str("a", 300), "b": str("b", 800), "c": str("c", 200), "k": yes, "n": docex.Number(7), "t": yes},
			want{[]string{"a", "c", "k", "n", "t"}, []string{"b"}}},
		// One value of the largest size: left out.
		{"huge.txt", map[string]docex.Value{"k": yes, "x": str("x", engine.MaxMetaValueLen)}, want{[]string{"k"}, []string{"x"}}},
		// u is 400 characters, 800 bytes: with k, u (807) fits, v (307) does not.
		{"utf8.txt", map[string]docex.Value{"k": yes, "u": str("é", 400), "v": str("v", 300)}, want{[]string{"k", "u"}, []string{"v"}}},
		{"small.txt", map[string]docex.Value{"k": yes, "s": docex.String("small")}, want{[]string{"k", "s"}, nil}},
		{"none.txt", nil, want{nil, nil}},
	}
	byName := map[string]want{}
	for i, c := range cases {
		e.add(s, b.ID, c.name, "doc "+c.name+strings.Repeat("!", i), c.meta)
		byName[c.name] = c.want
	}
	st, err := e.be.OpenTenant(bg, "acme")
	must(t, err)
	defer st.Close()
	r, ok := st.(driver.MetaBoundReader)
	if !ok {
		t.Fatal("the tenant store is not a driver.MetaBoundReader (both of docex's are)")
	}
	check := func(what string, got []driver.BoundDocument, full []docex.Document, metaBytes int) {
		t.Helper()
		if len(got) != len(full) {
			t.Fatalf("%s: %d documents, want %d", what, len(got), len(full))
		}
		for i, d := range got {
			fd := full[i]
			if d.ID != fd.ID || d.Name != fd.Name || d.Checksum != fd.Checksum || d.Size != fd.Size || !d.CreatedAt.Equal(fd.CreatedAt) {
				t.Fatalf("%s: document %d is %s %s, want %s %s", what, i, d.ID, d.Name, fd.ID, fd.Name)
			}
			w := want{kept: slices.Sorted(maps.Keys(fd.Metadata))}
			if metaBytes == bound {
				w = byName[d.Name]
			}
			if keys := slices.Sorted(maps.Keys(d.Metadata)); !slices.Equal(keys, w.kept) || !slices.Equal(d.MetadataOmitted, w.omitted) {
				t.Fatalf("%s: %s has keys %v, omitted %v; want %v, omitted %v", what, d.Name, keys, d.MetadataOmitted, w.kept, w.omitted)
			}
			if d.Metadata == nil {
				t.Fatalf("%s: %s has nil metadata", what, d.Name)
			}
			for k, v := range d.Metadata {
				if fv := fd.Metadata[k]; v.Type() != fv.Type() || v.Canonical() != fv.Canonical() {
					t.Fatalf("%s: %s[%s] is %d bytes, want %d", what, d.Name, k, len(v.Canonical()), len(fd.Metadata[k].Canonical()))
				}
			}
		}
	}
	pages := []docex.Page{{Limit: 100}, {Limit: 2, Offset: 1}, {Limit: 3, Order: docex.OrderCreatedDesc}, {Limit: 100, Order: docex.OrderName}, {Limit: 2, Offset: 10}}
	filters := []docex.MetaFilter{{Key: "k", Value: yes}}
	for _, metaBytes := range []int{bound, engine.MaxDocumentMetaBytes + 1<<20} {
		for _, p := range pages {
			full, err := st.Documents(bg, b.ID, p)
			must(t, err)
			got, err := r.DocumentsMetaBound(bg, b.ID, p, metaBytes)
			must(t, err)
			check("DocumentsMetaBound", got, full, metaBytes)

			full, total, err := st.FindDocuments(bg, b.ID, filters, p)
			must(t, err)
			got, gotTotal, err := r.FindDocumentsMetaBound(bg, b.ID, filters, p, metaBytes)
			must(t, err)
			if gotTotal != total || total != 4 {
				t.Fatalf("FindDocumentsMetaBound %+v: total %d, FindDocuments's %d, want 4", p, gotTotal, total)
			}
			check("FindDocumentsMetaBound", got, full, metaBytes)
		}
	}
	// One document (driver.DocumentMetaBoundReader, get_document): as
	// the listings bound it; an unknown id is Document's not found.
	dr, ok := st.(driver.DocumentMetaBoundReader)
	if !ok {
		t.Fatal("the tenant store is not a driver.DocumentMetaBoundReader (both of docex's are)")
	}
	all, err := st.Documents(bg, b.ID, docex.Page{Limit: 100})
	must(t, err)
	for _, metaBytes := range []int{bound, engine.MaxDocumentMetaBytes + 1<<20} {
		for _, fd := range all {
			d, err := dr.DocumentMetaBound(bg, fd.ID, metaBytes)
			must(t, err)
			check("DocumentMetaBound", []driver.BoundDocument{d}, []docex.Document{fd}, metaBytes)
			sd, err := s.DocumentMetaBound(bg, fd.ID, metaBytes)
			must(t, err)
			check("Session.DocumentMetaBound", []driver.BoundDocument{sd}, []docex.Document{fd}, metaBytes)
		}
	}
	// Some keys of one document (driver.DocumentMetaKeysReader,
	// get_document with keys): the values of those keys the document has,
	// bounded as BoundMeta bounds them (b alone fits in 1000, c after it
	// does not); an empty keys gives none.
	kr, ok := st.(driver.DocumentMetaKeysReader)
	if !ok {
		t.Fatal("the tenant store is not a driver.DocumentMetaKeysReader (both of docex's are)")
	}
	// Many keys (SQLite scans the rows between the least and the greatest
	// for more than 32 keys, rather than search for each).
	many := []string{"v", "a", "b", "c", "k", "n", "t", "u", "x", "b"}
	for i := range 40 {
		many = append(many, "m"+strings.Repeat("z", i))
	}
	for _, metaBytes := range []int{bound, engine.MaxDocumentMetaBytes + 1<<20} {
		for _, keys := range [][]string{{"b", "c", "zz"}, {"x", "k", "k"}, {"u"}, {}, many, many[1:], many[10:]} {
			for _, fd := range all {
				some := fd
				some.Metadata = map[string]docex.Value{}
				for _, k := range keys {
					if v, ok := fd.Metadata[k]; ok {
						some.Metadata[k] = v
					}
				}
				w := driver.BoundDocuments([]docex.Document{some}, metaBytes)[0]
				for what, get := range map[string]func() (driver.BoundDocument, error){
					"DocumentMetaKeys":         func() (driver.BoundDocument, error) { return kr.DocumentMetaKeys(bg, fd.ID, keys, metaBytes) },
					"Session.DocumentMetaKeys": func() (driver.BoundDocument, error) { return s.DocumentMetaKeys(bg, fd.ID, keys, metaBytes) },
					// Two rounds, each reading the same.
					"Session.DocumentMetaKeysRounds": func() (d driver.BoundDocument, err error) {
						err = s.DocumentMetaKeysRounds(bg, fd.ID, func(read func([]string, int) (engine.BoundDocument, error)) error {
							for range 2 {
								if d, err = read(keys, metaBytes); err != nil {
									return err
								}
							}
							return nil
						})
						return d, err
					},
				} {
					d, err := get()
					must(t, err)
					if d.ID != fd.ID || d.Name != fd.Name || d.Checksum != fd.Checksum || d.Metadata == nil {
						t.Fatalf("%s %v: document %s %s (metadata nil: %t), want %s %s", what, keys, d.ID, d.Name, d.Metadata == nil, fd.ID, fd.Name)
					}
					if got, want := slices.Sorted(maps.Keys(d.Metadata)), slices.Sorted(maps.Keys(w.Metadata)); !slices.Equal(got, want) || !slices.Equal(d.MetadataOmitted, w.MetadataOmitted) {
						t.Fatalf("%s %v, %d bytes: %s has keys %v, omitted %v; want %v, omitted %v", what, keys, metaBytes, fd.Name, got, d.MetadataOmitted, want, w.MetadataOmitted)
					}
					for k, v := range d.Metadata {
						if fv := fd.Metadata[k]; v.Type() != fv.Type() || v.Canonical() != fv.Canonical() {
							t.Fatalf("%s %v: %s[%s] differs", what, keys, fd.Name, k)
						}
					}
				}
			}
		}
	}
	d, err := kr.DocumentMetaKeys(bg, byNameID(all, "mixed.txt"), []string{"b", "c", "zz"}, bound)
	must(t, err)
	if got := slices.Sorted(maps.Keys(d.Metadata)); !slices.Equal(got, []string{"b"}) || !slices.Equal(d.MetadataOmitted, []string{"c"}) {
		t.Fatalf("DocumentMetaKeys of mixed.txt [b c zz]: keys %v, omitted %v; want [b], omitted [c]", got, d.MetadataOmitted)
	}
	const unknown = "0190c1a2-0000-7000-8000-000000000000"
	_, werr := st.Document(bg, unknown)
	if _, err := dr.DocumentMetaBound(bg, unknown, bound); !errors.Is(err, docex.ErrNotFound) || werr == nil || err.Error() != werr.Error() {
		t.Fatalf("DocumentMetaBound of an unknown id: %v, want Document's %v", err, werr)
	}
	if _, err := kr.DocumentMetaKeys(bg, unknown, []string{"k"}, bound); !errors.Is(err, docex.ErrNotFound) || err.Error() != werr.Error() {
		t.Fatalf("DocumentMetaKeys of an unknown id: %v, want Document's %v", err, werr)
	}
	err = s.DocumentMetaKeysRounds(bg, unknown, func(read func([]string, int) (engine.BoundDocument, error)) error {
		_, err := read([]string{"k"}, bound)
		return err
	})
	if !errors.Is(err, docex.ErrNotFound) || err.Error() != werr.Error() {
		t.Fatalf("DocumentMetaKeysRounds of an unknown id: %v, want Document's %v", err, werr)
	}
	// The engine's listing, over the store.
	got, err := s.DocumentsMetaBound(bg, b.ID, docex.Page{Limit: 100}, bound)
	must(t, err)
	full, err := s.Documents(bg, b.ID, docex.Page{Limit: 100})
	must(t, err)
	check("Session.DocumentsMetaBound", got, full, bound)
	got, _, err = s.FindDocumentsMetaBound(bg, b.ID, filters, docex.Page{Limit: 100}, bound)
	must(t, err)
	full, _, err = s.FindDocuments(bg, b.ID, filters, docex.Page{Limit: 100})
	must(t, err)
	check("Session.FindDocumentsMetaBound", got, full, bound)
}

// byNameID returns the id of the document of docs named name.
func byNameID(docs []docex.Document, name string) string {
	for _, d := range docs {
		if d.Name == name {
			return d.ID
		}
	}
	return ""
}
