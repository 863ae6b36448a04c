# SPDX-License-Identifier: LGPL-2.1-or-later
"""procaudio on Windows as a user of the GStreamer wheels has it: the installed procaudio wheel
(its plugin DLL in procaudio/gstreamer-1.0/), GStreamer and PyGObject from
`pip install gstreamer-meta`, and real players (tests/wasapi/wintone.cpp) captured by
process loopback through wasapiprocsrc.

Run by the windows workflow's python job (written, not yet run), from outside the checkout
so that procaudio is the installed one, and without the Linux suite's conftest:

    python -m pytest -q -p no:cacheprovider --noconftest tests/python/windows

Needs wintone.exe (PROCAUDIO_WINTONE, else PROCAUDIO_BUILD_DIR/tests/wasapi/wintone.exe),
an audio output device (the workflow installs Scream), and no GST_PLUGIN_PATH naming the
build: the plugin must be the wheel's. Nothing here is Linux-only; the only thing borrowed from
the Linux suite is wav_analysis (numpy only). Every player is started here and stopped by its
own handle."""
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

if sys.platform != "win32":  # before procaudio is imported: wasapiprocsrc is Windows only
    pytest.skip("wasapiprocsrc: Windows only", allow_module_level=True)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # wav_analysis
import wav_analysis  # noqa: E402

import procaudio  # noqa: E402  (the installed wheel, not the source tree)
from procaudio import _gst  # noqa: E402
Gst = _gst.Gst

# As the wasapi-real suite (tests/wasapi/real_windows.h): the played level and frequencies,
# the engine's conversion tolerance, and how far down another process must be.
PLAYED_DB = -12.0
TARGET_HZ, DECOY_HZ = 1000, 3000
TOLERANCE_DB = 1.0
SEPARATION_DB = 40.0
RATE = 48000

def wintone_exe():
    path = os.environ.get("PROCAUDIO_WINTONE")
    if not path:
        path = pathlib.Path(os.environ.get("PROCAUDIO_BUILD_DIR", "build"),
                            "tests", "wasapi", "wintone.exe")
    path = pathlib.Path(path)
    if not path.is_file():
        pytest.fail(f"no tone player at {path}: build tests/wasapi's wintone, or set "
                    "PROCAUDIO_WINTONE")
    return path


class Player:
    """wintone.exe playing a tone; its stdout lines (`started pid=...`, `exit ...`) read on
    a thread and waited for, bounded."""

    def __init__(self, freq, seconds=60):
        self.proc = subprocess.Popen(
            [str(wintone_exe()), "--freq", str(freq), "--level", str(PLAYED_DB),
             "--duration-ms", str(int(seconds * 1000)),
             "--lifetime-ms", str(int(seconds * 1000) + 30000)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.pid = self.proc.pid
        self.lines = []
        self._cond = threading.Condition()
        self._ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.split())
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait_started(self, timeout=10.0):
        """The fields of its `started` line, once it is rendering."""
        def started():
            return next((l for l in self.lines if l[:1] == ["started"]), None)
        with self._cond:
            self._cond.wait_for(lambda: started() or self._ended, timeout)
            line = started()
        assert line, (f"wintone {self.pid} did not start playing (an audio output device?): "
                      f"{self.lines}, exit {self.proc.poll()}")
        fields = dict(f.split("=", 1) for f in line[1:] if "=" in f)
        assert int(fields["pid"]) == self.pid
        return fields

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # TerminateProcess on this process's own child
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def players():
    """The target and a decoy, playing for the whole module."""
    started = [Player(TARGET_HZ), Player(DECOY_HZ)]
    try:
        for p in started:
            p.wait_started()
        yield started
    finally:
        for p in started:
            p.stop()


def audible_stereo(chunks, seconds, limit=1000):
    """`seconds` of chunks from the first one with sound in it (the loopback delivers silence
    before the player's audio reaches it), bounded by `limit` chunks in all."""
    taken, frames = [], 0
    for i, chunk in enumerate(chunks):
        if taken or (not chunk.gap and np.max(np.abs(chunk.samples)) > 1e-3):
            taken.append(chunk.samples)
            frames += chunk.samples.shape[0]
        if frames >= seconds * RATE or i >= limit:
            break
    assert frames >= seconds * RATE, f"only {frames} frames with sound in {limit} chunks"
    return np.concatenate(taken)


def assert_target_only(x):
    """Each channel holds the target's tone at the played level, the decoy 40 dB down."""
    x = x[int(0.3 * RATE):].astype(np.float64)  # past the stream's start
    for ch in range(x.shape[1]):
        target = wav_analysis.level_dbfs(x[:, ch], TARGET_HZ, RATE)
        decoy = wav_analysis.level_dbfs(x[:, ch], DECOY_HZ, RATE)
        print(f"ch {ch}: target {target:.2f} dBFS, decoy {decoy:.1f} dBFS")
        assert abs(target - PLAYED_DB) <= TOLERANCE_DB, (ch, target)
        assert decoy <= target - SEPARATION_DB, (ch, decoy)
        assert abs(wav_analysis.dominant_frequency(x[:, ch], RATE) - TARGET_HZ) <= 2


def test_the_element_comes_from_the_plugin_in_the_wheel():
    assert procaudio.ELEMENT == "wasapiprocsrc"
    factory = _gst.Gst.ElementFactory.find("wasapiprocsrc")
    assert factory is not None, _gst.missing_element_message()
    filename = factory.get_plugin().get_filename()
    assert _gst.BUNDLED_PLUGIN is not None and os.path.samefile(filename, _gst.BUNDLED_PLUGIN)
    assert os.path.samefile(os.path.dirname(filename), _gst.BUNDLED_PLUGIN_DIR)


def test_capture_by_pid_holds_the_tone_of_that_player(players):
    target = players[0]
    with procaudio.Capture(pid=target.pid, rate=RATE, channels=2, dtype="float32") as cap:
        x = audible_stereo(cap, 1.5)
        assert cap.pid == target.pid
        stats = cap.stats
    assert x.dtype == np.float32 and x.shape[1] == 2
    assert_target_only(x)
    assert stats["frames-captured"] > 0 and stats["chunks-dropped"] == 0


def test_record_returns_that_many_frames_of_the_tone(players):
    x = procaudio.record(pid=players[0].pid, seconds=2.5, rate=RATE, channels=2,
                         dtype="float32")
    assert x.shape == (int(2.5 * RATE), 2)
    loud = np.flatnonzero(np.max(np.abs(x), axis=1) > 1e-3)
    assert loud.size, "nothing audible recorded"
    heard = x[loud[0]:]
    assert heard.shape[0] >= 1.0 * RATE + 0.3 * RATE, heard.shape
    assert_target_only(heard)


def test_list_processes_shows_the_players(players):
    # The provider lists a session once the audio engine has it: a device monitor's bus
    # says when a device appears or changes, so the test waits on those messages (at most
    # 10 s in all), then asks list_processes() for its snapshot.
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter(_gst.DEVICE_CLASS, None)
    assert monitor.start(), "no provider of Audio/Source/Application"
    bus = monitor.get_bus()
    deadline = time.monotonic() + 10

    def playing_pids():
        props = [_gst.structure_to_dict(d.get_properties()) for d in monitor.get_devices()]
        return {int(p["procaudio.pid"]) for p in props
                if "procaudio.pid" in p and p.get("procaudio.playing")}

    try:
        while not {p.pid for p in players} <= playing_pids():
            left = deadline - time.monotonic()
            assert left > 0, f"not listed as playing: {procaudio.list_processes()}"
            bus.timed_pop_filtered(int(left * Gst.SECOND),
                                   Gst.MessageType.DEVICE_ADDED | Gst.MessageType.DEVICE_CHANGED)
    finally:
        monitor.stop()
    listed = {p.pid: p for p in procaudio.list_processes()}
    assert all(p.pid in listed and listed[p.pid].playing for p in players), listed
    for p in players:
        info = listed[p.pid]
        assert info.process_name.lower().removesuffix(".exe") == "wintone", info
