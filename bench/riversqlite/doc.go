// Package riversqlite measures River's SQLite driver (riverqueue/river
// riverdriver/riversqlite) against docex's SQLite job queue (a jobs table
// in the tenant's own file), in one run: the evidence behind the choice in
// docs/jobs.md. It is a module of its own so that River's SQLite driver is
// not a dependency of docex.
//
//	cd bench/riversqlite && go test -run xxx -bench . -benchtime=1x
package riversqlite
