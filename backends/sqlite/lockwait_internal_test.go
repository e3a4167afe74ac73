package sqlite

import (
	"slices"
	"strings"
	"testing"
)

// TestLockHoldersIn: the processes named as holding a database's write
// lock are those /proc/locks lists with a write lock on the WAL write
// lock byte (120) of its -shm file, or on its database file; not
// readers' locks, waiters, other files, nor this process. One listed
// with pid 0 (a process of another PID namespace) is reported unseen.
func TestLockHoldersIn(t *testing.T) {
	shm := fileID{major: 0xfe, minor: 0, ino: 10002983}
	db := fileID{major: 0xfe, minor: 0, ino: 10002976}
	locks := `1: POSIX  ADVISORY  WRITE 17216 fe:00:10002983 120 120
2: POSIX  ADVISORY  READ 17216 fe:00:10002983 124 124
3: POSIX  ADVISORY  READ 17216 fe:00:10002983 128 128
4: POSIX  ADVISORY  READ 17216 fe:00:10002976 1073741826 1073742335
5: POSIX  ADVISORY  READ 17197 fe:00:10002983 128 128
6: POSIX  ADVISORY  WRITE 3864 fe:00:778394 0 EOF
7: -> POSIX  ADVISORY  WRITE 4000 fe:00:10002983 120 120
8: POSIX  ADVISORY  WRITE 17216 fe:00:10002983 120 120
9: POSIX  ADVISORY  WRITE 17300 fe:00:10002983 121 121
10: POSIX  ADVISORY  WRITE 17301 fe:00:10002983 0 EOF
11: POSIX  ADVISORY  WRITE 17302 fe:00:10002976 1073741824 1073741824
12: POSIX  ADVISORY  WRITE 17197 fe:00:10002983 120 120
13: POSIX  ADVISORY  WRITE 17303 fe:01:10002983 120 120
14: OFDLCK ADVISORY  WRITE -1 fe:00:10002983 120 120
15: POSIX  ADVISORY  READ 0 fe:00:10002983 120 120
garbage
`
	got, unseen, err := lockHoldersIn(strings.NewReader(locks), 17197, shm, db)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{17216, 17301, 17302}; !slices.Equal(got, want) || unseen {
		t.Fatalf("holders %v (unseen %t), want %v", got, unseen, want)
	}
	// A holder in another PID namespace is listed with pid 0.
	_, unseen, err = lockHoldersIn(strings.NewReader(locks+"16: POSIX  ADVISORY  WRITE 0 fe:00:10002983 120 120\n"), 17197, shm, db)
	if err != nil || !unseen {
		t.Fatalf("a lock of pid 0: unseen %t, %v; want true", unseen, err)
	}
}
