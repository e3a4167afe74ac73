package s3store_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/backends/s3store"
	"github.com/docex-dev/docex/internal/s3test"
)

// TestRetriesNeverRunOut: every request gets up to three attempts however
// many failed before in the process (docs/s3.md, Timeouts): a server that
// answers every GET 503 gets three GETs per read, before and after the
// retries of many failures. Before, the SDK's client-side retry quota (500
// tokens, 5 per retry) ran out after about fifty failing requests, and a
// long-running process (docex mcp, a worker) then made one attempt per
// request ("failed to get rate limit token, retry quota exceeded").
func TestRetriesNeverRunOut(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartFaultProxy(t, srv.Endpoint)
	store := newStore(t, srv, func(c *s3store.Config) { c.Endpoint = proxy.Endpoint })
	proxy.Fail(func(r *http.Request) bool { return r.Method == "GET" })
	read := func(what string) {
		t.Helper()
		before := proxy.Failed()
		err := store.CheckClaim(bg, "system")
		if !errors.Is(err, docex.ErrStorageUnavailable) {
			t.Fatalf("%s: %v; want storage_unavailable", what, err)
		}
		if n := proxy.Failed() - before; n != 3 {
			t.Errorf("%s: %d GETs, want 3 (%v)", what, n, err)
		}
	}
	read("the first read")
	// The retries of many more failing requests, taken where the SDK
	// takes them (its retryer's GetRetryToken) rather than waited for.
	rt := store.Retryer()
	refused := 0
	for range 300 {
		if _, err := rt.GetRetryToken(bg, errors.New("injected failure")); err != nil {
			refused++
		}
	}
	if refused > 0 {
		t.Errorf("%d of 300 retries refused by the client", refused)
	}
	read("a read after 300 retries")
}
