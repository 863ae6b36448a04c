# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipewireprocsrc end to end, through PyGObject: real processes play known tones into a
private PipeWire session; the element captures one of them; the captured audio, buffers and
bus messages are what a user would see."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import wave

import numpy as np

from conftest import Gst, assert_whole_chunks, run_capture
from pw_session import TONE_PLAYER, Session, start_session, stop_session
import wav_analysis
from wav_analysis import RATE, audible, level_dbfs, read_wav

CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"
PLAYED_DB = 20 * np.log10(0.5)  # tone_player's default amplitude
TARGET_HZ, DISTRACTOR_HZ = 440, 1000


def capture(props, seconds, extra=""):
    return run_capture(f"pipewireprocsrc name=src {props} ! {CAPS} {extra} ! appsink name=sink",
                       seconds=seconds)


def steady(result, skip_s=0.3):
    """The left channel after the links settled."""
    x = result["samples"][:, 0]
    return x[int(skip_s * RATE):]


def assert_only(x, present, absent):
    wav_analysis.assert_only(x, present, absent, PLAYED_DB)


def test_by_pid_captures_the_target_and_nothing_else(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    result = capture(f"pid={target.pid}", 2.0)
    assert result["error"] is None, result["error"]
    assert_only(steady(result), [TARGET_HZ], [DISTRACTOR_HZ])


def test_by_process_name(pw_session, players, tmp_path):
    # Copies (not links: /proc/PID/exe would name the original) under names of their own, so
    # no other process on the machine can match.
    name = f"pa_tgt_{os.getpid() % 100000}"
    target_exe, other_exe = tmp_path / name, tmp_path / "pa_other"
    shutil.copy(TONE_PLAYER, target_exe)
    shutil.copy(TONE_PLAYER, other_exe)
    players("--freq", TARGET_HZ, exe=target_exe).wait_streaming()
    players("--freq", DISTRACTOR_HZ, exe=other_exe).wait_streaming()
    result = capture(f"process-name={name}", 2.0)
    assert result["error"] is None, result["error"]
    assert_only(steady(result), [TARGET_HZ], [DISTRACTOR_HZ])


def test_exclude_tree_gives_the_opposite(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    result = capture(f"pid={target.pid} mode=exclude-tree", 2.0)
    assert result["error"] is None, result["error"]
    assert_only(steady(result), [DISTRACTOR_HZ], [TARGET_HZ])


def test_include_tree_captures_a_grandchild(pw_session, players):
    # The target itself plays nothing; its grandchild plays the tone.
    target = players("--streams", 0, "--grandchild", TARGET_HZ).wait_streaming()
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    result = capture(f"pid={target.pid}", 2.0)
    assert result["error"] is None, result["error"]
    assert_only(steady(result), [TARGET_HZ], [DISTRACTOR_HZ])


def test_late_start_is_linked_when_the_stream_appears(pw_session, players):
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    target = players("--freq", TARGET_HZ, "--start-delay", 700)
    result = capture(f"pid={target.pid}", 2.5)
    assert result["error"] is None, result["error"]
    x = steady(result, skip_s=1.2)
    assert_only(x, [TARGET_HZ], [DISTRACTOR_HZ])


def test_two_streams_of_one_process_are_both_captured(pw_session, players):
    # Stream 0 is 48 kHz stereo at 440 Hz, stream 1 44.1 kHz mono at 660 Hz.
    target = players("--streams", 2, "--freq", "440,660").wait_streaming(count=2)
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    result = capture(f"pid={target.pid}", 2.0)
    assert result["error"] is None, result["error"]
    assert_only(steady(result), [440, 660], [DISTRACTOR_HZ])


def test_a_pulse_client(pw_session, players, tmp_path):
    wav = tmp_path / "tone.wav"
    t = np.arange(10 * RATE) / RATE
    pcm = (0.5 * np.sin(2 * np.pi * TARGET_HZ * t) * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    paplay = subprocess.Popen(["paplay", str(wav)])
    try:
        # paplay's stream may appear after the capture started: the element links it then.
        result = capture(f"pid={paplay.pid}", 2.5)
    finally:
        paplay.terminate()
        paplay.wait(timeout=5)
    assert result["error"] is None, result["error"]
    assert_only(steady(result, skip_s=0.8), [TARGET_HZ], [DISTRACTOR_HZ])


def test_target_exit_sends_eos_and_leaves_a_valid_wav(pw_session, players, tmp_path):
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    target = players("--freq", TARGET_HZ, "--seconds", 2, "--start-delay", 300)
    out = tmp_path / "capture.wav"
    pipeline = Gst.parse_launch(
        f"pipewireprocsrc name=src pid={target.pid} ! {CAPS} ! wavenc ! "
        f"filesink location={out}")
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(10 * Gst.SECOND,
                                                Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert msg is not None and msg.type == Gst.MessageType.EOS, msg and msg.parse_error()
    target.read_rest()
    fmt, samples = read_wav(out)  # a valid, finalised WAV
    assert (fmt["rate"], fmt["channels"], fmt["tag"]) == (RATE, 2, 3)
    x = samples[:, 0]
    # Its audible span matches what the target played, to within one 10 ms chunk.
    played_s = int(target.event("exit")["frames"]) / RATE
    loud = np.flatnonzero(audible(x))
    span_s = (loud[-1] - loud[0] + 1) / RATE
    print(f"audible span {span_s:.4f} s, played {played_s:.4f} s")
    assert abs(span_s - played_s) <= 0.010 + 1024 / RATE, (span_s, played_s)
    # Nothing of any other process, during or after the target's life: after its last sound
    # only silence, and the stream ends (EOS) within 500 ms of its exit.
    assert level_dbfs(x, DISTRACTOR_HZ) <= -80
    tail = x[loud[-1] + 1:]
    assert not audible(tail).any()
    assert tail.size / RATE <= 0.5 + 0.010, f"EOS {tail.size / RATE:.3f} s after the last sound"


def test_timestamps_continuous_and_on_the_graph_clock_for_60_s(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    result = capture(f"pid={target.pid}", 60.0)
    assert result["error"] is None, result["error"]
    buffers, base = result["buffers"], result["base_time"]
    assert len(buffers) > 5500
    disconts = [i for i, b in enumerate(buffers) if b[4] & Gst.BufferFlags.DISCONT]
    assert disconts == [0], f"DISCONT at {disconts[:10]}"
    for prev, cur in zip(buffers, buffers[1:]):
        assert cur[0] == prev[0] + prev[1], "PTS(n+1) == PTS(n) + DURATION(n)"
        assert cur[2] == prev[3], "OFFSET(n+1) == OFFSET_END(n)"
    # The graph produces a whole quantum at the start of its cycle, and frame k of it is at
    # cycle start + k / rate on the graph clock (CLOCK_MONOTONIC, as the pipeline clock): so a
    # buffer arrives a little after or, for the later chunks of a quantum, before its PTS.
    # Over 60 s the stamps stay within 40 ms of that clock and do not drift.
    # The arrival clock is read in a Python callback, so scheduling adds spikes of its own:
    # the best case of each second is what shows the stamps' offset from the graph clock,
    # and its drift.
    lags = np.array([arrival - (base + pts) for pts, _, _, _, _, arrival in buffers])
    second = RATE // 480
    best = np.array([lags[i:i + second].min() for i in range(0, lags.size - second, second)])
    assert np.abs(best).max() <= 40_000_000, f"offset {np.abs(best).max() / 1e6:.1f} ms"
    drift = np.median(best[-10:]) - np.median(best[:10])
    # Audio that came after its time was filled with silence (packets-late: this process held
    # up on a busy machine, the graph not) goes after that silence: from then on the stamps
    # run that much later, never more than the alignment threshold (40 ms; beyond it the
    # stream re-anchors, with a DISCONT, asserted above). Otherwise they do not drift.
    late = result["stats"].get_value("packets-late")
    assert abs(drift) <= (2_000_000 if late == 0 else 40_000_000), (
        f"drift {drift / 1e6:.2f} ms over 60 s, {late} packets late")
    print(f"lag arrival-PTS: min {lags.min() / 1e6:.2f} ms, max {lags.max() / 1e6:.2f} ms, "
          f"per-second best within {np.abs(best).max() / 1e6:.2f} ms, "
          f"drift {drift / 1e6:.3f} ms over 60 s")
    stats = result["stats"]
    assert stats.get_value("frames-dropped") == 0
    # Silence the element made (GAP buffers) belongs where the graph gave nothing: before the
    # first audio (a slow start) or in a stall of an overloaded machine. A stall holds this
    # process too, so the sink may get the audio around it in one burst: how far apart it
    # arrived says nothing. What tells them apart is the audio after the silence. Silence made
    # while audio flowed would push that audio later than it was captured, so it would reach
    # the sink earlier, against its PTS, than any other chunk can (a DISCONT or drift would
    # follow, asserted above). After a stall it carries its true graph time.
    gap = np.array([bool(b[4] & Gst.BufferFlags.GAP) for b in buffers])
    audio = np.flatnonzero(~gap)
    after_gap = audio[(audio > 0) & gap[np.maximum(audio - 1, 0)]]
    others = np.setdiff1d(audio, after_gap)
    earliest = lags[others].min()
    for i in after_gap:
        if audio[0] < i:  # not the slow start
            assert lags[i] >= earliest - 2_000_000, (
                f"audio buffer {i} (PTS {buffers[i][0] / 1e9:.3f} s) after GAP silence reached "
                f"the sink {-lags[i] / 1e6:.1f} ms before its PTS; no other chunk came more "
                f"than {-earliest / 1e6:.1f} ms early: the silence displaced it")
    print(f"{gap.sum()} GAP buffers, {stats.get_value('frames-gap-filled')} frames gap-filled")


def test_ten_sources_in_one_pipeline_each_get_only_their_tone(pw_session, players):
    tones = [300 + 97 * i for i in range(10)]
    procs = [players("--freq", f).wait_streaming() for f in tones]
    branches = " ".join(f"pipewireprocsrc name=src{i} pid={p.pid} ! {CAPS} ! "
                        f"appsink name=sink{i} sync=false" for i, p in enumerate(procs))
    pipeline = Gst.parse_launch(branches)
    pipeline.set_state(Gst.State.PLAYING)
    captured = [[] for _ in tones]
    deadline = time.monotonic() + 15
    for i in range(len(tones)):
        sink = pipeline.get_by_name(f"sink{i}")
        while sum(c.size for c in captured[i]) < 2 * 2 * RATE:
            assert time.monotonic() < deadline, f"source {i} starved"
            sample = sink.try_pull_sample(5 * Gst.SECOND)
            assert sample is not None, f"source {i}: no buffer"
            buf = sample.get_buffer()
            captured[i].append(np.frombuffer(buf.extract_dup(0, buf.get_size()), dtype="<f4"))
    stats = [pipeline.get_by_name(f"src{i}").get_property("stats") for i in range(len(tones))]
    pipeline.set_state(Gst.State.NULL)
    for i, f in enumerate(tones):
        x = np.concatenate(captured[i]).reshape(-1, 2)[int(0.5 * RATE):, 0]
        # Where glitches come from: silence the element made (frames-gap-filled while the
        # audio flows, packets-late) or a player that missed cycles (neither).
        _, count = wav_analysis.longest_clean_span(x, [f])
        print(f"source {i} ({f} Hz): {count} glitches, own level "
              f"{wav_analysis.level_dbfs(x, f, RATE):.2f} dBFS, frames-gap-filled "
              f"{stats[i].get_value('frames-gap-filled')}, packets-late "
              f"{stats[i].get_value('packets-late')}")
        assert_only(x, [f], [g for g in tones if g != f])


def test_no_such_pid_fails_ready_to_paused_with_not_found(pw_session):
    pid = 4_000_000  # above pid_max's ceiling (2^22): never a process
    result = capture(f"pid={pid}", 2.0)
    error, debug = result["error"]
    assert error.matches(Gst.ResourceError.quark(), Gst.ResourceError.NOT_FOUND)
    assert str(pid) in error.message


def test_no_pipewire_reachable_names_the_socket_and_runtime_dir(pw_session):
    empty = tempfile.mkdtemp(prefix="procaudio-no-pw-")
    nowhere = Session({"XDG_RUNTIME_DIR": empty, "PIPEWIRE_RUNTIME_DIR": empty,
                       "PIPEWIRE_REMOTE": None})
    nowhere.activate()
    try:
        result = capture("mode=exclude-tree", 2.0)
    finally:
        nowhere.deactivate()
        shutil.rmtree(empty)
    assert result["error"] is not None
    error, debug = result["error"]
    assert "pipewire-0" in error.message and empty in error.message, error.message


def test_pipewire_daemon_killed_mid_capture_ends_with_an_error_within_2_s(players):
    # A session of its own: this test kills its daemon.
    session = Session(start_session())
    session.activate()
    try:
        target = players("--freq", TARGET_HZ).wait_streaming()
        pipeline = Gst.parse_launch(
            f"pipewireprocsrc name=src pid={target.pid} ! {CAPS} ! fakesink sync=false")
        bus = pipeline.get_bus()
        pipeline.set_state(Gst.State.PLAYING)
        assert pipeline.get_state(5 * Gst.SECOND)[0] == Gst.StateChangeReturn.SUCCESS
        killed = time.monotonic()
        os.kill(session.pids()["pipewire"], signal.SIGKILL)
        msg = bus.timed_pop_filtered(2 * Gst.SECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
        elapsed = time.monotonic() - killed
        pipeline.set_state(Gst.State.NULL)
        assert msg is not None and msg.type == Gst.MessageType.ERROR, "no error within 2 s"
        error, debug = msg.parse_error()
        assert error.matches(Gst.ResourceError.quark(), Gst.ResourceError.READ), error.message
        assert elapsed < 2.0
    finally:
        session.deactivate()
        stop_session(session.env)


def test_properties_and_stats_from_python(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    src = Gst.ElementFactory.make("pipewireprocsrc", None)
    assert src is not None
    assert Gst.ElementFactory.find("pipewireprocsrc").get_rank() == Gst.Rank.NONE
    src.set_property("pid", target.pid)
    src.set_property("latency-time", 20000)
    assert src.get_property("pid") == target.pid
    assert src.get_property("latency-time") == 20000
    assert src.get_property("mode").value_nick == "include-tree"
    result = capture(f"pid={target.pid} latency-time=20000", 1.0)
    stats = result["stats"]
    assert stats.get_name() == "procaudio-stats"
    # Every frame pushed reached the appsink, but for one buffer pushed into the flushing
    # pad at shutdown.
    seen = sum(b[3] - b[2] for b in result["buffers"])
    assert seen > 0
    assert 0 <= stats.get_value("frames-pushed") - seen <= 20 * RATE // 1000
    assert stats.get_value("frames-dropped") == 0
    # 20 ms each, but where a hole (a lost graph cycle on a busy machine) cuts a run short.
    assert_whole_chunks([(b[1], bool(b[4] & Gst.BufferFlags.GAP)) for b in result["buffers"]],
                        20 * Gst.MSECOND)


def test_reference_timestamps_are_the_wall_clock_of_the_first_frame(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    pipeline = Gst.parse_launch(f"pipewireprocsrc pid={target.pid} reference-timestamp=true ! "
                                f"{CAPS} ! appsink name=sink sync=false")
    sink = pipeline.get_by_name("sink")
    unix = Gst.Caps.from_string("timestamp/x-unix")
    pipeline.set_state(Gst.State.PLAYING)
    stamps = []
    try:
        while len(stamps) < 200:
            sample = sink.try_pull_sample(5 * Gst.SECOND)
            assert sample is not None, "no buffer"
            buf = sample.get_buffer()
            meta = buf.get_reference_timestamp_meta(unix)
            assert meta is not None, f"buffer {len(stamps)} has no timestamp/x-unix meta"
            stamps.append((buf.pts, buf.duration, meta.timestamp, time.time_ns(),
                           bool(buf.get_flags() & Gst.BufferFlags.DISCONT)))
    finally:
        pipeline.set_state(Gst.State.NULL)
    # The wall-clock stamps move with the samples, to the nanosecond of rounding, but where
    # the wall clock itself was stepped or slewed by a millisecond or more (NTP): once, at most.
    moved = [(nref - ref) - (npts - pts)
             for (pts, _, ref, _, _), (npts, _, nref, _, _) in zip(stamps, stamps[1:])]
    off = [m for m in moved if abs(m) > 1]
    assert len(off) <= 1 and all(abs(m) >= Gst.MSECOND for m in off), off
    for pts, dur, ref, pulled, _ in stamps:
        # The wall clock of its first frame's capture, which is when it was pulled to within a
        # quantum: PipeWire hands a whole quantum (21 ms) at once, so its later chunks are
        # pulled before their time; none waits long.
        assert -50 * Gst.MSECOND <= pulled - ref <= 200 * Gst.MSECOND, (pulled - ref) / 1e6
