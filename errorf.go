package docex

import "fmt"

// Errorf returns an error that wraps sentinel (so errors.Is matches it and
// its kind) with a formatted message prefixed to the sentinel's own.
func Errorf(sentinel *Error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: sentinel}
}

type wrapped struct {
	msg string
	err *Error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
