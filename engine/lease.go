package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docex-dev/docex"
)

// errLeaseExpired is the cause (context.Cause) of the context of a job's
// run that its lease stopped.
var errLeaseExpired = errors.New("the job's lease expired")

// leaseClock bounds the time one attempt runs its own steps to the
// lease of its delivery (driver.Delivery.Lease; none when zero). Its
// clock runs only while the attempt's own runs do (execution.prepareRound),
// and not while they wait for a plugin slot or for a run of another job
// (pause): the attempt's waits in the worker, for a slot, for the other
// jobs of its batch or for their commits, do not count. Once the
// attempt has run for the whole lease, the context of its run is
// cancelled with errLeaseExpired as its cause, and expired reports true:
// the attempt counts, as a transient failure (settle). A shutdown that
// cancelled the run first is not a lease expiry: expired stays false.
type leaseClock struct {
	lease time.Duration

	mu      sync.Mutex
	used    time.Duration // run time before the current stretch
	since   time.Time     // start of the current stretch (zero: stopped)
	timer   *time.Timer
	gen     int             // stretches started: a timer of an earlier one does nothing
	parent  context.Context // of the current run (nil: none)
	cancel  context.CancelCauseFunc
	expired bool
}

// newLeaseClock returns the clock of an attempt with lease (nil, which
// never expires, when lease is 0).
func newLeaseClock(lease time.Duration) *leaseClock {
	if lease <= 0 {
		return nil
	}
	return &leaseClock{lease: lease}
}

// run starts the clock for one of the attempt's runs and returns the
// context to run under: ctx, cancelled with errLeaseExpired once the
// lease is used up (at once when it is already). end stops the clock.
func (c *leaseClock) run(ctx context.Context) (rctx context.Context, end func()) {
	if c == nil {
		return ctx, func() {}
	}
	rctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.parent, c.cancel = ctx, cancel
	c.start()
	c.mu.Unlock()
	return rctx, func() {
		c.mu.Lock()
		c.stop()
		c.parent, c.cancel = nil, nil
		c.mu.Unlock()
		cancel(context.Canceled)
	}
}

// pause stops the clock while the run waits for something other than its
// own work, until the returned resume is called.
func (c *leaseClock) pause() (resume func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	c.stop()
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if c.cancel != nil {
			c.start()
		}
		c.mu.Unlock()
	}
}

// start starts a stretch of the clock; c.mu is held.
func (c *leaseClock) start() {
	if !c.since.IsZero() {
		return
	}
	c.since = time.Now()
	c.gen++
	gen, parent, cancel := c.gen, c.parent, c.cancel
	c.timer = time.AfterFunc(max(c.lease-c.used, 0), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if gen != c.gen || c.since.IsZero() {
			return // that stretch ended
		}
		// A run that its parent's end (a shutdown) stopped first has not
		// used up its lease.
		if parent.Err() == nil {
			c.expired = true
			cancel(errLeaseExpired)
		}
	})
}

// stop ends the current stretch, if any; c.mu is held.
func (c *leaseClock) stop() {
	if c.since.IsZero() {
		return
	}
	c.timer.Stop()
	c.used += time.Since(c.since)
	c.since = time.Time{}
}

// hasExpired reports whether the lease stopped a run of the attempt.
func (c *leaseClock) hasExpired() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired
}

// leaseError is the error of an attempt its lease stopped: code
// plugin_failed (as the give-up of a job whose attempts did not finish),
// transient.
func leaseError(lease time.Duration, se *stepError) error {
	where := ""
	if se != nil && se.step != "" {
		where = fmt.Sprintf(" (it was stopped in step %s on %s)", se.step, se.input)
	}
	return docex.Errorf(docex.ErrPluginFailed, "the job did not finish within the worker's lease: its steps ran for the whole lease of %s%s; "+
		"the lease counts a job's own run, not its waits in the worker; give the workers a longer one: docex worker --lease or WorkerConfig.Lease", lease, where)
}
