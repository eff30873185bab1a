#!/usr/bin/env bash
# Installs the Debian 12 packages ringway needs to build, test and compare against.
# Idempotent: apt-get runs only when something is missing. Works as root or via sudo.
set -euo pipefail

packages=(
  # build
  g++ meson ninja-build pkg-config liburing-dev node-llhttp libsimdjson-dev libmimalloc-dev
  libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  # cluster rate limits (issue 15): hiredis as the RESP codec, redis-server for the tests,
  # faketime for the clock-skew test (tests/integration/test_redis_limit.py)
  libhiredis-dev redis-server redis-tools faketime
  # upstream DNS re-resolution (issue 14): c-ares on the resolver thread
  libc-ares-dev
  # tests and comparisons
  python3 python3-pytest curl wrk nginx-light haproxy openssl
  # comparison benchmark (tools/compare.sh): the chart
  gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing missing packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: not root and sudo is not available; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"
