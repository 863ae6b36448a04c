# SPDX-License-Identifier: LGPL-2.1-or-later
"""procaudio's asyncio stream, record() and list_processes(), against the private session
with real tone players: a slow asyncio consumer loses the oldest chunks, counted exactly and
flagged discont; record gives the length asked for, or ends with the target; a WAV is
finalised; the process list shows the players."""
import asyncio
import pathlib
import sys
import time

import numpy as np

import wav_analysis
from wav_analysis import read_wav

# The package is imported from the source tree, not from an installed copy.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import procaudio  # noqa: E402

RATE = 16000
PLAYED_DB = 20 * np.log10(0.5)
TARGET_HZ = 440
CHUNK_FRAMES = RATE // 100


def test_a_slow_asyncio_consumer_loses_the_oldest_chunks_counted(pw_session, players):
    # The player plays 3 s and exits, so the stream ends by itself and every chunk the
    # element pushed is accounted for: delivered or dropped.
    target = players("--freq", TARGET_HZ, "--seconds", 3).wait_streaming()
    delivered = []

    async def consume():
        async with procaudio.Capture(pid=target.pid) as cap:
            async for chunk in cap.stream(max_chunks=8):
                delivered.append(chunk)
                if len(delivered) <= 10:
                    await asyncio.sleep(0.1)  # ten chunks' worth per chunk: too slow
        return cap

    cap = asyncio.run(asyncio.wait_for(consume(), timeout=20))
    stats = cap.stats
    print(f"received {stats['chunks-received']}, delivered {len(delivered)}, "
          f"dropped {stats['chunks-dropped']}")
    assert stats["chunks-dropped"] > 0
    assert stats["chunks-dropped"] + len(delivered) == stats["chunks-received"]
    assert stats["chunks-delivered"] == len(delivered)
    assert stats["chunks-received"] == stats["chunks-pushed"]  # EOS drained the pipeline
    assert stats["chunks-queued"] == 0
    # Each hole in the offsets is where chunks were dropped; the chunk after it is
    # discont, and no other is (after the first). The holes add up to the count: exactly,
    # when the chunks dropped were whole; a chunk a lost graph cycle cut short (it goes out
    # before the cycle's GAP) may be among them, and then each hole holds at least as many
    # chunks as whole ones would fill and at most one a frame.
    holes, flagged = [], 0
    for prev, cur in zip(delivered, delivered[1:]):
        hole = cur.offset - (prev.offset + prev.samples.shape[0])
        assert hole >= 0
        if hole:
            assert cur.discont, f"no discont after a hole of {hole} frames"
            holes.append(hole)
        else:
            assert not cur.discont
        flagged += cur.discont
    if all(h % CHUNK_FRAMES == 0 for h in holes):
        assert sum(h // CHUNK_FRAMES for h in holes) == stats["chunks-dropped"]
    else:
        assert sum(-(-h // CHUNK_FRAMES) for h in holes) <= stats["chunks-dropped"] <= sum(holes)
    assert flagged >= 1
    assert stats["frames-dropped"] == 0  # the element itself lost nothing


def test_async_errors_are_raised_from_async_with(pw_session):
    async def start():
        async with procaudio.Capture(pid=4_000_000) as cap:
            async for _ in cap.stream():
                pass

    try:
        asyncio.run(start())
    except procaudio.NotFound as e:
        assert "4000000" in e.message
    else:
        raise AssertionError("no NotFound")


def test_record_for_2_s_gives_2_s(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    done = []
    t0 = time.monotonic()
    x = procaudio.record(pid=target.pid, seconds=2, on_complete=done.append)
    took = time.monotonic() - t0
    print(f"record(seconds=2): {x.shape[0]} frames in {took:.3f} s")
    assert x.dtype == np.int16 and x.shape[1] == 1
    assert abs(x.shape[0] - 2 * RATE) <= CHUNK_FRAMES
    assert done and done[0] is x
    assert took < 3.0
    level = wav_analysis.level_dbfs(x[RATE // 2:, 0] / 32768.0, TARGET_HZ, RATE)
    assert abs(level - PLAYED_DB) <= 1.0, level


def test_record_2_s_to_a_wav(pw_session, players, tmp_path):
    target = players("--freq", TARGET_HZ).wait_streaming()
    path = tmp_path / "two.wav"
    assert procaudio.record(pid=target.pid, seconds=2, path=path) == str(path)
    fmt, samples = read_wav(path)  # strict: the sizes were finalised
    assert (fmt["rate"], fmt["channels"], fmt["bits"]) == (RATE, 1, 16)
    print(f"WAV of 2 s: {samples.shape[0]} frames")
    assert abs(samples.shape[0] - 2 * RATE) <= CHUNK_FRAMES
    level = wav_analysis.level_dbfs(samples[RATE // 2:, 0] / 32768.0, TARGET_HZ, RATE)
    assert abs(level - PLAYED_DB) <= 1.0, level


def exit_time_s(player):
    """CLOCK_MONOTONIC (what time.monotonic reads on Linux) at which the player said it
    exits."""
    player.read_rest()
    exited = next(e for e in player.events if " exit " in f" {e} ")
    fields = dict(kv.split("=", 1) for kv in exited.split() if "=" in kv)
    return int(fields["t"]) / 1e9


def test_record_until_the_target_exits(pw_session, players):
    target = players("--freq", TARGET_HZ, "--seconds", 2.5).wait_streaming()
    x = procaudio.record(pid=target.pid)
    returned = time.monotonic()
    late = returned - exit_time_s(target)
    print(f"record() returned {late * 1000:.0f} ms after the exit, {x.shape[0] / RATE:.3f} s")
    assert 0 <= late <= 0.5
    assert 1.5 <= x.shape[0] / RATE <= 2.7


def test_record_a_wav_until_the_target_exits(pw_session, players, tmp_path):
    target = players("--freq", TARGET_HZ, "--seconds", 2).wait_streaming()
    path = tmp_path / "app.wav"
    procaudio.record(pid=target.pid, path=path, rate=48000, channels=2, dtype="float32")
    late = time.monotonic() - exit_time_s(target)
    print(f"record(path) returned {late * 1000:.0f} ms after the exit")
    assert 0 <= late <= 0.5
    fmt, samples = read_wav(path)
    assert (fmt["rate"], fmt["channels"], fmt["tag"]) == (48000, 2, 3)
    assert 1.0 <= samples.shape[0] / 48000 <= 2.2
    level = wav_analysis.level_dbfs(samples[24000:72000, 0], TARGET_HZ, 48000)
    assert abs(level - PLAYED_DB) <= 1.0, level


def test_record_of_a_missing_pid_raises(pw_session, tmp_path):
    try:
        procaudio.record(pid=4_000_000, seconds=1, path=tmp_path / "x.wav")
    except procaudio.NotFound:
        pass
    else:
        raise AssertionError("no NotFound")


def test_list_processes_lists_the_players(pw_session, players):
    alpha = players("--freq", 440, "--name", "Alpha Player").wait_streaming()
    beta = players("--freq", 660).wait_streaming()
    listed = {p.pid: p for p in procaudio.list_processes()}
    assert alpha.pid in listed and beta.pid in listed, listed
    a = listed[alpha.pid]
    assert isinstance(a, procaudio.ProcessInfo)
    assert a == procaudio.ProcessInfo(alpha.pid, "tone_player", "Alpha Player", True)
    assert listed[beta.pid].process_name == "tone_player" and listed[beta.pid].playing
    # What it lists can be captured by its pid.
    with procaudio.Capture(pid=a.pid) as cap:
        chunks = [c for _, c in zip(range(60), cap)]
    x = np.concatenate([c.samples for c in chunks[20:]])[:, 0] / 32768.0
    assert wav_analysis.level_dbfs(x, 440, RATE) >= PLAYED_DB - 1
