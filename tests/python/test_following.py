# SPDX-License-Identifier: LGPL-2.1-or-later
"""Following an application by name (on-target-exit=wait), through PyGObject: the element is
started before the application runs, the application plays, is killed, and plays again; a
distractor plays throughout. What an application sees: procaudio-target messages, GAP
buffers while waiting, one continuous timeline with DISCONT at each re-attachment, and a WAV
with the two tones where they were played."""
import os
import shutil
import signal
import time

import numpy as np

from conftest import Gst
from recorder import Recorder
from pw_session import TONE_PLAYER
from wav_analysis import RATE, assert_only, audible, level_dbfs, read_wav

CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"
PLAYED_DB = 20 * np.log10(0.5)
FIRST_HZ, SECOND_HZ, DISTRACTOR_HZ = 440, 660, 1000


class Player:
    def __init__(self, exe, freq):
        import subprocess
        self.proc = subprocess.Popen([str(exe), "--freq", str(freq)], stdout=subprocess.PIPE,
                                     text=True)
        self.pid = self.proc.pid

    def streaming_at(self, timeout=10.0):
        """CLOCK_MONOTONIC ns at which its stream started running (its "streaming" line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            assert line, f"player {self.pid} ended before streaming"
            if " streaming " in f" {line} ":
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                return int(fields["t"])
        raise TimeoutError(f"player {self.pid} did not stream")

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


def test_an_application_is_followed_across_restarts(pw_session, players, tmp_path):
    # A name no other process has, and a distractor of another name playing throughout.
    name = f"pa_follow_{os.getpid() % 100000}"
    app_exe = tmp_path / name
    shutil.copy(TONE_PLAYER, app_exe)
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    wav = tmp_path / "followed.wav"
    rec = Recorder(f"pipewireprocsrc name=src process-name={name} on-target-exit=wait ! {CAPS} "
                   f"! tee name=t t. ! queue ! appsink name=sink t. ! queue ! wavenc ! "
                   f"filesink location={wav}")
    started = []
    try:
        assert rec.pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
        # Not running yet: waiting, and live with GAP silence.
        rec.wait_state("waiting")
        rec.wait(lambda: len(rec.buffers) >= 30, 10.0, "30 buffers while waiting")

        first = Player(app_exe, FIRST_HZ)
        started.append(first)
        first_streaming = first.streaming_at()
        i_first = rec.wait_state("capturing", first.pid)
        rec.wait_audible_ms(rec.targets[i_first]["buffers"], 1000)

        first.kill()
        i_exit = rec.wait_state("exited", first.pid, after=i_first)
        i_wait = rec.wait_state("waiting", after=i_exit)
        at_wait = len(rec.buffers)
        rec.wait(lambda: len(rec.buffers) >= at_wait + 30, 10.0, "30 buffers after the exit")

        second = Player(app_exe, SECOND_HZ)
        started.append(second)
        second_streaming = second.streaming_at()
        i_second = rec.wait_state("capturing", second.pid, after=i_wait)
        rec.wait_audible_ms(rec.targets[i_second]["buffers"], 1000)
        rec.pipeline.send_event(Gst.Event.new_eos())  # the WAV is finalised
        rec.wait(lambda: rec.eos, 10.0, "EOS")
    finally:
        rec.pipeline.set_state(Gst.State.NULL)
        for p in started:
            p.kill()
    stats = rec.pipeline.get_by_name("src").get_property("stats")

    # The messages: one per change, naming the application.
    changes = []
    for t in rec.targets:
        assert t["process-name"] == name
        if not changes or changes[-1] != (t["state"], t["pid"]):
            changes.append((t["state"], t["pid"]))
            # Attached from its stream: it has one. (Later ones count its streams as they
            # come and go: its killed stream may go before its exit is seen.)
            assert t["streams"] == (1 if t["state"] == "capturing" else 0), t
    assert changes == [("waiting", 0), ("capturing", first.pid), ("exited", first.pid),
                       ("waiting", 0), ("capturing", second.pid)], changes

    buffers, base = rec.buffers, rec.base_time()
    gap = [bool(b[4] & Gst.BufferFlags.GAP) for b in buffers]
    disconts = [i for i, b in enumerate(buffers) if b[4] & Gst.BufferFlags.DISCONT]
    # Waiting is GAP, from the first buffer to the first process's sound.
    first_sound = next(i for i, g in enumerate(gap) if not g)
    assert first_sound >= 30 and all(gap[:first_sound])
    # One timeline: offsets contiguous; PTS contiguous but at a re-attachment, where it may
    # move by under a frame, and never back.
    for i in range(1, len(buffers)):
        prev, cur = buffers[i - 1], buffers[i]
        assert cur[2] == prev[3], f"offset hole at buffer {i}"
        step = cur[0] - (prev[0] + prev[1])
        if i in disconts:
            assert 0 <= step <= Gst.MSECOND, f"PTS step {step} ns at re-attachment {i}"
        else:
            assert step == 0, f"PTS step {step} ns at buffer {i}"
    # DISCONT exactly at the start and at each re-attachment, on its first buffer of sound.
    assert len(disconts) == 3 and disconts[0] == 0, disconts
    assert disconts[1] >= rec.targets[i_first]["buffers"] and not gap[disconts[1]]
    assert disconts[2] >= rec.targets[i_second]["buffers"] and not gap[disconts[2]]
    assert all(gap[disconts[1] - 1::-1][:1]) and all(gap[disconts[2] - 1::-1][:1])
    assert stats.get_value("reattachments") == 2
    # Each state holds from an offset on the buffers' timeline: a process's "capturing" from
    # before its first sound (the DISCONT), its "exited" from after its last.
    assert rec.targets[i_first]["offset"] <= buffers[disconts[1]][2]
    assert rec.targets[i_second]["offset"] <= buffers[disconts[2]][2]
    last_of_first = max(b[3] for b, g in zip(buffers[:disconts[2]], gap) if not g)
    assert rec.targets[i_exit]["offset"] >= last_of_first, (rec.targets[i_exit], last_of_first)
    assert stats.get_value("frames-dropped") == 0
    # Each process heard within 200 ms of its stream appearing.
    for streaming, d in ((first_streaming, disconts[1]), (second_streaming, disconts[2])):
        heard_at = base + buffers[d][0]
        print(f"captured {(heard_at - streaming) / 1e6:+.1f} ms from its stream's start")
        assert abs(heard_at - streaming) <= 200 * Gst.MSECOND, (heard_at - streaming) / 1e6
    # Between the exit and the second process: GAP only.
    assert all(gap[rec.targets[i_exit]["buffers"] + 1:disconts[2]])

    # The WAV: finalised, the two tones where they were played on the wall clock, and nothing
    # of the distractor anywhere.
    fmt, samples = read_wav(wav)
    assert (fmt["rate"], fmt["channels"]) == (RATE, 2)
    x = samples[:, 0]
    assert x.size == buffers[-1][3] - buffers[0][2]
    start_ns = base + buffers[0][0]
    loud = audible(x)
    onsets = [np.flatnonzero(loud)[0]]
    second_from = int((base + buffers[disconts[2]][0] - start_ns) * RATE // Gst.SECOND)
    onsets.append(second_from + np.flatnonzero(loud[second_from:])[0])
    for onset, streaming in zip(onsets, (first_streaming, second_streaming)):
        offset_ms = (start_ns + onset * Gst.SECOND // RATE - streaming) / 1e6
        assert abs(offset_ms) <= 200, f"a tone {offset_ms:.1f} ms from where it was played"
    # Half a second of each, from 100 ms in: its tone at the played level, not the other's.
    first_part = x[onsets[0] + RATE // 10:onsets[0] + RATE // 10 + RATE // 2]
    second_part = x[onsets[1] + RATE // 10:onsets[1] + RATE // 10 + RATE // 2]
    assert level_dbfs(first_part, FIRST_HZ) >= PLAYED_DB - 1
    assert level_dbfs(second_part, SECOND_HZ) >= PLAYED_DB - 1
    assert_only(first_part, [FIRST_HZ], [SECOND_HZ, DISTRACTOR_HZ], PLAYED_DB, min_clean_s=0.25)
    assert_only(second_part, [SECOND_HZ], [FIRST_HZ, DISTRACTOR_HZ], PLAYED_DB, min_clean_s=0.25)
    # Before the first process and between the two, nothing at all: the distractor played
    # all along and is nowhere.
    first_end = np.flatnonzero(loud[:onsets[1]])[-1]
    assert not x[:onsets[0]].any() and not x[first_end + 1:onsets[1]].any()
    assert (onsets[1] - first_end) / RATE >= 0.25  # the wait, 30 buffers at least
    print(f"onsets {onsets[0] / RATE:.3f} s, {onsets[1] / RATE:.3f} s; "
          f"{sum(gap)} of {len(gap)} buffers GAP")
