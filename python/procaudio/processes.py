# SPDX-License-Identifier: LGPL-2.1-or-later
"""list_processes(): the applications that play audio now, from the plugin's device
provider (pipewireprocdeviceprovider / wasapiprocdeviceprovider) via Gst.DeviceMonitor."""
from typing import NamedTuple

from ._gst import DEVICE_CLASS, Gst, structure_to_dict


class ProcessInfo(NamedTuple):
    """An application that plays audio: its root process `pid` (capture it with
    Capture(pid=...)), `process_name` (for Capture(process_name=...)), the
    `application_name` it shows, and whether it is `playing` now (not paused)."""
    pid: int
    process_name: str
    application_name: str
    playing: bool


def list_processes():
    """The applications playing audio now, one ProcessInfo each (a snapshot: the provider
    keeps the list live, so call again for a fresh one). Needs no GLib main loop."""
    monitor = Gst.DeviceMonitor.new()
    monitor.add_filter(DEVICE_CLASS, None)
    if not monitor.start():  # no provider of that class: nothing can be listed
        return []
    try:
        devices = monitor.get_devices()
    finally:
        monitor.stop()
    found = []
    for device in devices:
        p = structure_to_dict(device.get_properties())
        if "procaudio.pid" not in p:
            continue
        found.append(ProcessInfo(int(p["procaudio.pid"]), p.get("procaudio.process-name") or "",
                                 p.get("procaudio.application-name")
                                 or device.get_display_name() or "",
                                 bool(p.get("procaudio.playing", False))))
    return found
