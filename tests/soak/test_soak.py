# SPDX-License-Identifier: LGPL-2.1-or-later
"""Soak: two targets captured continuously for PROCAUDIO_SOAK_MINUTES (default 10) by two
pipewireprocsrc in one pipeline, on a private PipeWire session, checked as a user would:

  - every frame accounted for: captured + gap-filled == pushed + dropped, pushed == what the
    sinks received, nothing dropped;
  - PTS continuous (PTS(n+1) == PTS(n) + DURATION(n), offsets likewise) and no DISCONT
    after the first buffer: a graph that loses a cycle is a gap, GAP-filled and counted;
  - no drift: the stamps against the pipeline clock (the best arrival - PTS of each 10 s) move
    by less than the element's 40 ms alignment threshold between the first and the last minute;
  - memory flat after a warm-up: the slope of this process's RSS (sampled every 10 s) is
    reported, and must stay under 1 MiB per 10 minutes;
  - each capture still holds its own tone at the end, and not the other's.

Nothing is stored per buffer (the checks run as the buffers come), so the test's own memory
does not grow with the run. Run by scripts/soak.sh [MINUTES]; scripts/test.sh runs 2 minutes.
"""
import collections
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from pw_session import BUILD, TONE_PLAYER, Session, start_session, stop_session  # noqa: E402
import wav_analysis  # noqa: E402

os.environ.setdefault("GST_PLUGIN_PATH", str(BUILD / "gst"))
import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401

Gst.init(None)

MINUTES = float(os.environ.get("PROCAUDIO_SOAK_MINUTES", "10"))
TONES = (440, 1000)
CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"
WINDOW_NS = 10 * Gst.SECOND
THRESHOLD_NS = 40 * Gst.MSECOND  # the element's alignment threshold


def rss_mib():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Branch:
    """What one appsink saw, checked on its streaming thread as each buffer comes."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.lock = threading.Lock()
        self.buffers = self.frames = self.disconts = self.gaps = 0
        self.breaks = []  # (buffer index, what): continuity broken without a DISCONT
        self.resyncs = []  # (buffer index, PTS step in ns): DISCONT after the first buffer
        self.next_pts = self.next_offset = None
        self.window_best = {}  # 10 s window -> least arrival - PTS in it
        self.tail = collections.deque(maxlen=200)  # the last 2 s, left channel, by chunk

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        now = self.pipeline.get_clock().get_time() - self.pipeline.get_base_time()
        ok, info = buf.map(Gst.MapFlags.READ)
        left = np.frombuffer(info.data, dtype=np.float32)[0::2].copy() if ok else None
        if ok:
            buf.unmap(info)
        with self.lock:
            i = self.buffers
            self.buffers += 1
            self.frames += buf.offset_end - buf.offset
            discont = buf.has_flags(Gst.BufferFlags.DISCONT)
            if discont:
                self.disconts += 1
                if self.next_pts is not None:
                    self.resyncs.append((i, buf.pts - self.next_pts))
            if buf.has_flags(Gst.BufferFlags.GAP):
                self.gaps += 1
            if self.next_pts is not None and not discont and len(self.breaks) < 5:
                if buf.pts != self.next_pts:
                    self.breaks.append((i, f"PTS {buf.pts} after {self.next_pts}"))
                if buf.offset != self.next_offset:
                    self.breaks.append((i, f"offset {buf.offset} after {self.next_offset}"))
            self.next_pts, self.next_offset = buf.pts + buf.duration, buf.offset_end
            w = buf.pts // WINDOW_NS
            lag = now - buf.pts
            self.window_best[w] = min(self.window_best.get(w, lag), lag)
            if left is not None:
                self.tail.append(left)
        return Gst.FlowReturn.OK


def test_two_targets_for_minutes():
    session = Session(start_session())
    session.activate()
    players = []
    pipeline = None
    try:
        for f in TONES:
            p = subprocess.Popen([str(TONE_PLAYER), "--freq", str(f)], stdout=subprocess.PIPE,
                                 text=True)
            players.append(p)
            assert "streaming" in p.stdout.readline()
        pipeline = Gst.parse_launch(" ".join(
            f"pipewireprocsrc name=src{i} pid={p.pid} ! {CAPS} ! "
            f"appsink name=sink{i} emit-signals=true sync=false"
            for i, p in enumerate(players)))
        branches = []
        for i in range(len(players)):
            b = Branch(pipeline)
            pipeline.get_by_name(f"sink{i}").connect("new-sample", b.on_sample)
            branches.append(b)
        bus = pipeline.get_bus()
        assert pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
        start = time.monotonic()
        end = start + MINUTES * 60
        rss = []  # (minutes since start, MiB)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            # The bus is the clock of the run: an error or EOS ends it at once; otherwise an
            # RSS sample every 10 s.
            msg = bus.timed_pop_filtered(int(min(left, 10) * Gst.SECOND),
                                         Gst.MessageType.ERROR | Gst.MessageType.EOS)
            assert msg is None, msg.parse_error() if msg.type == Gst.MessageType.ERROR else "EOS"
            rss.append(((time.monotonic() - start) / 60, rss_mib()))
        # The targets exit: each element hands out what it captured and ends the stream, so
        # the counters are final and exact.
        for p in players:
            p.terminate()
        msg = bus.timed_pop_filtered(10 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
        assert msg is not None and msg.type == Gst.MessageType.EOS, msg and msg.parse_error()
        stats = [pipeline.get_by_name(f"src{i}").get_property("stats") for i in range(2)]
    finally:
        if pipeline is not None:
            pipeline.set_state(Gst.State.NULL)
        for p in players:
            p.terminate()
            p.wait()
        session.deactivate()
        stop_session(session.env)

    # Memory: the slope after the first fifth of the run (start-up, the registry, caches).
    warm = [(t, m) for t, m in rss if t >= MINUTES / 5]
    slope = np.polyfit([t for t, _ in warm], [m for _, m in warm], 1)[0] if len(warm) > 2 else 0
    print(f"\nsoak {MINUTES:g} min: RSS {rss[0][1]:.1f} -> {rss[-1][1]:.1f} MiB, "
          f"slope after warm-up {slope * 10:+.3f} MiB per 10 min")
    for i, (b, s) in enumerate(zip(branches, stats)):
        get = s.get_value
        windows = sorted(b.window_best)
        first, last = windows[1:4], windows[-4:-1]  # whole windows only, 30 s each
        drift = (np.median([b.window_best[w] for w in last])
                 - np.median([b.window_best[w] for w in first]))
        # The last 2 s before the exit, minus the exit's own last chunks.
        tail = np.concatenate(list(b.tail)[:-20])
        own = wav_analysis.level_dbfs(tail, TONES[i])
        other = wav_analysis.level_dbfs(tail, TONES[1 - i])
        print(f"  {TONES[i]} Hz: {b.buffers} buffers, {b.frames} frames, "
              f"{b.disconts} DISCONT, {b.gaps} GAP; captured {get('frames-captured')} + "
              f"gap-filled {get('frames-gap-filled')} = pushed {get('frames-pushed')} + dropped "
              f"{get('frames-dropped')}; packets-late {get('packets-late')}, buffers-late "
              f"{get('buffers-late')}, lateness-max {get('lateness-max') / 1e6:.1f} ms; "
              f"drift {drift / 1e6:+.3f} ms; own tone {own:.1f} dBFS, "
              f"the other {other:.1f} dBFS at the end")
        # The contract: continuous, and no DISCONT after the first (a lost graph cycle is
        # filled with GAP silence, not absorbed until the stream must re-anchor).
        assert b.breaks == [], b.breaks
        assert b.resyncs == [], (f"DISCONT after the first at (buffer, PTS step ms) "
                                 f"{[(k, round(d / 1e6, 3)) for k, d in b.resyncs]}")
        assert b.disconts == 1
        assert get("frames-dropped") == 0
        assert get("frames-pushed") == b.frames
        assert get("frames-captured") + get("frames-gap-filled") == \
            get("frames-pushed") + get("frames-dropped")
        assert abs(drift) < THRESHOLD_NS, f"drift {drift / 1e6:.2f} ms"
        assert own > -12 and other < own - 40, (own, other)
    assert slope * 10 < 1.0, f"RSS grows {slope * 10:.2f} MiB per 10 min"
