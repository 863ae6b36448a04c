#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python path's cost and latency, beside the element alone, in one run, on a private
PipeWire session.

For each count of target processes (tone players) in --sources (default 1, 2 and 10), two
capturers run in turn, each as its own process, each capturing every target as 16 kHz mono
int16 in 10 ms chunks:
  element alone       gst-launch-1.0, one `pipewireprocsrc pid=... ! audioconvert !
                      audioresample ! caps ! fakesink` branch per target: what the package's
                      pipeline costs without Python
  procaudio.Capture   tests/bench/python_worker.py: one Capture per target with an on_chunk
                      callback (which counts), in one Python process
It prints CPU per source, as % of one core (user + sys of the capturing process over the
measured window), for both and their difference: the package's own cost. Then, in a
separate run of the worker with --latency, the time from a chunk's arrival at the element to
its on_chunk call (p50, p99, max), beside the element's own arrival->push from the same chunks.

    /usr/bin/python3 tests/bench/python_bench.py --build build [--seconds 10] [--rounds 3]
        [--sources 1,2,10]
"""
import json
import os
import pathlib
import signal
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "tests" / "bench"))
from pipewire_bench import bench_arguments, run_capturers  # noqa: E402

WORKER = REPO / "tests" / "bench" / "python_worker.py"
CAPS = "audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1"


def element_alone(pids):
    return ["gst-launch-1.0", "-q"] + sum(
        (["pipewireprocsrc", f"pid={pid}", "latency-time=10000", "!", "audioconvert", "!",
          "audioresample", "!", CAPS, "!", "fakesink", "sync=false"] for pid in pids), [])


def latency_run(pids, seconds):
    """The worker with --latency for `seconds` after a 1 s warm-up; its figures."""
    proc = subprocess.Popen(["/usr/bin/python3", str(WORKER), "--latency", "--warmup", "1"]
                            + [str(p) for p in pids],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=1 + seconds)
    except subprocess.TimeoutExpired:  # the measured window is over: it should still run
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    else:
        raise AssertionError(f"python_worker ended early ({proc.returncode}): {err.strip()}")
    assert proc.returncode == 0, f"python_worker: {err.strip()}"
    figures = json.loads(out)
    # Every chunk after the warm-up was measured (gap chunks excepted: a tone plays).
    assert figures["measured"] > 0.8 * len(pids) * seconds * 100, figures
    return figures


def main():
    args = bench_arguments()
    import numpy as np
    from pw_session import TONE_PLAYER, Session, start_session, stop_session

    session = Session(start_session())
    session.activate()
    daemon = session.pids()["pipewire"]
    players, results = [], {}
    try:
        for n in sorted(int(x) for x in args.sources.split(",")):
            while len(players) < n:
                p = subprocess.Popen([str(TONE_PLAYER), "--freq", str(300 + 50 * len(players))],
                                     stdout=subprocess.PIPE, text=True)
                assert "streaming" in p.stdout.readline()
                players.append(p)
            pids = [p.pid for p in players[:n]]
            python = ["/usr/bin/python3", str(WORKER)] + [str(p) for p in pids]
            # Rounds interleave the two so that a noisy stretch of the machine hits both; the
            # median of the rounds is reported, and the spread of the difference.
            runs = {"element alone": [], "procaudio.Capture": []}
            for _ in range(args.rounds):
                for label, cmd in (("element alone", element_alone(pids)),
                                   ("procaudio.Capture", python)):
                    cpu, _, rss = run_capturers([cmd], args.seconds, daemon)
                    runs[label].append((100 * cpu / args.seconds / n, rss))
            row = {label: (float(np.median([r[0] for r in rs])),
                           float(np.median([r[1] for r in rs]))) for label, rs in runs.items()}
            added = [p[0] - e[0] for p, e in zip(runs["procaudio.Capture"],
                                                   runs["element alone"])]
            row["added-range"] = (min(added), max(added))
            row["latency"] = latency_run(pids, args.seconds)
            results[n] = row
    finally:
        for p in players:
            p.terminate()
            p.wait()
        session.deactivate()
        stop_session(session.env)

    print(f"\nCPU per source, % of one core (median of {args.rounds} interleaved rounds of "
          f"{args.seconds:.0f} s), 16 kHz mono int16, 10 ms chunks; peak RSS")
    print(f"{'sources':>7} {'capturer':<18} {'% core/src':>10} {'RSS MiB':>8}")
    for n, row in results.items():
        for label in ("element alone", "procaudio.Capture"):
            cpu, rss = row[label]
            print(f"{n:>7} {label:<18} {cpu:>10.3f} {rss:>8.1f}")
        lo, hi = row["added-range"]
        added = row["procaudio.Capture"][0] - row["element alone"][0]
        print(f"{'':>7} the package adds {added:.3f} % per source "
              f"(per round {lo:.3f} .. {hi:.3f}); goal: Capture < 1 % per source")
    print(f"\narrival at the element -> on_chunk (ms) over {args.seconds:.0f} s after a 1 s "
          "warm-up, beside the element's arrival -> push of the same chunks; goal p99 < 1 ms")
    print(f"{'sources':>7} {'p50':>7} {'p99':>7} {'max':>7} {'push p50':>9} {'push p99':>9} "
          f"{'chunks':>7}")
    for n, row in results.items():
        lat = row["latency"]
        print(f"{n:>7} {lat['callback_p50_ms']:>7.3f} {lat['callback_p99_ms']:>7.3f} "
              f"{lat['callback_max_ms']:>7.3f} {lat['push_p50_ms']:>9.3f} "
              f"{lat['push_p99_ms']:>9.3f} {lat['measured']:>7}")


if __name__ == "__main__":
    main()
