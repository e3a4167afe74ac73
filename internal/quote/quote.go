package quote

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Max is the most bytes of a string Short quotes.
const Max = 64

// Short returns s quoted (strconv.Quote) in full when it is at most Max
// bytes, else Head(s) quoted, "..." and the length of s:
// `"abc"... (100 bytes)`.
func Short(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(Head(s)), len(s))
}

// Head returns the first Max bytes of s cut back until they are valid
// UTF-8 (a whole character at the end); s itself when it is at most Max
// bytes.
func Head(s string) string {
	if len(s) <= Max {
		return s
	}
	head := s[:Max]
	for len(head) > 0 && !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	return head
}
