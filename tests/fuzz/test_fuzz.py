# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs the engine's libFuzzer target (tests/fuzz/fuzz_engine.cpp, built with ASan + UBSan)
for a bounded time from the seed corpus in tests/fuzz/corpus: a breached invariant, a crash
or a sanitizer report fails the run and leaves the input that did it.

    PROCAUDIO_FUZZ_BUILD=build-fuzz PROCAUDIO_FUZZ_SECONDS=60 /usr/bin/python3 -m pytest tests/fuzz
"""
import os
import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
BUILD = pathlib.Path(os.environ.get("PROCAUDIO_FUZZ_BUILD", HERE.parents[1] / "build-fuzz"))
SECONDS = int(os.environ.get("PROCAUDIO_FUZZ_SECONDS", "60"))


def test_engine_invariants_hold_for_every_input_found(tmp_path):
    fuzzer = BUILD / "tests" / "fuzz" / "fuzz-engine"
    assert fuzzer.exists(), f"{fuzzer} is not built: see tests/fuzz/meson.build"
    corpus = tmp_path / "corpus"  # the fuzzer adds what it finds: not to the checked-in seeds
    shutil.copytree(HERE / "corpus", corpus)
    artifacts = BUILD / "fuzz-artifacts"  # kept: each input that failed becomes a unit test
    artifacts.mkdir(exist_ok=True)
    run = subprocess.run([str(fuzzer), f"-max_total_time={SECONDS}", "-print_final_stats=1",
                          f"-artifact_prefix={artifacts}/", str(corpus)],
                         capture_output=True, text=True, timeout=SECONDS + 120)
    stats = [l for l in run.stderr.splitlines() if l.startswith(("stat::", "#", "Done"))]
    print("\n".join(stats[-8:]))
    found = sorted(artifacts.iterdir())
    assert run.returncode == 0 and not found, (
        f"fuzz-engine exited {run.returncode}; input(s) {[str(f) for f in found]} "
        f"(make each a unit test in tests/unit/test_capture_engine.cpp):\n{run.stderr[-3000:]}")
