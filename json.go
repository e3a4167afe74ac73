package docex

import "time"

// Milliseconds returns d as a number of milliseconds at microsecond
// precision: how docex writes durations in JSON (in a key ending in _ms,
// see docs/json.md).
func Milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
