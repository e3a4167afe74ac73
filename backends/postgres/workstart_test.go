package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// TestWorkStopWhileStarting: a worker stopped (its context done) while
// River's client starts, waiting for a connection of a pool whose every
// connection is busy, returns nil without waiting for one. Before, River
// started under a context no stop reached (its fetch context): the
// worker ran on, signals ignored, until a connection was free.
func TestWorkStopWhileStarting(t *testing.T) {
	t.Parallel()
	b := bootstrapped(t, Config{MaxConns: 1}, true)
	tests := []struct {
		name   string
		cancel func(cancel context.CancelFunc) // when ctx is cancelled
	}{
		{"done before Start", func(cancel context.CancelFunc) { cancel() }},
		{"done while Start waits", func(cancel context.CancelFunc) {
			// Not a bound: Work is waiting for the connection by
			// then on any machine, or it meets a done context at
			// its start (the case above); both must return.
			time.AfterFunc(100*time.Millisecond, cancel)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := b.pool.Acquire(context.Background()) // the pool's one connection
			if err != nil {
				t.Fatal(err)
			}
			released := false
			release := func() {
				if !released {
					released = true
					conn.Release()
				}
			}
			defer release()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			handled := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- b.Jobs().Work(ctx, driver.WorkConfig{Tenants: []string{"acme"}, Concurrency: 1, Poll: 50 * time.Millisecond},
					func(context.Context, driver.Delivery) driver.Outcome {
						handled <- struct{}{}
						return driver.Outcome{Kind: driver.Done}
					})
			}()
			tc.cancel(cancel)
			// A hang detector, not a latency bound: the old code waits
			// for the connection forever.
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Work: %v, want nil (stopped before it started)", err)
				}
			case <-time.After(2 * time.Minute):
				release() // let it go on, so that the test ends
				<-done
				t.Fatal("Work did not return after its context was done while River's client was starting (a busy pool)")
			}
			select {
			case <-handled:
				t.Error("a job was handled")
			default:
			}
		})
	}
}
