package s3test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// FaultProxy is an HTTP proxy in front of a server that answers the
// requests a test chooses with an S3 error (HTTP 503, ServiceUnavailable)
// instead of forwarding them, for tests of what a failed request leaves.
// The Host header is forwarded unchanged, so SigV4 signatures stay valid.
type FaultProxy struct {
	Endpoint string // http://127.0.0.1:PORT

	mu     sync.Mutex
	fail   func(*http.Request) bool
	failed atomic.Int64
}

// StartFaultProxy forwards requests to the server at endpoint
// (http://HOST:PORT) until the test ends; it fails none until Fail.
func StartFaultProxy(t testing.TB, endpoint string) *FaultProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
		pr.Out.Host = pr.In.Host // signed
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fail := p.fail
		p.mu.Unlock()
		if fail != nil && fail(r) {
			p.failed.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>failure injected by s3test.FaultProxy</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Endpoint = srv.URL
	return p
}

// Fail makes the proxy answer every request fn reports with HTTP 503;
// nil forwards all of them again.
func (p *FaultProxy) Fail(fn func(*http.Request) bool) {
	p.mu.Lock()
	p.fail = fn
	p.mu.Unlock()
}

// Failed is the number of requests answered with the injected error.
func (p *FaultProxy) Failed() int64 { return p.failed.Load() }
