package engine

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitQueued waits until n callers wait on f (no timing assumption: it
// polls the queue).
func waitQueued(t *testing.T, f *fairSlots, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		f.mu.Lock()
		got := 0
		for _, q := range f.queue {
			got += len(q)
		}
		f.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waiterOfB returns one slot, taken by tenant a, and tenant b waiting for
// it: cancel ends b's wait, whose outcome errc receives.
func waiterOfB(t *testing.T) (*fairSlots, context.CancelFunc, chan error) {
	t.Helper()
	f := newFairSlots(1)
	if err := f.acquire(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errc := make(chan error, 1)
	go func() { errc <- f.acquire(ctx, "b") }()
	waitQueued(t, f, 1)
	return f, cancel, errc
}

// TestFairSlotsTurns: with the only slot taken, tenant a queues five
// runs and then b queues one: b's is served second, not sixth; then a's
// in the order they came.
func TestFairSlotsTurns(t *testing.T) {
	f := newFairSlots(1)
	if err := f.acquire(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var served []string
	var wg sync.WaitGroup
	queue := func(tenant string, i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.acquire(context.Background(), tenant); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served = append(served, tenant+string(rune('0'+i)))
			mu.Unlock()
			f.release()
		}()
	}
	for i := range 5 {
		queue("a", i)
		waitQueued(t, f, i+1) // one at a time: their order is known
	}
	queue("b", 0)
	waitQueued(t, f, 6)
	f.release()
	wg.Wait()
	want := []string{"a0", "b0", "a1", "a2", "a3", "a4"}
	if len(served) != len(want) {
		t.Fatalf("served %v, want %v", served, want)
	}
	for i := range want {
		if served[i] != want[i] {
			t.Fatalf("served %v, want %v", served, want)
		}
	}
	if f.free != 1 || len(f.queue) != 0 || len(f.turns) != 0 {
		t.Fatalf("after all: free %d, queue %v, turns %v", f.free, f.queue, f.turns)
	}
}

// TestFairSlotsCancel: a waiter whose context ends leaves the queue
// without a slot, and the others are served; the slots all come back.
func TestFairSlotsCancel(t *testing.T) {
	f, cancel, errc := waiterOfB(t)
	done := make(chan error, 1)
	go func() { done <- f.acquire(context.Background(), "c") }()
	waitQueued(t, f, 2)
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cancelled waiter: %v", err)
	}
	f.release() // to c, b having left
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.release()
	if f.free != 1 || len(f.queue) != 0 || len(f.turns) != 0 {
		t.Fatalf("after all: free %d, queue %v, turns %v", f.free, f.queue, f.turns)
	}
}

// TestFairSlotsStress: many callers of several tenants, some giving up
// at random moments (also as their slot is handed over), never hold
// more than the slots at once, and every slot comes back.
func TestFairSlotsStress(t *testing.T) {
	const slots = 3
	f := newFairSlots(slots)
	var held, most atomic.Int32
	var wg sync.WaitGroup
	tenants := []string{"a", "b", "c", "d"}
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%3 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rand.IntN(200))*time.Microsecond)
				defer cancel()
			}
			if err := f.acquire(ctx, tenants[i%len(tenants)]); err != nil {
				return
			}
			n := held.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			if rand.IntN(4) == 0 {
				time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
			}
			held.Add(-1)
			f.release()
		}()
	}
	wg.Wait()
	if m := most.Load(); m > slots {
		t.Fatalf("%d slots held at once, want at most %d", m, slots)
	}
	if f.free != slots || len(f.queue) != 0 || len(f.turns) != 0 {
		t.Fatalf("after all: free %d, queue %v, turns %v", f.free, f.queue, f.turns)
	}
}

// TestFairSlotsCancelAtHandover: a waiter whose context ends as a slot is
// handed to it either takes the slot or passes it on; the slot is never
// lost. (Cancelling and releasing together makes both ready at once in
// many of the rounds, whichever order the goroutines run in.)
func TestFairSlotsCancelAtHandover(t *testing.T) {
	for round := range 300 {
		f, cancel, errc := waiterOfB(t)
		cancel()
		f.release()
		if err := <-errc; err == nil {
			f.release() // it took the slot
		}
		if f.free != 1 || len(f.queue) != 0 || len(f.turns) != 0 {
			t.Fatalf("round %d: free %d, queue %v, turns %v", round, f.free, f.queue, f.turns)
		}
	}
}
