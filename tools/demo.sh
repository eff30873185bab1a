#!/usr/bin/env bash
# Builds ringway and starts it in demo mode: built-in users/products services behind the gateway.
# Try: curl -s localhost:8080/api/users/   (extra arguments are passed to ringway)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
exec build/src/ringway --demo "$@"
