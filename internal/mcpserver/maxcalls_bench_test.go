package mcpserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHTTPMaxCalls measures what the bound of calls handled at once
// (HTTPOptions.MaxCalls, docex mcp --max-calls) costs and saves: 64
// clients POST list_documents (a 1-document basket, SQLite) concurrently
// in one session, under a bound of 1, 8 and 64 (the default). ns/op is
// the time per call over all clients (throughput), B/op and allocs/op
// the allocations per call, peak-heap-MiB the largest heap in use
// sampled every millisecond while the calls ran (the heap at rest
// before included).
func BenchmarkHTTPMaxCalls(b *testing.B) {
	for _, n := range []int{1, 8, DefaultMaxCalls} {
		b.Run(fmt.Sprintf("max_calls=%d", n), func(b *testing.B) {
			e := newEnv(b)
			srv, err := New(e.eng, user("rita", "reader"), Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			ts := httptest.NewServer(srv.HTTPHandlerWith(HTTPOptions{MaxBody: 1 << 20, MaxCalls: n}))
			b.Cleanup(ts.Close)
			const version = "2025-11-25"
			post := func(session, body string) (int, string, http.Header) {
				req, err := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", version)
				if session != "" {
					req.Header.Set("Mcp-Session-Id", session)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return 0, "", nil
				}
				defer resp.Body.Close()
				data, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(data), resp.Header
			}
			code, body, hdr := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
			session := hdr.Get("Mcp-Session-Id")
			if code != http.StatusOK || session == "" {
				b.Fatalf("initialize: %d %s", code, body)
			}
			if code, body, _ := post(session, initialized); code != http.StatusAccepted {
				b.Fatalf("initialized: %d %s", code, body)
			}
			var (
				peak atomic.Uint64
				stop = make(chan struct{})
				wg   sync.WaitGroup
				id   atomic.Int64
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := id.Add(1) + 1
					code, body, _ := post(session, toolCall(k, "list_documents", map[string]any{"basket": "in"}))
					if code != http.StatusOK || !strings.Contains(body, `"result"`) || strings.Contains(body, `"isError":true`) {
						b.Errorf("list_documents: %d %.300s", code, body)
						return
					}
				}
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		})
	}
}
