# SPDX-License-Identifier: LGPL-2.1-or-later
"""procaudio: the audio of one application, in Python, from GStreamer's pipewireprocsrc
(Linux) or wasapiprocsrc (Windows).

    import procaudio
    with procaudio.Capture(process_name="firefox") as cap:      # 16 kHz mono int16, 10 ms
        for chunk in cap:
            vad(chunk.samples, chunk.pts)

Also: `Capture(...).stream()` for asyncio, `record()`, `list_processes()`, and the errors
`CaptureError` (NotFound, AccessDenied, Unavailable, InvalidSettings). The old API lives in
`procaudio.compat`."""
from ._gst import ELEMENT
from .capture import Capture, Chunk
from .errors import AccessDenied, CaptureError, InvalidSettings, NotFound, Unavailable
from .processes import ProcessInfo, list_processes
from .record import record

__all__ = ["Capture", "Chunk", "record", "list_processes", "ProcessInfo", "CaptureError",
           "NotFound", "AccessDenied", "Unavailable", "InvalidSettings", "ELEMENT"]
__version__ = "0.1.0"
