#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python side of tests/bench/python_bench.py: one `procaudio.Capture` per pid, each with
an `on_chunk` callback, in this one process, until SIGINT or SIGTERM.

    python_worker.py [--latency] [--warmup S] PID...

Without --latency the callback only counts chunks: the process's CPU is the package's cost.
With --latency it also reads the element's `stats` per chunk (as an application watching its
latency would): the time from the chunk's arrival at the element (`arrival-last`, the
monotonic clock) to the callback, and the element's own arrival->push (`latency-last`); on
exit it prints one line of JSON with their percentiles over the chunks after the warm-up.
Exits 1 if a capture failed or ended (a target exited)."""
import argparse
import json
import pathlib
import signal
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import numpy as np  # noqa: E402

import procaudio  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("pids", type=int, nargs="+")
    args = ap.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    warm_after = time.monotonic_ns() + int(args.warmup * 1e9)
    counts = [0] * len(args.pids)
    # Per capture: written only by its own streaming thread, read after it stopped.
    to_callback = [[] for _ in args.pids]
    to_push = [[] for _ in args.pids]
    captures = []

    def callback(i):
        if not args.latency:
            def on_chunk(chunk):
                counts[i] += 1
            return on_chunk

        def on_chunk(chunk):
            now = time.monotonic_ns()
            counts[i] += 1
            if now < warm_after or chunk.gap:
                return
            # The push that brought this chunk is the element's last: nothing queues between
            # the element and this callback, which runs on the thread that pushed it.
            stats = captures[i].stats
            to_callback[i].append(now - stats["arrival-last"])
            to_push[i].append(stats["latency-last"])
        return on_chunk

    captures = [procaudio.Capture(pid=pid, rate=16000, channels=1, dtype="int16", chunk_ms=10,
                                  on_chunk=callback(i)) for i, pid in enumerate(args.pids)]
    for cap in captures:
        cap.start()
    try:
        stop.wait()  # the signal handler runs on this thread and sets it
        ended = [cap for cap in captures if cap.wait(timeout=0)]  # raises a capture's error
    finally:
        for cap in captures:
            cap.stop()
    if ended:
        print(f"python_worker: {len(ended)} capture(s) ended early", file=sys.stderr)
        return 1
    if args.latency:
        cb = np.concatenate([np.array(x, dtype=np.float64) for x in to_callback]) / 1e6
        push = np.concatenate([np.array(x, dtype=np.float64) for x in to_push]) / 1e6
        print(json.dumps({
            "sources": len(args.pids), "chunks": int(sum(counts)), "measured": int(cb.size),
            "callback_p50_ms": float(np.percentile(cb, 50)),
            "callback_p99_ms": float(np.percentile(cb, 99)),
            "callback_max_ms": float(cb.max()),
            "push_p50_ms": float(np.percentile(push, 50)),
            "push_p99_ms": float(np.percentile(push, 99)),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
