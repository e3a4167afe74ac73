#!/bin/sh
# Rebuilds the test plugins written in other languages than Go and WAT
# (csqlite: C with SQLite compiled in; rsword: Rust; asupper:
# AssemblyScript) and rewrites their sha256. build.sh does not run it: it
# needs toolchains CI does not install. Built with Debian 12's packages
# clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 (clang 14), rustc and
# libstd-rust-dev-wasm32 (rustc 1.63; /usr/bin/rustc, not a rustup one),
# and npm's assemblyscript 0.28.20 (`asc` on PATH) and better-sqlite3 12.11.1
# (for SQLite 3.53.2's sqlite3.c and sqlite3.h, in package/deps/sqlite3).
# Usage: testplugins/build-other.sh DIR_WITH_SQLITE3_C
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sqlite=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here"

cc="clang --target=wasm32-wasi --sysroot=/usr -O2"
$cc -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL -DSQLITE_OMIT_SHARED_CACHE \
	-DSQLITE_OMIT_RANDOMNESS -DSQLITE_TEMP_STORE=3 -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_SIGNAL \
	-D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID -c "$sqlite/sqlite3.c" -o "$tmp/sqlite3.o"
$cc -I"$sqlite" -c csqlite/csqlite.c -o "$tmp/csqlite.o"
$cc -mexec-model=reactor -o csqlite/csqlite.wasm "$tmp/csqlite.o" "$tmp/sqlite3.o" \
	-lwasi-emulated-mman -lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-getpid

/usr/bin/rustc --target wasm32-wasi --crate-type cdylib -O -C strip=symbols -o rsword/rsword.wasm rsword/rsword.rs

asc asupper/asupper.ts -O3 --runtime incremental --use abort= -o asupper/asupper.wasm

for d in csqlite rsword asupper; do
	sum=$(sha256sum "$d/$d.wasm" | cut -d' ' -f1)
	sed -i "s/^sha256 = \".*\"/sha256 = \"$sum\"/" "$d/plugin.toml"
done
echo "other-language test plugins rebuilt"
