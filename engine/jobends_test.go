package engine

import "testing"

// TestJobEnds: a waiter wakes once, when every job it waits for has ended
// (whether a worker of this process settled it or a poll saw it final),
// and never for another tenant's jobs, even with the same ids.
func TestJobEnds(t *testing.T) {
	woken := func(s *endSub) bool {
		select {
		case <-s.wake:
			return true
		default:
			return false
		}
	}
	var j jobEnds
	a := j.subscribe("acme", []string{"j1", "j2", "j3"})
	other := j.subscribe("globex", []string{"j1"})
	steps := []struct {
		name             string
		do               func()
		wakeA, wakeOther bool
	}{
		{"another tenant's ends", func() { j.ended("globex", []string{"j1", "j2", "j3"}) }, false, true},
		{"some of acme's", func() { j.ended("acme", []string{"j1", "x"}) }, false, false},
		{"seen final by a poll", func() { j.known(a, []string{"j2"}) }, false, false},
		{"the last one", func() { j.ended("acme", []string{"j3"}) }, true, false},
		{"again: no second wake", func() { j.ended("acme", []string{"j1", "j2", "j3"}) }, false, false},
	}
	for _, st := range steps {
		st.do()
		if got := woken(a); got != st.wakeA {
			t.Errorf("%s: acme's waiter woken %v, want %v", st.name, got, st.wakeA)
		}
		if got := woken(other); got != st.wakeOther {
			t.Errorf("%s: globex's waiter woken %v, want %v", st.name, got, st.wakeOther)
		}
	}
	j.unsubscribe(a)
	j.unsubscribe(other)
	if len(j.subs) != 0 {
		t.Fatalf("%d waiters left after unsubscribe", len(j.subs))
	}
	b := j.subscribe("acme", []string{"j9"})
	j.unsubscribe(b)
	j.ended("acme", []string{"j9"}) // unsubscribed: not woken
	if woken(b) {
		t.Fatal("an unsubscribed waiter was woken")
	}
}
