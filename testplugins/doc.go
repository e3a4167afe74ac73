// Package testplugins holds the sandbox's friendly and hostile test plugins:
// one directory per plugin with its source (.wat or Go), the committed build
// output and plugin.toml. Rebuild them all with testplugins/build.sh (needs
// wat2wasm and Go); go test needs neither, because the outputs are embedded.
// The Go plugins build reproducibly with the toolchain go.mod names
// (TestGoPluginsReproducible checks the committed modules).
//
// Friendly: echo, derive, split, upper, tag (WAT; the last three make the
// pipeline tests' 3-step fan-out); startwork (WAT: a start function and
// _initialize that do known work, for the report's init fields); validate
// (WAT: a docex_validate that accepts, refuses, traps or spins as its
// parameter says); wordcount,
// lookup (Go guests using pdk); iovlines (WAT: one log line per fd_write);
// csqlite (C with SQLite compiled in), rsword (Rust), asupper
// (AssemblyScript), rebuilt by testplugins/build-other.sh, which needs
// their toolchains (build.sh only rewrites their sha256).
// Hostile: loop, membomb, trap, bigoutput, chatty, oob, nocap, forge, wasi,
// procexit, tablebomb, recurse, badimport, badsig, badvalidate,
// badvalidatename, notwasm, badhash, lookupflood, metalook, emptylog,
// iovbomb, iovone, starthost, startwasi, initwasi, fdstate, fillbomb,
// fillstart, growbomb, startcold
// (and the issue 7 set, each described in its .wat); modules that
// are malformed on purpose are generated in the tests instead.
package testplugins
