# SPDX-License-Identifier: LGPL-2.1-or-later
"""pipewireprocdeviceprovider as an application sees it: Gst.DeviceMonitor filtered on
Audio/Source/Application lists the real players of the private session with their
properties, follows them live on its bus, and gst-device-monitor-1.0 run as a program lists
them too (its output parsed). Every wait is bounded."""
import os
import re
import select
import shutil
import signal
import subprocess
import time


from conftest import Gst

CLASS = "Audio/Source/Application"
# Debian gstreamer1.0-plugins-base-apps, which scripts/setup.sh installs.
MONITOR_TOOL = shutil.which("gst-device-monitor-1.0") or "gst-device-monitor-1.0"


def props_of(device):
    s = device.get_properties()
    return {s.nth_field_name(i): s.get_value(s.nth_field_name(i)) for i in range(s.n_fields())}


def by_pid(devices):
    return {props_of(d)["procaudio.pid"]: d for d in devices}


def test_device_monitor_lists_the_players_with_their_properties(pw_session, players):
    alpha = players("--freq", 440, "--name", "Alpha Player").wait_streaming()
    beta = players("--freq", 660, "--streams", 2).wait_streaming(2)
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter(CLASS, None)
    assert monitor.start()
    try:
        # The devices were added while start() ran; a player's stream may still be coming up.
        deadline = time.monotonic() + 5
        while True:
            devices = by_pid(monitor.get_devices())
            ready = (alpha.pid in devices and beta.pid in devices
                     and props_of(devices[beta.pid])["procaudio.streams"] == 2)
            if ready or time.monotonic() > deadline:
                break
            monitor.get_bus().timed_pop(100 * Gst.MSECOND)
        assert alpha.pid in devices and beta.pid in devices, list(devices)
        assert os.getpid() not in devices  # the provider's own process
        a, b = props_of(devices[alpha.pid]), props_of(devices[beta.pid])
        assert devices[alpha.pid].get_display_name() == "Alpha Player"
        assert devices[alpha.pid].get_device_class() == CLASS
        assert a["device.api"] == "pipewire"
        assert a["procaudio.process-name"] == "tone_player"
        assert a["procaudio.application-name"] == "Alpha Player"
        assert a["procaudio.playing"] is True
        assert a["procaudio.streams"] == 1
        assert b["procaudio.streams"] == 2
        assert devices[alpha.pid].get_caps().is_subset(
            Gst.ElementFactory.find("pipewireprocsrc").get_static_pad_templates()[0].get_caps())
        element = devices[alpha.pid].create_element("src")
        assert element.get_factory().get_name() == "pipewireprocsrc"
        assert element.get_property("pid") == alpha.pid
        assert element.get_property("mode").value_nick == "include-tree"
    finally:
        monitor.stop()


def test_device_monitor_bus_follows_players_live(pw_session, players):
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter(CLASS, None)
    bus = monitor.get_bus()
    assert monitor.start()
    try:
        def wait_for(kind, pid, timeout=10.0):
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                msg = bus.timed_pop(int(left * Gst.SECOND))
                if msg is None or msg.type != kind:
                    continue
                if kind == Gst.MessageType.DEVICE_CHANGED:
                    device, _ = msg.parse_device_changed()
                elif kind == Gst.MessageType.DEVICE_ADDED:
                    device = msg.parse_device_added()
                else:
                    device = msg.parse_device_removed()
                if props_of(device)["procaudio.pid"] == pid:
                    return props_of(device)
            raise TimeoutError(f"no {kind} for pid {pid}")

        player = players("--freq", 550)
        shown = wait_for(Gst.MessageType.DEVICE_ADDED, player.pid)
        assert shown["procaudio.process-name"] == "tone_player"
        # Its node may be added before it runs: pause only once it is seen playing, or the
        # pause would change nothing to report.
        while not shown["procaudio.playing"]:
            shown = wait_for(Gst.MessageType.DEVICE_CHANGED, player.pid)
        player.proc.send_signal(signal.SIGUSR1)  # its pause
        while wait_for(Gst.MessageType.DEVICE_CHANGED, player.pid)["procaudio.playing"]:
            pass
        player.proc.send_signal(signal.SIGKILL)
        wait_for(Gst.MessageType.DEVICE_REMOVED, player.pid)
    finally:
        monitor.stop()


def parse_monitor_output(text):
    """The devices gst-device-monitor-1.0 printed: one dict per "Device found:" block, with
    its name, class and properties."""
    devices = []
    for block in re.split(r"\n(?=Device (?:found|modified|removed):)", text):
        if not block.startswith("Device found:"):
            continue
        device = {}
        for line in block.splitlines():
            m = re.match(r"\s+(name|class)\s+:\s+(.*)$", line)
            if m:
                device[m.group(1)] = m.group(2).strip()
            m = re.match(r"\s+(device\.api|procaudio\.[\w.-]+) = (\S+)", line)
            if m:
                device[m.group(1)] = m.group(2)
            m = re.match(r"\s+gst-launch-1\.0 (.*)$", line)
            if m:
                device["launch"] = m.group(1).strip()
        devices.append(device)
    return devices


def test_gst_device_monitor_program_lists_them(pw_session, players):
    alpha = players("--freq", 440, "--name", "Alpha Player").wait_streaming()
    beta = players("--freq", 660).wait_streaming()
    env = dict(os.environ)
    # The static list: it prints what is there and exits.
    out = subprocess.run([MONITOR_TOOL, CLASS], capture_output=True, text=True, timeout=30,
                         env=env).stdout
    listed = {int(d["procaudio.pid"]): d for d in parse_monitor_output(out)
              if d.get("class") == CLASS}
    assert alpha.pid in listed and beta.pid in listed, out
    assert listed[alpha.pid]["name"] == "Alpha Player"
    assert listed[alpha.pid]["device.api"] == "pipewire"
    assert listed[alpha.pid]["procaudio.process-name"] == "tone_player"
    assert listed[alpha.pid]["procaudio.playing"] == "true"
    assert listed[beta.pid]["procaudio.streams"] == "1"
    # The line a user copies: the device's element, its settings that are not the defaults.
    assert listed[alpha.pid]["launch"].startswith(f"pipewireprocsrc pid={alpha.pid} "), out
    # -f: it keeps following; a player started now is printed as found. Stopped by its pid.
    tool = subprocess.Popen([MONITOR_TOOL, "-f", CLASS], stdout=subprocess.PIPE, env=env)
    try:
        text = ""
        deadline = time.monotonic() + 10
        late = None
        while time.monotonic() < deadline:
            # Bounded: the program prints only when something changes.
            ready, _, _ = select.select([tool.stdout], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(tool.stdout.fileno(), 65536)  # unbuffered: select stays true
            if not chunk:
                break
            text += chunk.decode(errors="replace")
            if late is None and f"procaudio.pid = {beta.pid} " in text:
                late = players("--freq", 880)  # after the initial list
            if late is not None and f"procaudio.pid = {late.pid} " in text:
                break
        assert late is not None and f"procaudio.pid = {late.pid} " in text, text
    finally:
        tool.send_signal(signal.SIGTERM)
        try:
            tool.wait(timeout=5)
        except subprocess.TimeoutExpired:
            tool.kill()
            tool.wait()
