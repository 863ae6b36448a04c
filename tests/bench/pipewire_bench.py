#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Capture cost against the peers, in one run, on a private PipeWire session.

For each count of target processes (tone players) in --sources (default 1, 2 and 10),
each capturer runs as its own process for a fixed time and captures every target:
  pipewireprocsrc   gst-launch-1.0 with one `pipewireprocsrc pid=...` branch per target
  pipewiresrc       gst-launch-1.0 with one `pipewiresrc target-object=... always-copy=true`
                    branch per target (the PipeWire GStreamer source, told which node)
  pw-record         one `pw-record --target ...` process per target, to /dev/null
It prints CPU seconds per minute of audio (user + sys of the capturing processes, and of the
PipeWire daemon meanwhile), peak RSS, and the ratio to pipewiresrc; then, in a separate
run of the C++ harness `pipewire-latency`, pipewireprocsrc's arrival->push latency per chunk
(p50, p99, max, from its `stats`) and its dropped frames. Writes a plot when given --plot FILE.

    /usr/bin/python3 tests/bench/pipewire_bench.py --build build [--seconds 10] [--rounds 3]
        [--sources 1,2,10] [--plot f.png]
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))


def cpu_of(pid):
    """CPU time of a live process's threads, in seconds, to the nanosecond (schedstat; the
    10 ms ticks of /proc/PID/stat are too coarse for a process that uses 0.5 %)."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def peak_rss_mib(pid):
    """VmHWM: the process's own peak (ru_maxrss would include the forking Python's)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


WARMUP_S = 2.0  # start-up (plugin loading, connecting) is not capture cost


def run_capturers(commands, seconds, daemon_pid):
    """Starts `commands` (each a capturing process), measures them over `seconds` after a
    warm-up, stops them with SIGINT; returns (cpu seconds of the capturers, cpu of the
    daemon, peak RSS of the largest capturer in MiB), cpu over the measured window only."""
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in commands]
    try:
        time.sleep(WARMUP_S)  # measurement windows, not synchronisation
        for p in procs:
            assert p.poll() is None, f"{p.args} exited early"
        before = sum(cpu_of(p.pid) for p in procs)
        daemon_before = cpu_of(daemon_pid)
        time.sleep(seconds)
        cpu = sum(cpu_of(p.pid) for p in procs) - before
        daemon_cpu = cpu_of(daemon_pid) - daemon_before
        rss = max(peak_rss_mib(p.pid) for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
    return cpu, daemon_cpu, rss


def latency_run(harness, pids, seconds):
    """pipewireprocsrc, one branch per pid, in the C++ harness `pipewire-latency` (probes in
    Python would measure the GIL: ten streaming threads queue on it). Returns its figures."""
    out = subprocess.run([str(harness), "--seconds", str(seconds), "--warmup", "1"]
                         + [str(p) for p in pids],
                         capture_output=True, text=True, timeout=seconds + 60)
    assert out.returncode == 0, f"{harness}: {out.stderr.strip()}"
    figures = json.loads(out.stdout)
    # Every pushed chunk was measured, or the percentiles would describe a sample; only a
    # chunk per source, pushed while the pipeline stopped, may have met a flushing pad.
    unseen = figures["chunks_pushed"] - figures["chunks"]
    assert 0 <= unseen <= len(pids) and figures["steady_chunks"] > 0, figures
    return figures


def bench_arguments(extra=()):
    """The options both PipeWire benchmarks take (plus `extra` flags); puts the build's
    plugin and test programs in force. Returns the parsed arguments."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per capturer")
    ap.add_argument("--sources", default="1,2,10",
                    help="comma-separated numbers of target processes, one configuration each")
    for flag in extra:
        ap.add_argument(flag)
    args = ap.parse_args()
    os.environ["PROCAUDIO_BUILD_DIR"] = args.build
    os.environ["GST_PLUGIN_PATH"] = str(pathlib.Path(args.build) / "gst")
    return args


def main():
    args = bench_arguments(["--plot"])
    harness = pathlib.Path(args.build) / "tests" / "bench" / "pipewire-latency"
    assert harness.exists(), f"{harness} missing: build with -Dbenchmarks and -Dpipewire enabled"
    import numpy as np
    from pw_session import TONE_PLAYER, Session, start_session, stop_session

    session = Session(start_session())
    session.activate()
    daemon = session.pids()["pipewire"]
    players = []
    results = {}
    try:
        for n in sorted(int(x) for x in args.sources.split(",")):
            while len(players) < n:
                i = len(players)
                p = subprocess.Popen([str(TONE_PLAYER), "--freq", str(300 + 50 * i),
                                      "--name", f"bench_tone_{i}"],
                                     stdout=subprocess.PIPE, text=True)
                assert "streaming" in p.stdout.readline()
                players.append(p)
            pids = [p.pid for p in players[:n]]
            names = [f"bench_tone_{i}-0" for i in range(n)]  # node.name of stream 0
            caps = "audio/x-raw,format=F32LE,rate=48000,channels=2"
            def launch(sources):
                return ["gst-launch-1.0", "-q"] + sum(
                    ([*src, "!", caps, "!", "fakesink", "sync=false"] for src in sources), [])
            def ours(props=()):
                return launch(["pipewireprocsrc", f"pid={pid}", *props] for pid in pids)
            # pipewiresrc needs fixed caps to connect, and always-copy not to stall.
            peer = launch(["pipewiresrc", f"target-object={name}", "always-copy=true"]
                          for name in names)
            records = [["pw-record", "--target", name, "-"] for name in names]
            # Rounds interleave the capturers so that a noisy stretch of the machine hits all
            # of them; the median of the rounds is reported, and the spread of the ratio.
            runs = {}
            for _ in range(args.rounds):
                for label, cmds in (("pipewireprocsrc", [ours()]),
                                    # buffers of one 1024-frame quantum, as pipewiresrc's
                                    ("pipewireprocsrc@21ms", [ours(["latency-time=21334"])]),
                                    ("pipewiresrc", [peer]), ("pw-record", records)):
                    cpu, daemon_cpu, rss = run_capturers(cmds, args.seconds, daemon)
                    runs.setdefault(label, []).append(
                        (cpu * 60 / args.seconds, daemon_cpu * 60 / args.seconds, rss))
            row = {label: tuple(float(np.median([r[k] for r in rs])) for k in range(3))
                   for label, rs in runs.items()}
            ratios = [o[0] / p[0] for o, p in zip(runs["pipewireprocsrc"], runs["pipewiresrc"])]
            row["ratio-range"] = (min(ratios), max(ratios))
            lat = latency_run(harness, pids, args.seconds)
            row["latency"] = (lat["p50_ms"], lat["p99_ms"], lat["max_ms"],
                              lat["warmup_max_ms"], lat["frames_dropped"])
            results[n] = row
    finally:
        for p in players:
            p.terminate()
            p.wait()
        session.deactivate()
        stop_session(session.env)

    print(f"\nCPU seconds per minute of audio (median of {args.rounds} interleaved rounds of "
          f"{args.seconds:.0f} s), peak RSS, PipeWire daemon CPU meanwhile")
    print(f"{'sources':>7} {'capturer':<20} {'cpu s/min':>9} {'ratio':>6} {'daemon s/min':>12} "
          f"{'RSS MiB':>8}")
    for n, row in results.items():
        base = row["pipewiresrc"][0]
        for label in ("pipewireprocsrc", "pipewireprocsrc@21ms", "pipewiresrc", "pw-record"):
            cpu, dcpu, rss = row[label]
            print(f"{n:>7} {label:<20} {cpu:>9.3f} {cpu / base:>6.2f} {dcpu:>12.3f} {rss:>8.1f}")
        lo, hi = row["ratio-range"]
        print(f"{'':>7} pipewireprocsrc/pipewiresrc per round: {lo:.2f} .. {hi:.2f}")
    print(f"\npipewireprocsrc arrival->push latency per chunk (ms) over {args.seconds:.0f} s "
          "after a 1 s warm-up, the warm-up's worst chunk, and dropped frames")
    print(f"{'sources':>7} {'p50':>7} {'p99':>7} {'max':>7} {'warm-up':>8} {'dropped':>8}")
    for n, row in results.items():
        p50, p99, mx, mx_warm, dropped = row["latency"]
        print(f"{n:>7} {p50:>7.3f} {p99:>7.3f} {mx:>7.3f} {mx_warm:>8.3f} {dropped:>8}")

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        ns = list(results)
        width = 0.25
        for k, label in enumerate(("pipewireprocsrc", "pipewiresrc", "pw-record")):
            a.bar([x + (k - 1) * width for x in range(len(ns))],
                  [results[n][label][0] for n in ns], width, label=label)
        a.set_xticks(range(len(ns)), [f"{n} source{'s' if n > 1 else ''}" for n in ns])
        a.set_ylabel("CPU seconds per minute of audio")
        a.set_title("Capture CPU (lower is better)")
        a.legend()
        for q, label in ((0, "p50"), (1, "p99"), (2, "max")):
            b.plot(ns, [results[n]["latency"][q] for n in ns], marker="o", label=label)
        b.axhline(1.0, color="grey", linestyle="--", label="goal: p99 < 1 ms")
        b.set_xscale("log")
        b.set_xticks(ns, [str(n) for n in ns])
        b.set_xlabel("sources")
        b.set_ylabel("ms")
        b.set_title("pipewireprocsrc arrival->push latency")
        b.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
