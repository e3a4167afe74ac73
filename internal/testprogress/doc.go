// Command testprogress reads "go test -json" on stdin and prints one line
// per package as it finishes (not in go test's package order), the output
// of failing tests, and at the end the slowest tests and a summary. It
// exits 1 when a package failed or did not build. scripts/test.sh uses it.
//
//	go test -json ./... | go run ./internal/testprogress
package main
