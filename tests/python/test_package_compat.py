# SPDX-License-Identifier: LGPL-2.1-or-later
"""procaudio.compat, the old capture library's API over the new one, against the private
session with real tone players: each old entry point still gives the target's tone in the
old format (48 kHz stereo float32), and errors now raise."""
import asyncio
import pathlib
import sys
import threading

import numpy as np
import pytest

import wav_analysis

# The package is imported from the source tree, not from an installed copy.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import procaudio  # noqa: E402
from procaudio import compat  # noqa: E402

PLAYED_DB = 20 * np.log10(0.5)
TARGET_HZ = 440


def assert_tone(x, rate=48000):
    level = wav_analysis.level_dbfs(x, TARGET_HZ, rate)
    assert abs(level - PLAYED_DB) <= 1.5, level


class Counter:
    """Counts callbacks; the test thread waits on it, bounded."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, count, timeout=10.0):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, timeout), self.items


def test_process_capture_get_buffer(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    pc = compat.ProcessCapture()
    # get_buffer is drained by the caller; a tap on the same chunks says when 1 s is there.
    seen = Counter()
    assert pc.start(target.pid, include_tree=True)
    pc._cap.on_chunk = lambda c: (pc._on_chunk(c), seen.add(c))
    try:
        assert pc.is_capturing
        seen.wait(100)
        flat = pc.get_buffer()
        assert pc.get_buffer().size < flat.size  # the first call took what was there
    finally:
        pc.stop()
    assert not pc.is_capturing
    assert flat.dtype == np.float32 and flat.ndim == 1 and flat.size % 2 == 0
    assert_tone(flat.reshape(-1, 2)[24000:, 0])


def test_queue_based_capture_pops_chunks_with_metrics(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    q = compat.QueueBasedProcessCapture(queue_size=20)
    q.set_chunk_size(480)
    q.start(target.pid)
    try:
        cap = q._cap
        seen = Counter()
        original = cap.on_chunk
        cap.on_chunk = lambda c: (original(c), seen.add(c))
        seen.wait(60)  # more than the queue holds: the oldest were dropped
    finally:
        q.stop()
    chunks = q.pop_chunks()
    metrics = q.get_metrics()
    assert len(chunks) == 20 and q.pop_chunk() is None
    assert metrics["dropped_chunks"] == metrics["total_chunks"] - 20 > 0
    # 10 ms each, continuous; a lost graph cycle on a busy machine cuts one short, and its
    # silence follows it in a chunk of at most 10 ms.
    assert all(c["data"].shape[0] <= 480 and c["data"].shape[1] == 2 and
               c["data"].dtype == np.float32 for c in chunks[1:])
    assert sum(c["data"].shape[0] == 480 for c in chunks[1:]) >= len(chunks) - 5
    for prev, cur in zip(chunks, chunks[1:]):  # µs
        assert abs(cur["timestamp"] - prev["timestamp"] - prev["data"].shape[0] * 1e6 / 48000) <= 1
    assert_tone(np.concatenate([c["data"] for c in chunks])[:, 0])


def test_streaming_audio_capture_calls_on_audio(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    got = Counter()
    s = compat.StreamingAudioCapture(target.pid, chunk_duration=0.02, on_audio=got.add)
    s.start()
    try:
        got.wait(60)
    finally:
        s.stop()
    # 20 ms each; a lost graph cycle on a busy machine cuts one short, and its silence follows
    # it in a chunk of at most 20 ms.
    items = got.items[5:]
    assert all(a.shape[0] <= 960 and a.shape[1] == 2 for a in items)
    assert sum(a.shape[0] == 960 for a in items) >= len(items) - 4
    assert_tone(np.concatenate(got.items[10:])[:, 0])


def test_async_streaming_capture(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()

    async def run():
        c = compat.AsyncStreamingCapture(target.pid, buffer_size=50)
        await c.start()
        got = []
        try:
            async for audio in c.stream():
                got.append(audio)
                if len(got) == 80:
                    break
        finally:
            await c.stop()
        return got

    got = asyncio.run(asyncio.wait_for(run(), timeout=20))
    assert_tone(np.concatenate(got[20:])[:, 0])


def test_record_process_by_name_and_pid(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    for who in (target.pid, "tone_player"):
        x = compat.record_process(who, 1.0)
        assert x.shape == (48000, 2) and x.dtype == np.float32
        assert_tone(x[12000:, 0])


def test_record_audio_streaming_is_every_process_but_this_one(pw_session, players):
    players("--freq", TARGET_HZ).wait_streaming()
    chunks, done = [], []
    x = compat.record_audio_streaming(1.0, on_chunk=chunks.append, on_complete=done.append)
    assert done and done[0] is x and x.shape == (48000, 2)
    assert sum(c.shape[0] for c in chunks) >= 48000
    assert wav_analysis.level_dbfs(x[12000:, 0], TARGET_HZ) >= PLAYED_DB - 3


def test_list_audio_processes_and_errors(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    listed = {p["pid"]: p for p in compat.list_audio_processes()}
    assert listed[target.pid]["name"] == "tone_player" and listed[target.pid]["playing"]
    with pytest.raises(procaudio.NotFound):
        compat.ProcessCapture().start(4_000_000)
