#!/usr/bin/env bash
# The project's test command (README, CI): installs what is missing, builds, runs the unit tests and
# the integration suite against the release binary, then (unless RINGWAY_SKIP_ASAN is set) the same
# against an AddressSanitizer/UBSan build, skipping tests marked `slow` there.
# Exits non-zero if anything failed. Works from any directory.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

section() { printf '\n======== %s ========\n' "$*"; }
failed=()
passed=()
step() {  # step NAME COMMAND...
  local name=$1; shift
  section "$name"
  if "$@"; then passed+=("$name"); else failed+=("$name (exit $?)"); fi
}
summary() {
  section "summary"
  local s
  for s in "${passed[@]}"; do echo "PASS  $s"; done
  for s in "${failed[@]}"; do echo "FAIL  $s"; done
  if ((${#failed[@]})); then echo "RESULT: FAILED (${#failed[@]} step(s))"; exit 1; fi
  echo "RESULT: OK (${#passed[@]} steps)"
  exit 0
}

# Debian's python3 (the PATH may have another python3 first, without pytest).
PY=/usr/bin/python3
# Each pytest run is bounded as a whole too (every test and fixture is bounded on its own).
pytest_timeout=(timeout --signal=TERM --kill-after=30 2400)
pytest_args=(-v -rfEs --durations=15 -p no:cacheprovider tests/integration)
# Sanitizer runtime settings: any report is fatal, so the harness sees a non-zero exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1:detect_leaks=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

step "setup" tools/setup.sh
((${#failed[@]})) && summary
step "build (release, build/)" tools/build.sh
((${#failed[@]})) && summary
step "unit tests (release)" meson test -C build --print-errorlogs
step "integration tests (release: build/src/ringway)" \
  "${pytest_timeout[@]}" env RINGWAY_BIN="$PWD/build/src/ringway" "$PY" -m pytest "${pytest_args[@]}"

if [[ -z "${RINGWAY_SKIP_ASAN:-}" ]]; then
  step "build (asan+ubsan, build-asan/)" tools/build.sh --asan
  if [[ -x build-asan/src/ringway ]]; then
    step "unit tests (asan+ubsan)" meson test -C build-asan --print-errorlogs
    step "integration tests (asan+ubsan: build-asan/src/ringway, not slow)" \
      "${pytest_timeout[@]}" env RINGWAY_BIN="$PWD/build-asan/src/ringway" RINGWAY_SANITIZED=1 \
      "$PY" -m pytest "${pytest_args[@]}" -m "not slow"
  fi
else
  section "sanitizer pass skipped (RINGWAY_SKIP_ASAN is set)"
fi
summary
