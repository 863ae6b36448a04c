#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the suites repeatedly while two busy loops load the two cores they run on: a check
# for tests that only pass on an idle machine. Not part of scripts/test.sh (it takes long).
# Needs a build from scripts/test.sh (or `meson setup` with tests enabled); the Windows
# suites run when scripts/cross-windows.sh has built them.
#
#   scripts/stress-tests.sh [ROUNDS]   Linux rounds, default 3 (Windows: 5 x ROUNDS)
#   PROCAUDIO_BUILD_DIR                the Linux build directory (default build-test)
#   PROCAUDIO_WIN_BUILD_DIR            the Windows one, as for cross-windows.sh (build-win64)
#   PROCAUDIO_STRESS_SANITIZERS=1      also scripts/sanitize.sh once, under the same load
#                                      (its builds are PROCAUDIO_BUILD_DIR-asan and -tsan)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${PROCAUDIO_BUILD_DIR:-build-test}
win_build=${PROCAUDIO_WIN_BUILD_DIR:-build-win64}
rounds=${1:-3}
[[ -f $build/build.ninja ]] || { echo "no build in $build: run scripts/test.sh first" >&2; exit 1; }

taskset -c 0 sh -c 'while :; do :; done' &
load0=$!
taskset -c 1 sh -c 'while :; do :; done' &
load1=$!
trap 'kill "$load0" "$load1" 2>/dev/null' EXIT

fail=0
report() {  # $1: the meson test log of a failed run
  fail=1
  grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$1"
  echo "   (details: $1)"
}
if [[ -f $win_build/build.ninja ]]; then
  echo "== Windows suites under wine, $((5 * rounds)) repeats"
  log=$win_build/meson-logs/stress.txt
  taskset -c 0,1 scripts/cross-windows.sh test --no-rebuild --repeat "$((5 * rounds))" \
    >"$log" 2>&1 || report "$log"
fi
if [[ ${PROCAUDIO_STRESS_SANITIZERS:-0} == 1 ]]; then
  echo "== the sanitizer suites (scripts/sanitize.sh)"
  log=$build/meson-logs/stress-sanitizers.txt
  taskset -c 0,1 scripts/sanitize.sh "$build" "$build/meson-logs/stress-sanitizers" >"$log" 2>&1 ||
    report "$log"
fi
for ((i = 1; i <= rounds; i++)); do
  echo "== Linux suites, round $i of $rounds"
  log=$build/meson-logs/stress-$i.txt
  taskset -c 0,1 meson test -C "$build" --no-rebuild --print-errorlogs >"$log" 2>&1 ||
    report "$log"
done
echo "== $([[ $fail == 0 ]] && echo "no failure" || echo "FAILURES: see above")"
exit $fail
