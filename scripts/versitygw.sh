#!/usr/bin/env bash
# Builds the S3-compatible server the archive tests run (the Versity S3
# gateway, from the Go module proxy) into the cache directory that
# integration/s3test looks in, unless it is already there. The tests build
# it themselves when missing; CI calls this first so that the build shows
# as a step of its own (about 1.5 to 3 minutes on a fresh machine).
set -euo pipefail
version=v1.8.0  # integration/s3test.Version
dir=${TIDSTORAGE_VERSITYGW_DIR:-"${XDG_CACHE_HOME:-$HOME/.cache}/tidstorage-test/versitygw-$version"}
if [ -x "$dir/versitygw" ]; then
  echo "versitygw $version: $dir/versitygw"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd /tmp && GOBIN="$tmp" GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$version")
mv "$tmp/versitygw" "$dir/versitygw"
echo "versitygw $version built: $dir/versitygw"
