#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The test command: installs what is missing (apt-get), builds with warnings as errors, runs
# every suite (unit, element, PipeWire end to end, Python, the install with meson and as
# Debian packages, the engine's fuzzer, the sanitizer builds, a 2-minute soak, the Windows
# cross build under wine), runs the benchmarks once so their figures are printed, and exits
# non-zero on any failure. Ends with one line: "N passed, N failed".
#
#   PROCAUDIO_SKIP_WINDOWS=1  skip the Windows cross build (quick local runs; never in CI)
#   PROCAUDIO_BUILD_DIR       build directory (default build-test)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
build=${PROCAUDIO_BUILD_DIR:-$repo/build-test}
results=$build/test-results

say() { printf '\n== %s\n' "$*"; }
fail=0

say "dependencies"
scripts/setup.sh || exit 1

say "build ($build)"
reconfigure=()
[[ -f $build/build.ninja ]] && reconfigure=(--reconfigure)
meson setup "${reconfigure[@]}" "$build" -Dwerror=true -Dtests=enabled -Dbenchmarks=enabled \
  -Dpipewire=enabled >/dev/null || exit 1
ninja -C "$build" || exit 1

rm -rf "$results"
mkdir -p "$results"
# Every GoogleTest binary and pytest write their results here; the closing line counts them.
export GTEST_OUTPUT="xml:$results/"
export PYTEST_ADDOPTS="--junitxml=$results/python.xml"

say "unit, element, PipeWire end-to-end and Python tests"
meson test -C "$build" --no-rebuild --print-errorlogs || fail=1

say "install: meson install --prefix=/usr, then the Debian packages (on this machine, then removed)"
# On its own: it puts the plugin where every GStreamer on this machine finds it, while installed.
PYTEST_ADDOPTS="--junitxml=$results/install.xml" PROCAUDIO_BUILD_DIR="$build" \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/install || fail=1

say "fuzzing the engine: libFuzzer with ASan + UBSan, ${PROCAUDIO_FUZZ_SECONDS:-60} s"
fuzz_build=$build-fuzz
reconfigure=()
[[ -f $fuzz_build/build.ninja ]] && reconfigure=(--reconfigure)
if CXX=clang++ meson setup "${reconfigure[@]}" "$fuzz_build" -Dfuzzing=enabled -Dtests=disabled \
    -Dbenchmarks=disabled -Dpipewire=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    -Dwerror=true >/dev/null && ninja -C "$fuzz_build" tests/fuzz/fuzz-engine >/dev/null; then
  PYTEST_ADDOPTS="--junitxml=$results/fuzz.xml" PROCAUDIO_FUZZ_BUILD="$fuzz_build" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/fuzz || fail=1
else
  echo "the fuzzer did not build"; fail=1
fi

say "sanitizers: ASan + UBSan (unit, element, PipeWire suites), TSan (unit suite)"
scripts/sanitize.sh "$build" "$results" || fail=1

say "soak: two targets captured for 2 minutes (scripts/soak.sh; 10 by default)"
PYTEST_ADDOPTS="--junitxml=$results/soak.xml" PROCAUDIO_BUILD_DIR="$build" scripts/soak.sh 2 ||
  fail=1

say "benchmarks (figures, not pass/fail)"
"$build/tests/bench/bench-engine" --benchmark_min_time=0.2 || fail=1
/usr/bin/python3 tests/bench/pipewire_bench.py --build "$build" --seconds 4 --rounds 3 \
  --plot "$build/pipewire-bench.png" || fail=1
/usr/bin/python3 tests/bench/python_bench.py --build "$build" --seconds 4 --rounds 3 || fail=1

if [[ "${PROCAUDIO_SKIP_WINDOWS:-0}" == 1 && "${CI:-}" != true ]]; then
  say "Windows cross build: skipped (PROCAUDIO_SKIP_WINDOWS=1)"
else
  say "Windows cross build, tests under wine"
  # The wine suites' Linux side captures wine's players with this build's pipewireprocsrc.
  PROCAUDIO_WIN_RESULTS="$results" PROCAUDIO_LINUX_BUILD_DIR="$build" \
    scripts/cross-windows.sh all || fail=1
fi

say "summary"
/usr/bin/python3 - "$results" <<'PY' || fail=1
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sorted(glob.glob(sys.argv[1] + "/**/*.xml", recursive=True)):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        for case in s.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "notrun":
                skipped += 1
            else:
                passed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
PY
exit $fail
