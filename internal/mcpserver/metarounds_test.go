package mcpserver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/engine"
)

// roundStats counts the reads of metaOfBound's fallback (metaRounds).
type roundStats struct {
	reads     int
	maxValues int // the most bytes one read returned (keys and values, at their least JSON, driver.MetaEntryBytes)
	values    int // bytes all reads returned
	maxBound  int // the largest metaBytes of a read
}

// countedRounds is metaOfBound of d, in a DocumentMetaKeysRounds of s,
// each read counted in st (and checked: a read returns no more than its
// bound lets in).
func countedRounds(t *testing.T, s *engine.Session, d engine.BoundDocument, limit int, st *roundStats) (map[string]docex.Value, []string) {
	t.Helper()
	return metaOfBoundWith(d, limit, func(rounds func(metaRead) error) error {
		return s.DocumentMetaKeysRounds(context.Background(), d.ID, func(read metaRead) error {
			return rounds(func(keys []string, metaBytes int) (engine.BoundDocument, error) {
				rd, err := read(keys, metaBytes)
				n := 2 // {}
				for k, v := range rd.Metadata {
					n += driver.MetaEntryBytes(k, v.Type(), len(v.Canonical()))
				}
				if n > metaBytes {
					t.Errorf("a read bounded to %d bytes returned %d bytes of keys and values", metaBytes, n)
				}
				st.reads++
				st.values += n
				st.maxValues = max(st.maxValues, n)
				st.maxBound = max(st.maxBound, metaBytes)
				return rd, err
			})
		})
	})
}

func sameValue(a, b docex.Value) bool { return a.Type() == b.Type() && a.Canonical() == b.Canonical() }

// randomMeta returns n values of random kinds and lengths (up to most
// bytes), some escaping, some numbers and booleans.
func randomMeta(seed uint64, n, most int) map[string]docex.Value {
	r := rand.New(rand.NewPCG(seed, 7))
	meta := map[string]docex.Value{}
	chars := []string{"x", `"`, "\n", "<", "&", "é", `\`}
	for i := range n {
		k := fmt.Sprintf("k%04d", i)
		switch r.IntN(12) {
		case 0:
			meta[k] = docex.Number(r.Float64() * 1e6)
		case 1:
			meta[k] = docex.Bool(r.IntN(2) == 0)
		case 2, 3:
			var b strings.Builder
			for range r.IntN(most / 2) {
				b.WriteString(chars[r.IntN(len(chars))])
			}
			meta[k] = docex.String(b.String())
		default:
			c := chars[r.IntN(len(chars))]
			meta[k] = repeatValue(c, r.IntN(most/len(c)+1))
		}
	}
	return meta
}

// TestMetaFallbackExact: when a value the store read is left out because
// its JSON escapes make it longer than its bytes, and a value the store
// did not read comes after it, the record or listing gives what
// boundMeta gives over the whole metadata (of the same keys): the same
// values, the same keys left out, in order, for the 1 MiB of a record and
// the 64 KiB of a listed document, with and without keys. Reading it
// (metaRounds) reads no more a round than the room left, at most the
// bound, and each value at most twice.
func TestMetaFallbackExact(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv, _ := e.connect(t, user("rita", "reader"), Config{})
	lt := map[string]docex.Value{}
	for i := range 256 {
		lt[fmt.Sprintf("k%03d", i)] = repeatValue("<", 60<<10)
	}
	ltThenPlain := map[string]docex.Value{}
	for i := range 256 {
		if i < 3 {
			ltThenPlain[fmt.Sprintf("k%03d", i)] = repeatValue("<", 60<<10)
		} else {
			ltThenPlain[fmt.Sprintf("k%03d", i)] = repeatValue("v", 60<<10)
		}
	}
	interleaved := map[string]docex.Value{}
	for i := range 300 {
		switch i % 3 {
		case 0:
			interleaved[fmt.Sprintf("k%03d", i)] = repeatValue(`"`, 9_000+i*37)
		case 1:
			interleaved[fmt.Sprintf("k%03d", i)] = repeatValue("x", 20_000-i*41)
		default:
			interleaved[fmt.Sprintf("k%03d", i)] = repeatValue("&", 3_000+i*11)
		}
	}
	cases := []struct {
		name string
		meta map[string]docex.Value
	}{
		{"quotes then plain", map[string]docex.Value{"a": repeatValue(`"`, 40_000), "b": repeatValue("x", 30_000), "kind": docex.String("esc")}},
		{"lt", lt},
		{"lt then plain", ltThenPlain},
		{"interleaved", interleaved},
		// In 64 KiB: the store reads a (least 55,007 bytes, 330,007 of
		// JSON: left out), then none of b, c, d; a first round reads b
		// (left out: 180,007) and d, not c (b and c pass 64 KiB at their
		// least); a second reads c, d let go meanwhile: c and d fit, d
		// is read again at the end.
		{"let go", map[string]docex.Value{"a": repeatValue("<", 55_000), "b": repeatValue("<", 30_000), "c": repeatValue("x", 36_000), "d": repeatValue("x", 12_000)}},
		{"random small", randomMeta(1, 1024, 2_000)},
		{"random", randomMeta(2, 400, 40_000)},
		{"random large", randomMeta(3, 256, 64<<10)},
	}
	fellBack := map[string]bool{}
	for _, c := range cases {
		id := metaDoc(t, e, "", c.name, c.meta)
		full, err := e.admin.Document(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		all := slices.Sorted(maps.Keys(c.meta))
		var some []string
		for i, k := range all {
			if i%3 != 1 {
				some = append(some, k)
			}
		}
		some = append(some, "nokey")
		size := 0
		for k, v := range full.Metadata {
			size += driver.MetaEntryBytes(k, v.Type(), len(v.Canonical()))
		}
		for _, limit := range []int{listMetaBytes, recordMetaBytes} {
			for _, keys := range [][]string{nil, some} {
				name := fmt.Sprintf("%s/%d/keys=%t", c.name, limit, keys != nil)
				m := full.Metadata
				var d engine.BoundDocument
				if keys == nil {
					d, err = srv.s.DocumentMetaBound(ctx, id, limit)
				} else {
					m = map[string]docex.Value{}
					for _, k := range keys {
						if v, ok := full.Metadata[k]; ok {
							m[k] = v
						}
					}
					d, err = srv.s.DocumentMetaKeys(ctx, id, keys, limit)
				}
				if err != nil {
					t.Fatal(err)
				}
				wantMeta, wantOmitted := boundMeta(m, limit)
				check := func(how string, got map[string]docex.Value, omitted []string) {
					t.Helper()
					if !slices.Equal(omitted, wantOmitted) || !maps.EqualFunc(got, wantMeta, sameValue) {
						t.Errorf("%s, %s: %d values, omitted %v; want %d, omitted %v", name, how, len(got), omitted, len(wantMeta), wantOmitted)
					}
				}
				got, omitted := srv.metaOfBound(ctx, d, limit)
				check("metaOfBound", got, omitted)
				var st roundStats
				got, omitted = countedRounds(t, srv.s, d, limit, &st)
				check("counted", got, omitted)
				if st.maxBound > limit || st.values > size+limit {
					t.Errorf("%s: reads of up to %d bytes, %d in all (metadata of %d bytes); want at most %d a read, %d in all", name, st.maxBound, st.values, size, limit, size+limit)
				}
				if st.reads > 0 {
					fellBack[c.name] = true
				}
				if c.name == "let go" && limit == listMetaBytes && keys == nil && (st.reads != 3 || !slices.Equal(omitted, []string{"a", "b"})) {
					t.Errorf("%s: %d reads, omitted %v; want 3 (two rounds and d again), omitted [a b]", name, st.reads, omitted)
				}
				t.Logf("%s: %d reads, %d bytes of values in all, at most %d a read", name, st.reads, st.values, st.maxValues)
			}
		}
	}
	for _, c := range []string{"quotes then plain", "lt", "lt then plain", "interleaved", "let go", "random small", "random"} {
		if !fellBack[c] {
			t.Errorf("%s: no fallback read: the case tests nothing", c)
		}
	}
}

// TestMetaFallbackConcurrent: the fallback's rounds are snapshots of
// their own; a value deleted between two of them is absent (neither
// given nor left out), a value grown meanwhile is given as read or left
// out, and the metadata given stays within the bound.
func TestMetaFallbackConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv, _ := e.connect(t, user("rita", "reader"), Config{})
	meta := map[string]docex.Value{}
	for i := range 40 {
		if i < 4 {
			meta[fmt.Sprintf("k%03d", i)] = repeatValue("<", 6_000) // 36,002 bytes of JSON: one fits, not two
		} else {
			meta[fmt.Sprintf("k%03d", i)] = repeatValue("x", 5_000)
		}
	}
	id := metaDoc(t, e, "", "c.txt", meta)
	d, err := srv.s.DocumentMetaBound(ctx, id, listMetaBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.MetadataOmitted) == 0 {
		t.Fatal("nothing left out")
	}
	reads := 0
	got, omitted := metaOfBoundWith(d, listMetaBytes, func(rounds func(metaRead) error) error {
		return srv.s.DocumentMetaKeysRounds(ctx, id, func(read metaRead) error {
			return rounds(func(keys []string, metaBytes int) (engine.BoundDocument, error) {
				reads++
				// Between the first read and this one: one value not read
				// yet deleted, another grown past the room.
				if reads == 1 {
					if err := e.admin.DeleteMetadata(ctx, id, keys[0]); err != nil {
						t.Fatal(err)
					}
					if _, err := e.admin.SetMetadata(ctx, id, map[string]docex.Value{keys[1]: repeatValue("<", 60_000)}); err != nil {
						t.Fatal(err)
					}
				}
				return read(keys, metaBytes)
			})
		})
	})
	if reads == 0 {
		t.Fatal("no fallback read")
	}
	now, err := e.admin.Document(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := metaBytes(got, listMetaBytes); n > listMetaBytes {
		t.Fatalf("%d bytes of metadata given, more than %d", n, listMetaBytes)
	}
	for _, k := range omitted {
		if _, ok := got[k]; ok {
			t.Fatalf("%s both given and left out", k)
		}
	}
	if !slices.IsSorted(omitted) {
		t.Fatalf("omitted %v out of order", omitted)
	}
	for k := range meta {
		_, given := got[k]
		_, there := now.Metadata[k]
		if !there && (given || slices.Contains(omitted, k)) {
			t.Fatalf("%s, deleted, is given or left out", k)
		}
		if there && !given && !slices.Contains(omitted, k) {
			t.Fatalf("%s is neither given nor left out", k)
		}
	}
	// Read again now, it is exact.
	d, err = srv.s.DocumentMetaBound(ctx, id, listMetaBytes)
	if err != nil {
		t.Fatal(err)
	}
	got, omitted = srv.metaOfBound(ctx, d, listMetaBytes)
	wantMeta, wantOmitted := boundMeta(now.Metadata, listMetaBytes)
	if !slices.Equal(omitted, wantOmitted) || !maps.EqualFunc(got, wantMeta, sameValue) {
		t.Fatalf("%d values, omitted %v; want %d, omitted %v", len(got), omitted, len(wantMeta), wantOmitted)
	}
}

// TestMetaFallbackAuditedOnce: a get_document whose fallback reads in
// many rounds (256 values of 60 KiB of <, each 360 KiB of JSON) has two
// mcp.document.get audit entries, the store's bounded read and one for
// all the rounds.
func TestMetaFallbackAuditedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lt := map[string]docex.Value{}
	for i := range 256 {
		lt[fmt.Sprintf("k%03d", i)] = repeatValue("<", 60<<10)
	}
	id := metaDoc(t, e, "", "lt.txt", lt)
	srv, cs := e.connect(t, user("rita", "reader"), Config{})
	d, err := srv.s.DocumentMetaBound(ctx, id, recordMetaBytes)
	if err != nil {
		t.Fatal(err)
	}
	var st roundStats
	countedRounds(t, srv.s, d, recordMetaBytes, &st)
	if st.reads < 10 {
		t.Fatalf("%d rounds, want many", st.reads)
	}
	count := func() int {
		log, err := e.admin.Audit(ctx, docex.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range log {
			if a.UserID == "rita" && a.Operation == "mcp.document.get" && a.Target == id {
				n++
			}
		}
		return n
	}
	n0 := count()
	type record struct {
		Metadata map[string]string `json:"metadata"`
		Omitted  []string          `json:"metadata_omitted"`
	}
	got := call[record](t, cs, "get_document", map[string]any{"id": id})
	wantMeta, wantOmitted := boundMeta(lt, recordMetaBytes)
	if len(got.Metadata) != len(wantMeta) || !slices.Equal(got.Omitted, wantOmitted) {
		t.Fatalf("%d values, omitted %v; want %d, omitted %v", len(got.Metadata), got.Omitted, len(wantMeta), wantOmitted)
	}
	if n := count() - n0; n != 2 {
		t.Fatalf("%d mcp.document.get entries for one get_document, want 2", n)
	}
}

// TestMetaFallbackLetGoChanged: a value kept whose round was over when
// its turn came is read again at the end; changed meanwhile, it is given
// as read then, left out when it no longer fits, absent when deleted.
func TestMetaFallbackLetGoChanged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	srv, _ := e.connect(t, user("rita", "reader"), Config{})
	for _, c := range []struct {
		name        string
		change      func(id string) error
		wantD       string // d's value given, "" for none
		wantOmitted []string
	}{
		{"same", func(string) error { return nil }, strings.Repeat("x", 12_000), []string{"a", "b"}},
		{"smaller", func(id string) error {
			_, err := e.admin.SetMetadata(ctx, id, map[string]docex.Value{"d": docex.String("small")})
			return err
		}, "small", []string{"a", "b"}},
		{"grown", func(id string) error {
			_, err := e.admin.SetMetadata(ctx, id, map[string]docex.Value{"d": repeatValue("x", 40_000)})
			return err
		}, "", []string{"a", "b", "d"}},
		{"deleted", func(id string) error { return e.admin.DeleteMetadata(ctx, id, "d") }, "", []string{"a", "b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			meta := map[string]docex.Value{"a": repeatValue("<", 55_000), "b": repeatValue("<", 30_000), "c": repeatValue("x", 36_000), "d": repeatValue("x", 12_000)}
			id := metaDoc(t, e, "", "letgo-"+c.name, meta)
			d, err := srv.s.DocumentMetaBound(ctx, id, listMetaBytes)
			if err != nil {
				t.Fatal(err)
			}
			reads := 0
			got, omitted := metaOfBoundWith(d, listMetaBytes, func(rounds func(metaRead) error) error {
				return srv.s.DocumentMetaKeysRounds(ctx, id, func(read metaRead) error {
					return rounds(func(keys []string, metaBytes int) (engine.BoundDocument, error) {
						if reads++; reads == 3 {
							if !slices.Equal(keys, []string{"d"}) {
								t.Fatalf("the last read is of %v, want [d]", keys)
							}
							if err := c.change(id); err != nil {
								t.Fatal(err)
							}
						}
						return read(keys, metaBytes)
					})
				})
			})
			if reads != 3 {
				t.Fatalf("%d reads, want 3", reads)
			}
			if v, ok := got["d"]; ok != (c.wantD != "") || ok && v.Canonical() != c.wantD {
				t.Fatalf("d given: %t, want %t (or another value)", ok, c.wantD != "")
			}
			want := 1 // c
			if c.wantD != "" {
				want++
			}
			if _, ok := got["c"]; !ok || len(got) != want {
				t.Fatalf("keys given %v", slices.Sorted(maps.Keys(got)))
			}
			if !slices.Equal(omitted, c.wantOmitted) {
				t.Fatalf("omitted %v, want %v", omitted, c.wantOmitted)
			}
			if n := metaBytes(got, listMetaBytes); n > listMetaBytes {
				t.Fatalf("%d bytes given, more than %d", n, listMetaBytes)
			}
		})
	}
}
