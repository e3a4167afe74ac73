package engine

import (
	"context"
	"testing"
	"time"
)

// TestGraceAfter: the context of a write that must run past a stop is not
// cancelled with its parent, but a grace after it, and by its own cancel.
func TestGraceAfter(t *testing.T) {
	type key struct{}
	tests := []struct {
		name       string
		stopParent bool // cancel the parent
		cancelOwn  bool // call the returned cancel
	}{
		{"parent running", false, false},
		{"parent stopped", true, false},
		{"own cancel", false, true},
		{"both", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent, stop := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
			defer stop()
			g, cancel := graceAfter(parent, time.Millisecond)
			defer cancel()
			if g.Value(key{}) != "v" {
				t.Fatal("the parent's values are lost")
			}
			if tc.stopParent {
				stop()
			}
			if tc.cancelOwn {
				cancel()
			}
			if !tc.stopParent && !tc.cancelOwn {
				// Not done: nothing can end it. A short look is enough
				// (no deadline, no timer armed).
				if _, ok := g.Deadline(); ok {
					t.Fatal("a deadline without a stop")
				}
				select {
				case <-g.Done():
					t.Fatal("done without a stop or a cancel")
				case <-time.After(20 * time.Millisecond):
				}
				return
			}
			select {
			case <-g.Done():
			case <-time.After(2 * time.Minute):
				t.Fatal("not done 2 minutes after the stop or cancel")
			}
		})
	}
}

// TestGraceAfterCountsFromTheStop: a stop long gone when the write begins
// still leaves the write its grace, counted from the call.
func TestGraceAfterCountsFromTheStop(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	stop()
	g, cancel := graceAfter(parent, time.Hour)
	defer cancel()
	if g.Err() != nil {
		t.Fatalf("cut short at once: %v", g.Err())
	}
}
