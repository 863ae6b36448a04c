# SPDX-License-Identifier: LGPL-2.1-or-later
"""Sandboxed applications, through PyGObject: a PulseAudio client and a native PipeWire client,
each in a pid namespace of its own (as Flatpak apps run), are captured by their host pid, by
their name, and by include-tree from the namespace's parent, and never by the number they
have inside it. A distractor on the host plays throughout."""
import shutil
import subprocess
import time
import wave

import numpy as np
import pytest

from conftest import Gst, run_capture
from pw_session import TONE_PLAYER
from sandbox import Sandboxed, unshare_prefix
from wav_analysis import RATE, assert_only, level_dbfs

CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"
PLAYED_DB = 20 * np.log10(0.5)
TARGET_HZ, DISTRACTOR_HZ = 440, 1000


def capture(props, seconds=2.5):
    result = run_capture(f"pipewireprocsrc name=src {props} ! {CAPS} ! appsink name=sink",
                         seconds=seconds)
    assert result["error"] is None, result["error"]
    return result["samples"][int(0.8 * RATE):, 0]  # after a late stream's link


def assert_heard(x):
    assert_only(x, [TARGET_HZ], [DISTRACTOR_HZ], PLAYED_DB)


def assert_silent(x):
    assert not x.any(), f"{TARGET_HZ} Hz at {level_dbfs(x, TARGET_HZ):.1f} dBFS"


@pytest.fixture
def tone_wav(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(20 * RATE) / RATE
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((0.5 * np.sin(2 * np.pi * TARGET_HZ * t) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def sandboxes():
    started = []

    def start(argv, local_pid=1):
        box = Sandboxed(argv, local_pid)
        started.append(box)
        return box

    yield start
    for box in started:
        box.stop()


@pytest.fixture
def pulse_player(tmp_path, tone_wav):
    """A copy of pacat under a name of its own (so that only it can match), and its argv."""
    exe = tmp_path / f"pa_sbx_{abs(hash(tmp_path)) % 100000}"
    shutil.copy(shutil.which("pacat"), exe)
    return exe.name, [str(exe), "--playback", "--file-format=wav", str(tone_wav)]


@pytest.fixture
def native_player(tmp_path):
    exe = tmp_path / f"pw_sbx_{abs(hash(tmp_path)) % 100000}"
    shutil.copy(TONE_PLAYER, exe)
    return exe.name, [str(exe), "--freq", str(TARGET_HZ)]


@pytest.mark.parametrize("kind", ["pulse", "native"])
def test_a_sandboxed_client_is_captured_by_host_pid_name_and_tree(
        pw_session, players, sandboxes, pulse_player, native_player, kind):
    name, argv = pulse_player if kind == "pulse" else native_player
    players("--freq", DISTRACTOR_HZ).wait_streaming()
    box = sandboxes(argv)
    assert box.pid != 1
    assert_heard(capture(f"pid={box.pid}"))
    assert_heard(capture(f"process-name={name}"))
    assert_heard(capture(f"pid={box.unshare_pid} mode=include-tree"))
    # Everything but it: the distractor, not it.
    x = capture(f"pid={box.pid} mode=exclude-tree")
    assert_only(x, [DISTRACTOR_HZ], [TARGET_HZ], PLAYED_DB)


@pytest.mark.parametrize("kind", ["pulse", "native"])
def test_a_sandboxed_pid_2_is_not_host_pid_2(pw_session, sandboxes, pulse_player,
                                            native_player, kind):
    # Host pid 2 is the kernel's kthreadd: a sandboxed client calling itself 2 is not it.
    name, argv = pulse_player if kind == "pulse" else native_player
    box = sandboxes(argv, local_pid=2)
    assert box.pid != 2
    assert_silent(capture("pid=2"))
    assert_heard(capture(f"pid={box.pid}"))  # and it is heard where it really is


def test_two_sandboxed_clients_that_look_alike_are_not_guessed(pw_session, sandboxes,
                                                               pulse_player):
    # Both say "pid 1, running pa_sbx_N": which is which cannot be told, so neither stream is
    # attributed to anyone, and neither is captured, whichever process is asked for.
    name, argv = pulse_player
    a, b = sandboxes(argv), sandboxes(argv)
    assert_silent(capture(f"pid={a.pid}"))
    assert_silent(capture(f"pid={b.pid}"))
    assert_silent(capture(f"process-name={name}"))


def test_a_capture_inside_a_pid_namespace_of_its_own_refuses_to_guess(pw_session, tmp_path):
    # The element itself sandboxed, talking to the host's daemon: the daemon's pids are not
    # this namespace's, so it says so instead of capturing whatever the numbers name here.
    pipeline = [shutil.which("gst-launch-1.0"), "pipewireprocsrc", "mode=exclude-tree",
                "num-buffers=5", "!", "fakesink"]
    outside = subprocess.run(pipeline, capture_output=True, text=True, timeout=60)
    assert outside.returncode == 0, outside.stdout + outside.stderr  # where the daemon runs
    result = subprocess.run(unshare_prefix() + pipeline, capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "another pid namespace than the PipeWire daemon" in output, output


def devices_when(done, timeout=10.0):
    """The device monitor's applications once done(devices by pid) holds (bounded)."""
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter("Audio/Source/Application", None)
    assert monitor.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            devices = {d.get_properties().get_value("procaudio.pid"): d
                       for d in monitor.get_devices()}
            left = deadline - time.monotonic()
            if done(devices) or left <= 0:
                return devices
            monitor.get_bus().timed_pop(int(left * Gst.SECOND))  # the next device change
    finally:
        monitor.stop()


@pytest.mark.parametrize("kind", ["pulse", "native"])
def test_the_device_provider_lists_a_sandboxed_client_by_its_host_pid(
        pw_session, sandboxes, pulse_player, native_player, kind):
    name, argv = pulse_player if kind == "pulse" else native_player
    box = sandboxes(argv)
    devices = devices_when(lambda d: box.pid in d)
    assert box.pid in devices, sorted(devices)
    props = devices[box.pid].get_properties()
    assert props.get_value("procaudio.process-name") == name
    assert 1 not in devices  # never under the pid it calls itself
    src = devices[box.pid].create_element("src")
    assert src.get_property("pid") == box.pid


def test_the_device_provider_does_not_guess_between_look_alike_sandboxes(
        pw_session, sandboxes, pulse_player, players):
    name, argv = pulse_player
    a, b = sandboxes(argv), sandboxes(argv)
    witness = players("--freq", DISTRACTOR_HZ).wait_streaming()
    # Once a player started after them is listed, theirs would have been too.
    devices = devices_when(lambda d: witness.pid in d)
    assert witness.pid in devices
    assert a.pid not in devices and b.pid not in devices and 1 not in devices, sorted(devices)
