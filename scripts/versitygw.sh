#!/usr/bin/env bash
# Prints the path of Versity's S3 gateway (versitygw), the real S3 server
# the S3 content-store tests run against, building it first when it is not
# cached yet: go install into ${DOCEX_CI_CACHE:-~/.cache/docex-ci}, outside
# any clone, so CI and developers on one machine build it once (about 4-5
# minutes with a cold Go build cache on this machine kind; seconds with a
# warm one; nothing when cached). Usage:
#   export DOCEX_TEST_VERSITYGW=$(scripts/versitygw.sh)
set -euo pipefail
version=v1.8.0
dir="${DOCEX_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/docex-ci}/versitygw-$version"
bin="$dir/versitygw"
if [ ! -x "$bin" ]; then
	start=$(date +%s)
	echo "versitygw: building $version into $dir (one time per machine)" >&2
	mkdir -p "$dir"
	GOBIN="$dir" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
	echo "versitygw: built in $(($(date +%s) - start))s" >&2
fi
echo "$bin"
