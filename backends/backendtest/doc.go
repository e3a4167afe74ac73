// Package backendtest is the conformance suite every docex storage backend
// runs, unchanged: each backend's own test file calls Run with a Harness
// that makes fresh, empty backends. It drives the backend through package
// engine, so it checks the behaviour users see, isolation included.
package backendtest
