//go:build !unix

package sqlite

import (
	"context"
	"encoding/binary"
)

// openShm does nothing: elsewhere than on Unix the generation is PRAGMA
// data_version (the -shm file may be mapped in ways a read of the file
// does not see at once).
func (v *sysVersion) openShm(string) error { return nil }

func (v *sysVersion) unmapShm() {}

// readGen reads PRAGMA data_version on the generation connection: it
// changes whenever another connection commits. The caller holds v.mu for
// reading.
func (v *sysVersion) readGen(ctx context.Context) (sysGen, error) {
	g := sysGen{epoch: v.epoch}
	var n int64
	if err := v.stmt.QueryRowContext(ctx).Scan(&n); err != nil {
		return g, err
	}
	binary.LittleEndian.PutUint64(g.state[:], uint64(n))
	return g, nil
}
