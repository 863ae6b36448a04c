# SPDX-License-Identifier: LGPL-2.1-or-later
"""record(): a fixed length of one application's audio, or all of it until it exits."""
import os

import numpy as np

from .capture import Capture


def record(pid=None, process_name=None, seconds=None, path=None, *, on_complete=None,
           **capture_options):
    """Records the audio of a process: for `seconds` of stream (gap silence included, so the
    result is as long as the time it covers), or until the target exits when `seconds` is
    None. Returns a numpy array (frames x channels, of `dtype`) or, with `path`, writes a
    WAV through GStreamer's wavenc (finalised before this returns) and returns the path.

    capture_options are Capture's (mode, rate, channels, dtype, chunk_ms, on_target_exit,
    on_chunk, ...). on_complete(result), when given, is called with the return value.
    Raises a CaptureError when the capture fails; a partial WAV is still finalised."""
    if seconds is not None and seconds <= 0:
        from .errors import InvalidSettings
        raise InvalidSettings(f"seconds must be positive, not {seconds!r}")
    if path is not None:
        path = os.fspath(path)
    # The element counts the chunks (num-buffers) and ends the stream itself: no timer runs.
    # A chunk can be short (the silence that tops the stream up to where a packet's audio
    # begins), so the array is counted in frames, with a few chunks to spare in the count.
    spare = 0.0 if path is not None or seconds is None else max(0.1 * seconds, 0.05)
    capture = Capture(pid=pid, process_name=process_name,
                      duration=None if seconds is None else seconds + spare,
                      _wav_path=path, **capture_options)
    # The array takes every chunk from the start, also when on_chunk sees them too.
    capture._queueing = path is None
    parts = []
    with capture:
        if path is None:
            want = None if seconds is None else int(round(seconds * capture.rate))
            got = 0
            for chunk in capture:
                parts.append(chunk.samples)
                got += len(chunk.samples)
                if want is not None and got >= want:
                    break
        else:
            capture.wait()
    if path is not None:
        result = path
    else:
        result = (np.concatenate(parts) if parts
                  else np.zeros((0, capture.channels), dtype=capture._np_dtype))
        if seconds is not None:  # keep exactly `seconds`
            result = result[:int(round(seconds * capture.rate))]
    if on_complete is not None:
        on_complete(result)
    return result
