#!/bin/sh
# Rebuilds every test plugin and rewrites the sha256 in each plugin.toml
# (except badhash, whose hash is wrong on purpose). Needs wat2wasm (Debian:
# wabt) and Go. Run from anywhere: testplugins/build.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$here"

for wat in */*.wat; do
	wat2wasm "$wat" -o "${wat%.wat}.wasm"
done

# refuel is hand-assembled (no assembler accepts an undefined global index;
# see refuel/refuel.txt).
printf '\000asm\001\000\000\000\001\005\001\140\000\001\177\003\002\001\000\005\003\001\000\001\007\026\002\006memory\002\000\011docex_run\000\000\012\022\001\020\000\102\177\044\001\102\177\044\002\101\000\044\000\101\000\013' > refuel/refuel.wasm

# The Go plugins build reproducibly with the toolchain go.mod names
# (another Go version builds other bytes); TestGoPluginsReproducible
# rebuilds them and fails when a committed module differs.
gobuild() { # package-dir output
	(cd "$root" && CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false \
		-ldflags="-s -w -buildid=" -o "$2" "$1")
}
gobuild ./plugins/examples/wordcount "$here/wordcount/wordcount.wasm"
gobuild ./testplugins/lookup "$here/lookup/lookup.wasm"

sethash() { # manifest wasm
	sum=$(sha256sum "$2" | cut -d' ' -f1)
	sed -i "s/^sha256 = \".*\"/sha256 = \"$sum\"/" "$1"
}
for toml in */plugin.toml; do
	dir=$(dirname "$toml")
	[ "$dir" = badhash ] && continue
	mod=$(sed -n 's/^module = "\(.*\)"/\1/p' "$toml")
	sethash "$toml" "$dir/$mod"
done
sethash "$root/plugins/examples/wordcount/plugin.toml" "$here/wordcount/wordcount.wasm"
echo "testplugins rebuilt"
