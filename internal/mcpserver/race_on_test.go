//go:build race

package mcpserver

// raceEnabled: the race detector is on; it changes allocation counts
// (bytes.Buffer.Grow allocates its buffer twice under it).
const raceEnabled = true
