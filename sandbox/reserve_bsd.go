//go:build unix && !linux

package sandbox

// mapNoReserve: the flag is Linux's (elsewhere anonymous mappings are not
// charged before they are touched, or the flag does not exist).
const mapNoReserve = 0
