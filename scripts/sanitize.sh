#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The sanitizer runs of scripts/test.sh: the unit, element and PipeWire suites built with
# AddressSanitizer + UndefinedBehaviorSanitizer (GCC), and the unit suite with
# ThreadSanitizer (clang). Any report fails its test: UBSan halts, LSan reports leaks at exit
# (third-party ones are suppressed in tests/sanitizers/lsan.supp, each with its proof).
#
#   scripts/sanitize.sh BUILD_PREFIX RESULTS_DIR
#
# Builds BUILD_PREFIX-asan and BUILD_PREFIX-tsan; GoogleTest results go to RESULTS_DIR/asan
# and RESULTS_DIR/tsan.
#
# Why TSan covers the unit suite only: the element suite runs GStreamer, whose hand-offs are
# GLib mutexes, and GLib 2.74 locks them with futexes that TSan does not see. Debian's GLib
# and GStreamer are not instrumented either, so every buffer passed between threads is reported
# as a race (118 reports in one run, none of them in our code but one, fixed since: the
# latency query read the negotiated format without its lock), and the suite takes over 10 min.
set -uo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BUILD_PREFIX RESULTS_DIR" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
prefix=$1
results=$2
fail=0

setup() {  # DIR [meson options...]
  local dir=$1
  shift
  local reconfigure=()
  [[ -f $dir/build.ninja ]] && reconfigure=(--reconfigure)
  meson setup "${reconfigure[@]}" "$dir" -Dwerror=true -Dbenchmarks=disabled "$@" >/dev/null
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0
export LSAN_OPTIONS=suppressions=$repo/tests/sanitizers/lsan.supp
# The plugin scanner is not instrumented: an ASan plugin cannot load in it, so scan in-process.
export GST_REGISTRY_FORK=no

echo "ASan + UBSan: unit, element and PipeWire suites"
if setup "$prefix-asan" -Dtests=enabled -Dpipewire=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false && ninja -C "$prefix-asan" >/dev/null; then
  GTEST_OUTPUT="xml:$results/asan/" meson test -C "$prefix-asan" --no-rebuild \
    --print-errorlogs --suite unit --suite element --suite pipewire || fail=1
else
  echo "sanitize: the ASan build failed"
  fail=1
fi

echo "TSan: unit suite"
if CXX=clang++ setup "$prefix-tsan" -Dtests=enabled -Dpipewire=disabled -Db_sanitize=thread \
    -Db_lundef=false && ninja -C "$prefix-tsan" tests/unit/unit-tests >/dev/null; then
  TSAN_OPTIONS=halt_on_error=1 GTEST_OUTPUT="xml:$results/tsan/" \
    meson test -C "$prefix-tsan" --no-rebuild --print-errorlogs --suite unit || fail=1
else
  echo "sanitize: the TSan build failed"
  fail=1
fi
exit $fail
