package s3test

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server that can slow its answers
// down, stall them or cut them off, for timeout and failure tests.
type Proxy struct {
	Addr  string
	delay atomic.Int64 // nanoseconds before each answer is forwarded
	l     net.Listener
	wg    sync.WaitGroup

	mu     sync.Mutex
	cut    cutMode
	budget int64 // bytes of answers still forwarded before cut applies
}

// cutMode is what the proxy does to answers once their budget is spent.
type cutMode int

const (
	cutNone  cutMode = iota
	cutStall         // forward nothing more, keep the connection open
	cutDrop          // close the connection
)

// StartProxy forwards a loopback port to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), l: l}
	done := make(chan struct{})
	var conns sync.Map
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c, target, done)
				conns.Delete(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		l.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	return p
}

// SetDelay makes the proxy hold every answer for d before forwarding it.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// StallAfter makes the proxy forward n more bytes of answers (counted
// across its connections, headers included), then nothing more: the
// connections stay open and silent, as with a server that hangs partway
// through a download, until Reset or the end of the test.
func (p *Proxy) StallAfter(n int64) { p.setCut(cutStall, n) }

// DropAfter makes the proxy forward n more bytes of answers (as
// StallAfter), then close the connection that would carry more, as when
// the server is killed partway through a download.
func (p *Proxy) DropAfter(n int64) { p.setCut(cutDrop, n) }

// Reset makes the proxy forward answers whole again (new stalls end; a
// connection stalled already stays so).
func (p *Proxy) Reset() { p.setCut(cutNone, 0) }

func (p *Proxy) setCut(m cutMode, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.budget = m, n
}

// allow returns how many of n bytes of an answer may be forwarded and
// what to do instead with the rest.
func (p *Proxy) allow(n int64) (int64, cutMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == cutNone || n <= p.budget {
		if p.cut != cutNone {
			p.budget -= n
		}
		return n, cutNone
	}
	k := p.budget
	p.budget = 0
	return k, p.cut
}

func (p *Proxy) serve(c net.Conn, target string, done <-chan struct{}) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(up, c)
		up.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-done:
					return
				}
			}
			k, cut := p.allow(int64(n))
			if k > 0 {
				if _, werr := c.Write(buf[:k]); werr != nil {
					return
				}
			}
			switch cut {
			case cutStall:
				<-done
				return
			case cutDrop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}
