# SPDX-License-Identifier: LGPL-2.1-or-later
"""A pipeline under test, recorded as its application would see it: buffers, samples and bus
messages, waited on with bounded waits (no sleeps)."""
import threading
import time

import numpy as np

from conftest import Gst


class Recorder:
    """Runs a pipeline whose appsink is "sink"; keeps every buffer (pts, duration, offset,
    offset_end, flags, arrival running time), with `samples` its first channel (F32 caps), and
    every procaudio-target message (fields and arrival running time). The test thread waits
    on conditions, each bounded."""

    def __init__(self, description, samples=False, sync=False):
        self.pipeline = Gst.parse_launch(description)
        self.cond = threading.Condition()
        self.buffers, self.targets, self.errors, self.samples = [], [], [], []
        self.eos = False
        self._keep_samples = samples
        sink = self.pipeline.get_by_name("sink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", sync)
        sink.connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.set_sync_handler(self._on_message)

    def _now(self):
        clock = self.pipeline.get_clock()
        return clock.get_time() - self.pipeline.get_base_time() if clock else 0

    def _on_sample(self, appsink):
        sample = appsink.emit("pull-sample")
        buf = sample.get_buffer()
        if self._keep_samples:
            channels = sample.get_caps().get_structure(0).get_value("channels")
            ok, info = buf.map(Gst.MapFlags.READ)
            if ok:
                x = np.frombuffer(bytes(info.data), dtype=np.float32)[::channels].copy()
                buf.unmap(info)
                self.samples.append(x)
        with self.cond:
            self.buffers.append((buf.pts, buf.duration, buf.offset, buf.offset_end,
                                 buf.get_flags(), self._now()))
            self.cond.notify_all()
        return Gst.FlowReturn.OK

    def _on_message(self, bus, msg):
        with self.cond:
            if msg.type == Gst.MessageType.ELEMENT and msg.has_name("procaudio-target"):
                s = msg.get_structure()
                self.targets.append({"state": s.get_value("state"), "pid": s.get_value("pid"),
                                     "process-name": s.get_value("process-name"),
                                     "streams": s.get_value("streams"), "at": self._now(),
                                     "offset": s.get_value("offset"),
                                     "buffers": len(self.buffers)})
            elif msg.type == Gst.MessageType.ERROR:
                self.errors.append(msg.parse_error())
            elif msg.type == Gst.MessageType.EOS:
                self.eos = True
            self.cond.notify_all()
        return Gst.BusSyncReply.DROP

    def wait(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not done():
                assert not self.errors, self.errors
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: {self.targets}"
                self.cond.wait(left)

    def wait_state(self, state, pid=None, after=0, timeout=10.0):
        """The index of the first `state` message (of `pid`) from message `after` on."""
        def find():
            for i in range(after, len(self.targets)):
                t = self.targets[i]
                if t["state"] == state and (pid is None or t["pid"] == pid):
                    return i
            return None
        self.wait(lambda: find() is not None, timeout, f"{state} {pid}")
        return find()

    def wait_audible_ms(self, from_buffer, ms, timeout=10.0):
        def heard():
            return sum(b[1] for b in self.buffers[from_buffer:]
                       if not b[4] & Gst.BufferFlags.GAP) >= ms * Gst.MSECOND
        self.wait(heard, timeout, f"{ms} ms of audio")

    def base_time(self):
        return self.pipeline.get_base_time()

    def start(self):
        assert self.pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE

    def run_for(self, seconds):
        """Lets the pipeline run for `seconds` (a step of the scenario); fails on an error or
        an EOS meanwhile."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while (left := deadline - time.monotonic()) > 0:
                assert not self.errors, self.errors
                assert not self.eos, "EOS"
                self.cond.wait(left)

    def min_latency(self):
        query = Gst.Query.new_latency()
        assert self.pipeline.get_by_name("src").query(query)
        live, min_latency, _ = query.parse_latency()
        assert live
        return min_latency

    def stop(self):
        """To NULL; returns the source's final stats."""
        self.pipeline.set_state(Gst.State.NULL)
        return self.pipeline.get_by_name("src").get_property("stats")
