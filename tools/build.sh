#!/usr/bin/env bash
# Configures (once) and builds ringway.
#   tools/build.sh          release build in build/
#   tools/build.sh --asan   AddressSanitizer + UBSan build in build-asan/
# Extra arguments after the flag are passed to ninja (e.g. a target name).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
opts=(-Dbuildtype=release)
if [[ "${1:-}" == "--asan" ]]; then
  shift
  dir=build-asan
  opts=("-Db_sanitize=address,undefined" -Dbuildtype=debugoptimized -Dbenchmarks=false -Db_lundef=false)
fi

if [[ ! -f "$dir/build.ninja" ]]; then
  meson setup "$dir" "${opts[@]}"
fi
jobs=$(nproc 2>/dev/null || echo 2)
ninja -C "$dir" -j "$jobs" "$@"
