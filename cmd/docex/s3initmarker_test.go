package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docex-dev/docex/internal/s3test"
)

// TestS3InitMarkerUnreadable: docex init on a system whose S3 server
// answers "not found" for the claim marker that is there (a lying
// gateway: the conditional PUT of the marker is refused, as one exists)
// refuses, writing nothing over it, and says what is wrong: the store
// does not serve the marker it keeps, running docex init again does not
// help. Before, its message and hint said to run docex init, the command
// that just failed (p19 L7).
func TestS3InitMarkerUnreadable(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t)
	target, err := url.Parse(srv.Endpoint)
	must(t, err)
	var lie atomic.Bool
	rp := httputil.NewSingleHostReverseProxy(target) // the Host header stays: signatures hold
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasSuffix(r.URL.Path, "/.docex-system") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	h := newHarness(t)
	h.env["TEST_S3_KEY"], h.env["TEST_S3_SECRET"] = srv.AccessKey, srv.SecretKey
	h.env["DOCEX_NO_BUILTIN_STEPS"] = "1"
	h.file("docex.yaml", s3Config("", bucket, proxy.URL))
	h.ok("init")
	lie.Store(true)
	r := h.run("init")
	if r.code == exitOK {
		t.Fatalf("init with the marker unreadable succeeded: %s", r.stdout)
	}
	_, msg, hint := cliError(t, h.run("init", "--json").stderr)
	for _, out := range []string{r.stderr, msg + "\n" + hint} {
		if strings.Contains(out, "run docex init") || !strings.Contains(out, "s3://"+bucket+"/docex/.docex-system") ||
			!strings.Contains(out, "reading its claim marker .docex-system back finds none") || !strings.Contains(out, "running docex init again does not help") {
			t.Errorf("init with the marker unreadable: %s\nwant no \"run docex init\", the marker named and what is wrong", out)
		}
	}
	lie.Store(false)
	if r := h.ok("init"); !strings.Contains(r.stdout, "already initialised; nothing changed") {
		t.Fatalf("init once the marker is served: %s", r.stdout)
	}
}
