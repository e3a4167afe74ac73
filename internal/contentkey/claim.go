package contentkey

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docex-dev/docex"
)

// Marker is the name of the claim marker (driver.Claimer) at the root of a
// content store: a file in the content directory, an object under the
// S3 prefix. It holds the owning system's id and a newline.
const Marker = ".docex-system"

// MarkerBytes returns the marker's content for systemID.
func MarkerBytes(systemID string) []byte { return []byte(systemID + "\n") }

// CheckMarker compares a marker's content with systemID. It returns nil
// when the marker names systemID and an error wrapping
// docex.ErrInvalidConfig and mark (driver.ErrOtherSystem), naming both
// ids and location, when it names another system or holds something
// else.
func CheckMarker(location string, data []byte, systemID string, mark error) error {
	owner := strings.TrimSpace(string(data))
	if owner == systemID {
		return nil
	}
	if len(owner) > 64 {
		owner = owner[:64] + "..."
	}
	return &markerError{kind: docex.ErrInvalidConfig, mark: mark, msg: fmt.Sprintf(
		"the content store at %s is not this system's: its marker %s names docex system %s, this system is %s (storage.documents changed after docex init, or shared with another system?); give each system its own bucket/prefix or content directory (storage.documents in docex.yaml)",
		location, Marker, strconv.Quote(owner), systemID)}
}

// Unclaimed returns the error of a store without a marker, which wraps
// docex.ErrNotInitialized and mark (driver.ErrUnclaimed: this package
// does not import driver).
func Unclaimed(location string, mark error) error {
	return &markerError{kind: docex.ErrNotInitialized, mark: mark, msg: fmt.Sprintf("the content store at %s is not this system's: it has no %s marker (storage.documents changed after docex init? then change it back; a system initialised by an older docex: run docex init, which claims the store)",
		location, Marker)}
}

// markerError is an error about a store's claim marker: its kind
// (docex.ErrNotInitialized, docex.ErrInvalidConfig) and the driver's mark.
type markerError struct {
	msg        string
	kind, mark error
}

func (e *markerError) Error() string   { return e.msg }
func (e *markerError) Unwrap() []error { return []error{e.kind, e.mark} }
