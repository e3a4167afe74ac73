#!/bin/sh
# Rebuilds plugins/builtin/steps.wasm (the built-in steps' shared module)
# reproducibly and writes its sha256 into every manifest. Needs only Go (the
# version in go.mod: another toolchain builds different bytes).
# Run from anywhere: plugins/builtin/build.sh   (or: make builtin)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
CGO_ENABLED=0 GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false \
	-ldflags="-s -w -buildid=" -o "$here/steps.wasm" ./plugins/builtin/guest
sum=$(sha256sum "$here/steps.wasm" | cut -d' ' -f1)
for toml in "$here"/manifests/*.toml; do
	sed -i "s/^sha256 = \".*\"/sha256 = \"$sum\"/" "$toml"
done
echo "plugins/builtin/steps.wasm $sum"
