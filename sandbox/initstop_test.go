package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// TestInitStoppedByCallerAndClose: a start function or _initialize that
// never returns is stopped by the caller's ctx (the Run fails with the
// ctx's error, not ErrPluginTimeout) and by Sandbox.Close (ErrClosed),
// long before Config.InitTimeout (an hour here), so neither can hang a
// Run. TestInitDeadline covers InitTimeout itself. The minute below only
// guards against a hang.
func TestInitStoppedByCallerAndClose(t *testing.T) {
	for _, name := range []string{"startspin", "initspin"} {
		for _, stop := range []string{"cancel", "close"} {
			t.Run(name+"/"+stop, func(t *testing.T) {
				sb := newSandbox(t, Config{InitTimeout: time.Hour})
				m, mod := readPlugin(t, name)
				p, err := sb.Load(context.Background(), m, mod)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := p.Run(ctx, pluginapi.Call{TenantID: "a"})
					done <- err
				}()
				for running := false; !running; { // the guest is initialising
					select {
					case err := <-done:
						t.Fatalf("Run returned before it was stopped: %v", err)
					case <-time.After(5 * time.Millisecond):
					}
					sb.mu.Lock()
					running = len(sb.running) > 0
					sb.mu.Unlock()
				}
				if stop == "cancel" {
					cancel()
				} else {
					go sb.Close(context.Background())
				}
				select {
				case err = <-done:
				case <-time.After(time.Minute):
					t.Fatalf("%s: Run still running a minute after %s", name, stop)
				}
				switch {
				case errors.Is(err, pluginapi.ErrPluginTimeout):
					t.Fatalf("err = %v: a timeout, want the %s's error", err, stop)
				case stop == "cancel" && !errors.Is(err, context.Canceled):
					t.Fatalf("err = %v, want context.Canceled", err)
				case stop == "close" && !errors.Is(err, pluginapi.ErrClosed):
					t.Fatalf("err = %v, want ErrClosed", err)
				}
				t.Logf("%s/%s: %v", name, stop, err)
			})
		}
	}
}
