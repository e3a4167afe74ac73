package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLeaseClock: a run whose lease is used up is cancelled with
// errLeaseExpired as its cause and the clock says so, and every later run
// of the attempt stops at once; a run whose parent (the batch: a
// shutdown) was cancelled first is not a lease expiry, whenever the lease
// would have run out; a paused clock does not run; no lease, no clock.
func TestLeaseClock(t *testing.T) {
	t.Run("expiry", func(t *testing.T) {
		c := newLeaseClock(10 * time.Millisecond)
		ctx, end := c.run(context.Background())
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), errLeaseExpired) || !c.hasExpired() {
			t.Fatalf("cause %v, expired %v: want the lease's", context.Cause(ctx), c.hasExpired())
		}
		end()
		ctx, end = c.run(context.Background())
		<-ctx.Done() // used up: at once
		end()
		if !errors.Is(context.Cause(ctx), errLeaseExpired) {
			t.Fatalf("a run after the expiry: cause %v", context.Cause(ctx))
		}
	})
	t.Run("shutdown first", func(t *testing.T) {
		c := newLeaseClock(time.Millisecond)
		stopped := errors.New("shutdown")
		parent, cancel := context.WithCancelCause(context.Background())
		cancel(stopped)
		ctx, end := c.run(parent)
		defer end()
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // the lease's timer has fired (or does later: the same)
		if !errors.Is(context.Cause(ctx), stopped) || c.hasExpired() {
			t.Fatalf("cause %v, expired %v: want the shutdown's, not expired", context.Cause(ctx), c.hasExpired())
		}
	})
	t.Run("pause", func(t *testing.T) {
		c := newLeaseClock(time.Hour)
		ctx, end := c.run(context.Background())
		defer end()
		resume := c.pause()
		c.mu.Lock()
		used, stopped := c.used, c.since.IsZero()
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		c.mu.Lock()
		usedLater := c.used
		c.mu.Unlock()
		if !stopped || usedLater != used {
			t.Fatalf("paused clock: stopped %v, used %v then %v", stopped, used, usedLater)
		}
		resume()
		c.mu.Lock()
		running := !c.since.IsZero()
		c.mu.Unlock()
		if !running || ctx.Err() != nil {
			t.Fatalf("resumed clock: running %v, run %v", running, ctx.Err())
		}
	})
	t.Run("none", func(t *testing.T) {
		c := newLeaseClock(0)
		ctx, end := c.run(context.Background())
		c.pause()()
		end()
		if c != nil || ctx.Err() != nil || c.hasExpired() {
			t.Fatal("a zero lease bounds the run")
		}
	})
}
