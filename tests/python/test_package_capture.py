# SPDX-License-Identifier: LGPL-2.1-or-later
"""procaudio.Capture, the Python package, against the private session with real tone players:
what a speech application iterating chunks or taking a callback observes — the tone and its
level in the samples, continuous timestamps, gap chunks while the target is idle, errors as
exceptions of the right class, and nothing left running after a with block is left by an
exception."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import conftest
from conftest import Gst
from pw_session import TONE_PLAYER
import wav_analysis

# The package is imported from the source tree, not from an installed copy.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import procaudio  # noqa: E402

RATE = 16000
PLAYED_DB = 20 * np.log10(0.5)  # tone_player's default amplitude
TARGET_HZ, DISTRACTOR_HZ = 440, 1000
CHUNK_FRAMES = RATE // 100  # 10 ms


def as_float(samples):
    return samples[:, 0].astype(np.float64) / 32768.0


def audible_chunks(cap, count, limit=1000):
    """The first `count` chunks that are not gap, taken from the iterator (bounded by
    `limit` chunks in all, i.e. by stream time, not by hope)."""
    taken = []
    for i, chunk in enumerate(cap):
        if not chunk.gap:
            taken.append(chunk)
        if len(taken) == count or i >= limit:
            break
    assert len(taken) == count, f"only {len(taken)} audible chunks in {limit}"
    return taken


def assert_whole_chunks(chunks, frames):
    whole = conftest.assert_whole_chunks([(c.samples.shape[0], c.gap) for c in chunks], frames)
    assert whole >= len(chunks) // 2


def test_iterated_chunks_hold_the_target_tone_at_its_level(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    chunks = []
    with procaudio.Capture(pid=target.pid) as cap:
        for chunk in cap:
            chunks.append(chunk)
            if len(chunks) == 150:  # 1.5 s
                break
        assert cap.pid == target.pid
        stats = cap.stats
    for c in chunks:
        assert c.samples.dtype == np.int16 and c.samples.ndim == 2 and c.samples.shape[1] == 1
        assert c.samples.flags.writeable
    assert chunks[0].discont
    # Past the first chunks (links settling, the resampler's start): 10 ms each.
    assert_whole_chunks(chunks[5:], CHUNK_FRAMES)
    x = np.concatenate([as_float(c.samples) for c in chunks if not c.gap])[int(0.3 * RATE):]
    assert x.size >= RATE
    level = wav_analysis.level_dbfs(x, TARGET_HZ, RATE)
    print(f"target {level:.2f} dBFS, distractor "
          f"{wav_analysis.level_dbfs(x, DISTRACTOR_HZ, RATE):.1f} dBFS")
    assert abs(level - PLAYED_DB) <= 1.0, level
    assert abs(wav_analysis.dominant_frequency(x, RATE) - TARGET_HZ) <= 2
    assert wav_analysis.level_dbfs(x, DISTRACTOR_HZ, RATE) < -60
    # The element's counters and the package's are all there.
    for key in ("frames-captured", "frames-pushed", "chunks-pushed", "latency-max",
                "chunks-received", "chunks-delivered", "chunks-dropped"):
        assert key in stats, key
    assert stats["chunks-dropped"] == 0 and stats["frames-dropped"] == 0
    assert stats["chunks-delivered"] >= 150


def test_pts_and_offsets_are_continuous_across_chunks(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    with procaudio.Capture(pid=target.pid, dtype="float32", channels=2, rate=48000,
                           chunk_ms=20) as cap:
        chunks = [c for _, c in zip(range(200), cap)]  # 4 s
    assert chunks[0].samples.dtype == np.float32 and chunks[0].samples.shape[1] == 2
    for prev, cur in zip(chunks, chunks[1:]):
        assert not cur.discont
        assert cur.offset == prev.offset + prev.samples.shape[0]
        assert abs(cur.pts - (prev.pts + prev.duration)) < 1e-6, (prev.pts, cur.pts)
        assert abs(cur.duration - cur.samples.shape[0] / 48000) < 1e-6
    assert_whole_chunks(chunks[5:], 960)
    # Both channels carry the stereo tone.
    x = np.concatenate([c.samples for c in chunks[20:]])
    for ch in (0, 1):
        assert abs(wav_analysis.level_dbfs(x[:, ch], TARGET_HZ, 48000) - PLAYED_DB) <= 1.0


def test_on_chunk_is_called_for_each_chunk_until_the_target_exits(pw_session, players):
    target = players("--freq", TARGET_HZ, "--seconds", 1.5).wait_streaming()
    seen, threads, pids = [], set(), set()

    def on_chunk(chunk):
        seen.append(chunk)
        threads.add(threading.get_ident())
        if not chunk.gap:
            pids.add(cap.pid)

    cap = procaudio.Capture(pid=target.pid, on_chunk=on_chunk)
    with cap:
        assert cap.wait(timeout=10), "no end of stream after the target exited"
        assert cap.ended
    stats = cap.stats
    assert threads and threading.get_ident() not in threads  # GStreamer's streaming thread
    assert pids == {target.pid}
    assert cap.pid is None  # exited
    audible = sum(c.duration for c in seen if not c.gap)
    assert 1.0 <= audible <= 1.6, audible
    # Every chunk the element pushed went to the callback; none were queued for nobody.
    assert stats["chunks-received"] == len(seen) == stats["chunks-pushed"]
    assert stats["chunks-queued"] == 0 and stats["chunks-dropped"] == 0


def test_an_exception_in_on_chunk_ends_the_capture_and_is_raised(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    calls = []

    def on_chunk(chunk):
        calls.append(chunk)
        if len(calls) == 5:
            raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        with procaudio.Capture(pid=target.pid, on_chunk=on_chunk) as cap:
            cap.wait(timeout=10)
    assert len(calls) == 5  # the stream ended there


def test_stop_from_on_chunk_ends_the_stream_after_that_chunk(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    seen = []

    def on_chunk(chunk):
        seen.append(chunk)
        if len(seen) == 20:
            cap.stop()  # on GStreamer's thread: ends the stream rather than deadlock

    cap = procaudio.Capture(pid=target.pid, on_chunk=on_chunk)
    with cap:
        assert cap.wait(timeout=10)
    assert len(seen) == 20


def wait_for_run(cap, gap, run):
    """Iterates until `run` consecutive chunks have gap == `gap`; returns them. Bounded by
    the stream: 5 s of chunks."""
    streak = []
    for i, chunk in enumerate(cap):
        streak = streak + [chunk] if chunk.gap == gap else []
        if len(streak) == run:
            return streak
        assert i < 500, f"no {run} chunks with gap={gap} in 5 s"


def test_gap_chunks_while_the_target_is_stopped(pw_session, players):
    # A process stopped by a signal hands the graph nothing: the element fills gap silence,
    # and the tone comes back when it continues. (A paused PipeWire stream is different:
    # the graph still delivers its silence as data, which is audio, not gap.)
    target = players("--freq", TARGET_HZ).wait_streaming()
    with procaudio.Capture(pid=target.pid) as cap:
        wait_for_run(cap, False, 20)
        target.proc.send_signal(signal.SIGSTOP)
        try:
            stopped = wait_for_run(cap, True, 30)
        finally:
            target.proc.send_signal(signal.SIGCONT)
        assert all(not c.samples.any() for c in stopped), "gap chunks are silence"
        resumed = wait_for_run(cap, False, 30)
        x = np.concatenate([as_float(c.samples) for c in resumed[10:]])
        assert wav_analysis.level_dbfs(x, TARGET_HZ, RATE) >= PLAYED_DB - 3
        stats = cap.stats
    assert stats["frames-gap-filled"] > 0


def test_gap_chunks_while_waiting_for_a_named_target(pw_session, players, tmp_path):
    name = f"pa_pkgwait_{os.getpid() % 100000}"
    exe = tmp_path / name
    shutil.copy(TONE_PLAYER, exe)
    with procaudio.Capture(process_name=name, on_target_exit="wait") as cap:
        waiting = wait_for_run(cap, True, 30)
        assert all(not c.samples.any() for c in waiting)
        assert cap.pid is None
        target = players("--freq", TARGET_HZ, exe=exe)
        first = next(c for c in cap if not c.gap)
        assert first.discont  # a new process: reset the VAD/ASR state here
        assert cap.pid == target.pid
        heard = wait_for_run(cap, False, 30)
    x = np.concatenate([as_float(c.samples) for c in heard[10:]])
    assert wav_analysis.level_dbfs(x, TARGET_HZ, RATE) >= PLAYED_DB - 3


def error_of(**options):
    with pytest.raises(procaudio.CaptureError) as failure:
        with procaudio.Capture(**options) as cap:
            for _ in cap:
                pass
    return failure.value


def test_a_missing_pid_raises_not_found_from_enter(pw_session):
    pid = 4_000_000  # above pid_max's ceiling (2^22): never a process
    with pytest.raises(procaudio.NotFound) as failure:
        procaudio.Capture(pid=pid).__enter__()
    e = failure.value
    assert str(pid) in e.message
    assert e.domain == "gst-resource-error-quark" and e.code == int(Gst.ResourceError.NOT_FOUND)
    assert e.debug


def test_a_missing_process_name_raises_not_found(pw_session):
    e = error_of(process_name="pa_no_such_program", on_target_exit="eos")
    assert isinstance(e, procaudio.NotFound), (type(e), e.message)
    assert "pa_no_such_program" in e.message


@pytest.mark.parametrize("options, words", [
    ({"pid": 4242, "process_name": "firefox"}, "only one"),
    ({}, "No target to capture"),
    ({"pid": -5}, "not a process id"),
    ({"pid": 4242, "on_target_exit": "wait"}, "process-name instead of pid"),
])
def test_settings_the_element_refuses_raise_invalid_settings(pw_session, options, words):
    e = error_of(**options)
    assert isinstance(e, procaudio.InvalidSettings) and isinstance(e, ValueError), type(e)
    assert e.code == int(Gst.ResourceError.SETTINGS) and e.domain == "gst-resource-error-quark"
    assert words in e.message, e.message


@pytest.mark.parametrize("options", [
    {"dtype": "int8"}, {"mode": "everything"}, {"on_target_exit": "restart"},
    {"rate": 0}, {"channels": -1}, {"chunk_ms": 0}, {"pid": 2**40},
])
def test_settings_the_package_refuses_raise_invalid_settings(pw_session, options):
    with pytest.raises(procaudio.InvalidSettings) as failure:
        with procaudio.Capture(**{"pid": 1, **options}):
            pass
    assert failure.value.domain is None


def capture_nodes_of_this_process(session):
    """The PipeWire nodes of this process's clients in the private session (pw-dump), and
    the clients themselves: what a capture leaves behind if it is not stopped."""
    out = subprocess.run(["pw-dump"], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ)).stdout
    objects = json.loads(out)
    ours = {o["id"] for o in objects if o.get("type") == "PipeWire:Interface:Client"
            and str(((o.get("info") or {}).get("props") or {}).get("pipewire.sec.pid"))
            == str(os.getpid())}
    nodes = [((o.get("info") or {}).get("props") or {}).get("node.name") for o in objects
             if o.get("type") == "PipeWire:Interface:Node"
             and ((o.get("info") or {}).get("props") or {}).get("client.id") in ours]
    return nodes + [f"client {c}" for c in sorted(ours)]


def task_names():
    """The names of this process's threads, from the kernel."""
    names = []
    for task in pathlib.Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except FileNotFoundError:  # a thread that just ended
            pass
    return sorted(names)


def test_a_with_block_left_by_an_exception_stops_everything(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    before_threads, before_tasks = set(threading.enumerate()), task_names()
    assert capture_nodes_of_this_process(pw_session) == []
    after = []
    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            with procaudio.Capture(pid=target.pid) as cap:
                audible_chunks(cap, 10)
                during = task_names()
                assert "procaudio-capture" in capture_nodes_of_this_process(pw_session)
                1 / 0
        after.append(task_names())
        # Stopped: the capture stream and the connection are gone from the session.
        assert capture_nodes_of_this_process(pw_session) == []
        assert cap.stats["frames-pushed"] > 0  # the final counters stay readable
    print(f"threads before {before_tasks}, during {during}, after {after}")
    # The PipeWire thread was joined, and no Python thread was made.
    assert "procaudio-pw" in during and all("procaudio-pw" not in a for a in after)
    assert set(threading.enumerate()) == before_threads
    # GStreamer keeps a stopped task's thread idle in its pool for the next pipeline, under
    # its last name: it is reused, not leaked, so three captures leave what one left.
    assert after[0] == after[1] == after[2]
    assert len(after[0]) < len(during)
