#!/usr/bin/env bash
# Benchmarks ringway against nginx, HAProxy and direct-to-upstream on this machine and writes
# bench/results/latest.{md,png,svg,json}. Needs wrk, nginx-light, haproxy, gnuplot-nox (tools/setup.sh)
# and a built ringway (tools/build.sh). Options: tools/compare.sh --help
set -euo pipefail
exec /usr/bin/python3 -B "$(dirname "$0")/compare/compare.py" "$@"
