#!/usr/bin/env bash
# Runs the suites repeatedly while two busy loops load the two cores they run on: a check
# for tests that only pass on an idle machine. Not part of scripts/test.sh (it takes long).
# Needs a build from scripts/test.sh (or `meson setup` with tests enabled); the Windows
# suites run when scripts/cross-windows.sh has built them.
#
#   scripts/stress-tests.sh [ROUNDS]   Linux rounds, default 3 (Windows: 5 x ROUNDS)
#   PROCAUDIO_BUILD_DIR                the Linux build directory (default build-test)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${PROCAUDIO_BUILD_DIR:-build-test}
rounds=${1:-3}
[[ -f $build/build.ninja ]] || { echo "no build in $build: run scripts/test.sh first" >&2; exit 1; }

taskset -c 0 sh -c 'while :; do :; done' &
load0=$!
taskset -c 1 sh -c 'while :; do :; done' &
load1=$!
trap 'kill "$load0" "$load1" 2>/dev/null' EXIT

fail=0
if [[ -f build-win64/build.ninja ]]; then
  echo "== Windows suites under wine, $((5 * rounds)) repeats"
  log="build-win64/meson-logs/stress.txt"
  if ! taskset -c 0,1 scripts/cross-windows.sh test --no-rebuild --repeat "$((5 * rounds))" \
    >"$log" 2>&1; then
    fail=1
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$log"
    echo "   (details: $log)"
  fi
fi
for ((i = 1; i <= rounds; i++)); do
  echo "== Linux suites, round $i of $rounds"
  log=$build/meson-logs/stress-$i.txt
  if ! taskset -c 0,1 meson test -C "$build" --no-rebuild --print-errorlogs >"$log" 2>&1; then
    fail=1
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$log"
    echo "   (details: $log)"
  fi
done
echo "== $([[ $fail == 0 ]] && echo "no failure" || echo "FAILURES: see above")"
exit $fail
