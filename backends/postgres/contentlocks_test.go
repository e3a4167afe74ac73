package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docex-dev/docex/driver"
)

// TestContentLocksBounded: a transaction that locks more contents than
// maxContentLocks takes the tenant's content lock exclusively instead of
// a lock per content (20,000 locks in one transaction failed with "out
// of shared memory"), and that lock excludes the content locks of every
// other transaction of the tenant until it ends, while transactions with
// few locks exclude each other only per content.
func TestContentLocksBounded(t *testing.T) {
	b := bootstrapped(t, Config{MaxConns: 4}, true)
	st := openStore(t, b, "acme")
	sums := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%064x", fmt.Sprintf("%s%d", prefix, i))[:64]
		}
		return out
	}
	// 40,000 contents in one transaction: more than the lock table holds
	// (6,400 entries by default, with some slack; 20,000 failed).
	must(t, st.Write(bg, func(tx driver.Tx) error {
		return tx.(driver.ChecksumTx).LockContents(bg, sums("big", 40000))
	}))

	// hold runs a transaction that takes the locks of lock and then waits
	// for release; it reports on locked when the locks are held, and its
	// result on done.
	hold := func(lock func(tx driver.Tx) error, locked chan<- struct{}, release <-chan struct{}, done chan<- error) {
		done <- st.Write(bg, func(tx driver.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			// A held lock statement is sent with the next statement.
			if _, err := tx.ContentRefs(bg, sums("x", 1)[0]); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}
	many := func(tx driver.Tx) error {
		return tx.(driver.ChecksumTx).LockContents(bg, sums("many", maxContentLocks+1))
	}
	few := func(prefix string) func(tx driver.Tx) error {
		return func(tx driver.Tx) error { return tx.(driver.ChecksumTx).LockContents(bg, sums(prefix, 3)) }
	}
	for _, tc := range []struct {
		name          string
		first, second func(tx driver.Tx) error
		excluded      bool
	}{
		{"many then few others", many, few("other"), true},
		{"few then many", few("other"), many, true},
		{"few then few others", few("a"), few("b"), false},
		{"few then the same", few("a"), few("a"), true},
		{"one then the same", func(tx driver.Tx) error { return tx.LockContent(bg, sums("a", 1)[0]) }, few("a"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			locked1, release1, done1 := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			releaseFirst := sync.OnceFunc(func() { close(release1) })
			defer releaseFirst() // also when the subtest fails: the transaction ends
			go hold(tc.first, locked1, release1, done1)
			select {
			case <-locked1:
			case err := <-done1:
				t.Fatalf("first transaction: %v", err)
			}
			locked2, release2, done2 := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			close(release2)
			go hold(tc.second, locked2, release2, done2)
			if tc.excluded {
				// The second must wait for the first: it cannot finish
				// while the first holds its locks, however long we wait.
				select {
				case <-locked2:
					t.Fatal("the second transaction took its locks while the first held the tenant's or the same content locks")
				case err := <-done2:
					t.Fatalf("the second transaction ended while the first held its locks: %v", err)
				case <-time.After(300 * time.Millisecond):
				}
			}
			releaseFirst()
			must(t, <-done1)
			select {
			case err := <-done2:
				must(t, err)
			case <-time.After(2 * time.Minute):
				t.Fatal("the second transaction never took its locks")
			}
		})
	}
}
