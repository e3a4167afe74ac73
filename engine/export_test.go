package engine

import (
	"context"
	"io"
	"testing"

	"github.com/docex-dev/docex/backends/sqlite"
	"github.com/docex-dev/docex/sandbox/pluginapi"
	"github.com/docex-dev/docex/tenancy"
)

// OpenTestSQLite opens a SQLite backend in a new temporary directory of t,
// closed at the end of t, and returns it with that directory (the tests
// of package engine_test use it too).
func OpenTestSQLite(t testing.TB) (*sqlite.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	be, err := sqlite.Open(context.Background(), sqlite.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be, dir
}

// LookedUpForTest opens, as one plugin run's host does for a guest that
// looks them up, the documents ids of basketID, and returns their
// contents; done closes the run's host. It returns the first error.
func (s *Session) LookedUpForTest(ctx context.Context, basketID string, ids []string) (contents []io.ReaderAt, done func(), err error) {
	st, err := s.open(ctx, tenancy.ActionRead, "document.read", basketID)
	if err != nil {
		return nil, nil, err
	}
	h := &pluginHost{s: s, st: st, basketID: basketID, key: s.e.poolKey(st.Tenant())}
	done = func() { h.close(); st.Close() }
	for _, id := range ids {
		d, err := h.Open(ctx, pluginapi.DocumentRef{TenantID: h.key, ID: id})
		if err != nil {
			done()
			return nil, nil, err
		}
		contents = append(contents, d.Content)
	}
	return contents, done, nil
}

// LookupForTest looks up, as one plugin run's host does for a guest,
// the documents of basketID named name (at most 100), and returns their
// ids.
func (s *Session) LookupForTest(ctx context.Context, basketID, name string) ([]string, error) {
	st, err := s.open(ctx, tenancy.ActionRead, "document.read", basketID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	h := &pluginHost{s: s, st: st, basketID: basketID, key: s.e.poolKey(st.Tenant())}
	defer h.close()
	refs, err := h.Lookup(ctx, pluginapi.LookupQuery{Name: name, Limit: 100})
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids, err
}

// AddThroughDeletedStoreForTest opens a store of the session's tenant,
// calls between (which deletes the tenant), then adds docs to basketID
// through that store, as a step of the tenant finishing after its
// deletion does.
func (s *Session) AddThroughDeletedStoreForTest(ctx context.Context, basketID string, docs []NewDocument, between func()) ([]Added, error) {
	st, err := s.open(ctx, tenancy.ActionWrite, "document.add", basketID)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	between()
	return s.addDocumentsTo(ctx, st, basketID, docs, nil)
}
