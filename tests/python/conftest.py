# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures for the PyGObject end-to-end tests: a private headless PipeWire session, real
processes playing tones, and helpers that run pipelines and analyse what they captured.

Everything here talks only to processes this test run started, and stops them by pid."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401 (AppSink methods need GstApp)

from pw_session import BUILD, TONE_PLAYER, Session, start_session, stop_session  # noqa: E402

os.environ.setdefault("GST_PLUGIN_PATH", str(BUILD / "gst"))
Gst.init(None)

# windows/ runs on Windows against wasapiprocsrc (the windows workflow, with --noconftest):
# nothing of it belongs to this suite.
collect_ignore = ["windows"]


@pytest.fixture(scope="session")
def pw_session():
    """One private session (with pipewire-pulse) for the whole run."""
    if not TONE_PLAYER.exists():
        pytest.fail(f"{TONE_PLAYER} is not built: build with -Dtests=enabled -Dpipewire=enabled")
    session = Session(start_session(pulse=True))
    session.activate()
    yield session
    session.deactivate()
    stop_session(session.env)


class Player:
    """A real process playing tones (tests/pipewire/tone_player); stopped by its pid."""

    def __init__(self, *args, exe=None):
        cmd = [str(exe or TONE_PLAYER)] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.events = []

    def wait_streaming(self, count=1, timeout=10.0):
        """Waits, bounded, until `count` "streaming" lines were printed."""
        deadline = time.monotonic() + timeout
        while sum("streaming" in e for e in self.events) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"player {self.pid}: {self.events}")
            line = self.proc.stdout.readline()  # the player flushes every line
            if not line:
                raise RuntimeError(f"player {self.pid} ended: {self.events}")
            self.events.append(line.strip())
        return self

    def event(self, word, role="main"):
        """The fields (key=value) of the first `word` line of `role`, or None."""
        for e in self.events:
            fields = dict(kv.split("=", 1) for kv in e.split() if "=" in kv)
            if word in e.split() and fields.get("role") == role:
                return fields
        return None

    def read_rest(self, timeout=10.0):
        out, _ = self.proc.communicate(timeout=timeout)
        self.events += [l.strip() for l in out.splitlines()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def players():
    started = []

    def start(*args, exe=None):
        p = Player(*args, exe=exe)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def assert_whole_chunks(chunks, frames):
    """`chunks`: (length, GAP) of each buffer in order. Every one is `frames` long, but
    where a hole cuts a run short: a busy machine can make the graph lose a cycle or stall,
    and the element then fills that time with GAP right after the audio it has (which is left
    short), in pieces of a chunk of which only the last, which audio follows, is shorter."""
    for i, (cur, after) in enumerate(zip(chunks, chunks[1:])):
        assert cur[0] == frames or cur[1] != after[1], (i, cur, after)
    assert max(c[0] for c in chunks) <= frames
    return sum(c[0] == frames for c in chunks)


def run_capture(description, seconds):
    """Runs `description` (whose sink is an appsink named "sink"), collects F32 samples and
    per-buffer (pts, duration, offset, offset_end, flags, clock_time_at_arrival); returns a
    dict. Stops at EOS or ERROR, or after `seconds` of wall time."""
    pipeline = Gst.parse_launch(description)
    sink = pipeline.get_by_name("sink")
    buffers, chunks = [], []

    def on_sample(appsink):
        sample = appsink.emit("pull-sample")
        buf = sample.get_buffer()
        clock = pipeline.get_clock()
        now = clock.get_time() if clock else Gst.CLOCK_TIME_NONE
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            chunks.append(np.frombuffer(bytes(info.data), dtype=np.float32))
            buf.unmap(info)
        buffers.append((buf.pts, buf.duration, buf.offset, buf.offset_end,
                        buf.get_flags(), now))
        return Gst.FlowReturn.OK

    sink.set_property("emit-signals", True)
    sink.set_property("sync", False)
    sink.connect("new-sample", on_sample)
    bus = pipeline.get_bus()
    result = {"buffers": buffers, "error": None}
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.timed_pop_filtered(2 * Gst.SECOND, Gst.MessageType.ERROR)
        result["error"] = msg.parse_error() if msg else ("state change failed", "")
    else:
        msg = bus.timed_pop_filtered(int(seconds * Gst.SECOND),
                                     Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is not None and msg.type == Gst.MessageType.ERROR:
            result["error"] = msg.parse_error()
    result["base_time"] = pipeline.get_base_time()
    pipeline.set_state(Gst.State.NULL)
    src = pipeline.get_by_name("src")
    if src is not None:  # final counters: they last until the next start
        result["stats"] = src.get_property("stats")
    channels = 2
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    result["samples"] = samples.reshape(-1, channels) if samples.size % channels == 0 else samples
    return result
