//go:build !linux

package sqlite

import "errors"

// writeLockHolders cannot name the processes holding a file lock here:
// only Linux lists them (/proc/locks).
func writeLockHolders(string) (pids []int, unseen bool, err error) {
	return nil, false, errors.New("only Linux lists the processes holding file locks, in /proc/locks")
}
