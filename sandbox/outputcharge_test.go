package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/docex-dev/docex/sandbox/pluginapi"
)

// floodHex is, built with wat2wasm, a module whose export flood(n, keys)
// emits n derived documents (4-byte names, content type "a/b", the name as
// content) each with keys metadata keys of 2 bytes and the empty string
// value (encoded "s"), and meta(keys, rounds) sets keys such keys on the
// input, rounds times over (testplugins' metaflood probe, P12, in small):
//
//	(func (export "flood") (param $n i32) (param $keys i32) (result i32)
//	  ... (call $emit name 4 "a/b" 3 name 4)
//	  ... (call $dset name 4 key 2 "s" 1))
//	(func (export "meta") (param $keys i32) (param $rounds i32) (result i32)
//	  ... (call $mset key 2 "s" 1))
const floodHex = "0061736d0100000001220560067f7f7f7f7f7f017f60047f7f7f7f017f60017f017f6000017f60027f7f017f02400305646f63657804656d6974000005646f63657814646572697665645f6d657461646174615f736574000005646f6365780c6d657461646174615f7365740001030504020304040503010001072504066d656d6f7279020009646f6365785f72756e000405666c6f6f640005046d65746100060a9002040b0041e1002000410f716a0b040041000ba00101027f02400340200220004f0d014110200210033a00004111200241047610033a00004112200241087610033a000041132002410c7610033a00004110410441004103411041041000044041010f0b4100210302400340200320014f0d014120200310033a00004121200341047610033a00004110410441204102410841011001044041020f0b200341016a21030c000b0b200241016a21020c000b0b41000b5b01027f02400340200320014f0d014100210202400340200220004f0d014120200210033a00004121200241047610033a000041204102410841011002044041020f0b200241016a21020c000b0b200341016a21030c000b0b41000b0b0f020041000b03612f620041080b0173"

// Every derived document costs derivedOverhead (256) and every metadata key
// new to its document metaKeyOverhead (128) against max_output_bytes,
// besides their bytes; a key set again costs its bytes only. Before, only
// the bytes counted: 16,384 derived documents of 254 empty keys each were
// 12.6 MB of output under the 16 MiB limit, and one run took 129 s, 2.94
// GB of RSS and 772 MB of storage (P12 H2); here 64 documents of 254 keys
// under a 64 KiB limit (49,472 bytes before; now 2,146,624 were it to run
// on, and it stops at the limit).
func TestOutputPerEntryCharge(t *testing.T) {
	ctx := context.Background()
	b, err := hex.DecodeString(floodHex)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	m := &pluginapi.Manifest{Name: "flood", Version: "1", ABIVersion: pluginapi.ABIVersion, Module: "flood.wasm", SHA256: hex.EncodeToString(sum[:]),
		Capabilities: []string{"documents.emit", "metadata.write"}}
	m.Limits.MaxOutputBytes = 64 << 10
	m.Limits.MaxHostCalls = 1 << 20
	p, err := newSandbox(t, Config{}).Load(ctx, m, b)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	const doc = 256 + 4 + 3 + 4 // overhead, name, content type, content
	const key = 128 + 2 + 1     // overhead, key, value
	for _, c := range []struct {
		name    string
		entry   string
		args    []uint64
		want    int64 // BytesOut
		tooMuch bool
	}{
		{"no output", "flood", []uint64{0, 0}, 0, false},
		{"documents", "flood", []uint64{3, 0}, 3 * doc, false},
		{"documents and keys", "flood", []uint64{4, 10}, 4*doc + 40*key, false},
		{"input keys set again", "meta", []uint64{10, 3}, 10*key + 2*10*3, false},
		{"metaflood", "flood", []uint64{64, 254}, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := p.run(ctx, pluginapi.Call{TenantID: "t", Input: textDoc("in", "x")}, callOpts{entry: c.entry, args: c.args})
			if c.tooMuch {
				if !errors.Is(err, pluginapi.ErrPluginOutputTooLarge) {
					t.Fatalf("err = %v, want %v", err, pluginapi.ErrPluginOutputTooLarge)
				}
				if r == nil || r.Report.BytesOut <= m.Limits.MaxOutputBytes || r.Report.BytesOut > m.Limits.MaxOutputBytes+doc+key {
					t.Fatalf("report %+v: want bytes_out just past the limit", r)
				}
				return
			}
			if err != nil || r.Status != pluginapi.StatusOK {
				t.Fatalf("run: %v %+v", err, r)
			}
			if r.Report.BytesOut != c.want || r.Report.PeakHostBytes < c.want {
				t.Fatalf("bytes_out %d, peak_host_bytes %d, want %d", r.Report.BytesOut, r.Report.PeakHostBytes, c.want)
			}
		})
	}
}
