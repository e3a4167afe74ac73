package docex

import "fmt"

// Errorf returns an error that wraps sentinel, so that errors.Is matches
// the sentinel and its kind and Code returns the sentinel's code. Its
// message is the formatted text alone: the sentinel's own message is not
// added, so write a message that stands on its own.
func Errorf(sentinel *Error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: sentinel}
}

type wrapped struct {
	msg string
	err *Error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
