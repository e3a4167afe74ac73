package fdlimit

import (
	"errors"
	"fmt"

	"github.com/docex-dev/docex"
)

// Wrap returns err wrapped in docex.ErrTooManyOpenFiles, naming the
// open-file limit, when err says the process or the system ran out of
// file descriptors (IsExhaustion: EMFILE or ENFILE, on Windows
// ERROR_TOO_MANY_OPEN_FILES or WSAEMFILE, anywhere in its chain) and
// does not match docex.ErrTooManyOpenFiles yet; err
// otherwise (nil for nil). The sentinel comes first in the chain, so
// docex.Code reports too_many_open_files even when err also matches
// another docex error.
func Wrap(err error) error {
	if err == nil || !IsExhaustion(err) || errors.Is(err, docex.ErrTooManyOpenFiles) {
		return err
	}
	if l := Limit(); l > 0 {
		return fmt.Errorf("%w (open-file limit %d): %w", docex.ErrTooManyOpenFiles, l, err)
	}
	return fmt.Errorf("%w: %w", docex.ErrTooManyOpenFiles, err)
}
