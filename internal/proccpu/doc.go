// Package proccpu reads the CPU time the running process has used, for
// the benchmarks that report CPU ratios beside wall-clock ones. It is
// imported by tests and test harnesses only, never by the docex binary.
package proccpu
