package sandbox

import (
	"sync"
	"testing"
)

// TestMemoryFreeConcurrent: Free may be called from two goroutines at
// once (wazero's module close, run by Sandbox.Close, and instance.close,
// run by a Run that found the sandbox closed). Before, the race detector
// found the two writes unserialised (TestInitStoppedByCallerAndClose under
// -race, once in a whole run of the package), and with a mapped memory
// both could unmap it. Fails on the old code under -race only.
func TestMemoryFreeConcurrent(t *testing.T) {
	for range 8 {
		m := &linearMemory{limit: 1 << 20}
		m.Reallocate(1 << 16)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				m.Free()
			}()
		}
		close(start)
		wg.Wait()
		if m.buf != nil || m.mapped != nil {
			t.Fatal("memory not freed")
		}
	}
}
