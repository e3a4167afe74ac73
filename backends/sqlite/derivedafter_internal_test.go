package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// countingQuerier counts the statements run through it.
type countingQuerier struct {
	querier
	n *int
}

func (c countingQuerier) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	*c.n++
	return c.querier.QueryContext(ctx, q, args...)
}

// TestDerivedAfterStatements: DerivedAfter over 1,200 sources, one in 40
// of them with derived documents (the others have none, as the leaves of
// a cascade's level), paged by 7 and by 1,000, returns every pair once
// in the primary key's order, each page in at most a statement for the
// rest of the cursor's source and one per chunk of the sources after it
// (8, 64, then maxInParams), however many sources it passes that have no pairs. Before,
// each source was a statement: a page crossing 39 sources without
// derived documents took 40.
func TestDerivedAfterStatements(t *testing.T) {
	ctx := context.Background()
	b := bootstrapped(t)
	must(t, b.CreateTenant(ctx, newTenant("acme"), testAudit("tenant.create")))
	st, err := b.OpenTenant(ctx, "acme")
	must(t, err)
	defer st.Close()
	var sources []string
	var want []driver.DerivedRef
	var edges []driver.LineageEdge
	for i := range 1200 {
		src := fmt.Sprintf("s%05d", i)
		sources = append(sources, src)
		if i%40 != 0 {
			continue
		}
		for k := range 1 + i%13 {
			der := fmt.Sprintf("d%05d-%02d", i, k)
			want = append(want, driver.DerivedRef{SourceID: src, ID: der, Gone: true})
			for _, job := range []string{"j1", "j2"} { // two edges of the pair: listed once
				edges = append(edges, driver.LineageEdge{SourceID: src, DerivedID: der, JobID: job, Step: "split", Pipeline: "p", Version: 1,
					Plugin: "split", ModuleSHA256: strings.Repeat("a", 64), Params: "{}", CreatedAt: time.Now()})
			}
		}
	}
	must(t, st.Write(ctx, func(tx driver.Tx) error {
		for _, e := range edges {
			if err := tx.InsertLineage(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}))
	slices.Reverse(sources) // in no order
	sources = append(sources, sources[3], "s99999")
	n := 0
	r := reader{q: countingQuerier{st.(*store).reader.q, &n}}
	for _, limit := range []int{7, 1000} {
		var got []driver.DerivedRef
		pages := 0
		for afterSrc, afterID := "", ""; ; {
			n = 0
			page, err := r.DerivedAfter(ctx, sources, afterSrc, afterID, limit)
			must(t, err)
			pages++
			// A statement for the rest of afterSrc's pairs, one per chunk of
			// the 1,201 sources after it (8, 64, then maxInParams).
			if n > 3+(1201-72+maxInParams-1)/maxInParams {
				t.Fatalf("a page of %d after (%q, %q) took %d statements", limit, afterSrc, afterID, n)
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			afterSrc, afterID = page[limit-1].SourceID, page[limit-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %d pairs, want %d (equal)", limit, len(got), len(want))
		}
		t.Logf("pages of %d: %d pairs in %d pages", limit, len(got), pages)
	}
	// A cursor on a source not among them.
	page, err := r.DerivedAfter(ctx, sources, "s00041", "", 2)
	must(t, err)
	k := slices.IndexFunc(want, func(d driver.DerivedRef) bool { return d.SourceID == "s00080" })
	if !slices.Equal(page, want[k:k+2]) {
		t.Fatalf("after a source not listed: %+v, want %+v", page, want[k:k+2])
	}
}
