//go:build wasip1

// Command lookup is a test plugin: it looks up other documents of its tenant
// by the "name" parameter (or by metadata "key"="value"), reads them, and
// records what it found. With "clock" it instead records what the sandbox
// shows it of time and randomness while its garbage collector works.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/docex-dev/docex/plugins/pdk"
)

func main() {}

//go:wasmexport docex_run
func docexRun() int32 { return pdk.Run(lookup) }

func lookup() error {
	if _, ok := pdk.Param("clock"); ok {
		return clock()
	}
	var docs []pdk.Doc
	var err error
	if name, ok := pdk.Param("name"); ok {
		docs, err = pdk.LookupByName(name, 16)
	} else {
		k, _ := pdk.Param("key")
		v, _ := pdk.Param("value")
		docs, err = pdk.LookupByMetadata(k, v, 16)
	}
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if _, ok := pdk.Param("panic"); ok {
		panic("lookup plugin asked to panic")
	}
	if _, ok := pdk.Param("spin"); ok {
		spin()
	}
	total := 0
	names := ""
	for _, d := range docs {
		n, err := d.Name()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(d.Reader())
		if err != nil {
			return err
		}
		total += len(b)
		names += n + ";"
		if a, err := d.Metadata("author"); err == nil {
			pdk.SetMetadata("author", a)
		}
	}
	pdk.Logf("found %d documents", len(docs))
	if err := pdk.SetMetadata("found", len(docs)); err != nil {
		return err
	}
	if err := pdk.SetMetadata("names", names); err != nil {
		return err
	}
	return pdk.SetMetadata("total_bytes", total)
}

// spin never returns: a runaway Go guest must still be stopped.
func spin() {
	n := 0
	for {
		n++
	}
}

// clock records the wall clock at its start (wall_ns), the monotonic time
// its work took (work_ns) and, with "sleep", an hour's sleep took
// (slept_ns, else 0), 16 bytes
// of crypto/rand (random) and the garbage collections run (gc_cycles).
// The work reads the input 4 KiB at a time and allocates 64 KiB per read,
// keeping the last 64 (4 MiB) alive, so the collector runs and paces
// itself by the clock.
func clock() error {
	t0 := time.Now()
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	var keep [][]byte
	r, buf := pdk.Input().Reader(), make([]byte, 4<<10)
	for {
		n, err := r.Read(buf)
		b := make([]byte, 64<<10)
		copy(b, buf[:n])
		if keep = append(keep, b); len(keep) > 64 {
			keep = keep[1:]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	t1 := time.Now()
	if _, ok := pdk.Param("sleep"); ok {
		time.Sleep(time.Hour)
	}
	slept := time.Since(t1)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for _, kv := range []struct {
		k string
		v any
	}{{"wall_ns", t0.UnixNano()}, {"work_ns", t1.Sub(t0).Nanoseconds()}, {"slept_ns", slept.Nanoseconds()},
		{"random", hex.EncodeToString(rnd[:])}, {"gc_cycles", int(ms.NumGC)}, {"kept", len(keep)}} {
		if err := pdk.SetMetadata(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}
