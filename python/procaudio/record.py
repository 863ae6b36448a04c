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
    # The element counts the chunks (num-buffers) and ends the stream itself: the length is
    # exact to the chunk and no timer runs.
    capture = Capture(pid=pid, process_name=process_name, duration=seconds,
                      _wav_path=path, **capture_options)
    # The array takes every chunk from the start, also when on_chunk sees them too.
    capture._queueing = path is None
    parts = []
    with capture:
        if path is None:
            parts = [chunk.samples for chunk in capture]
        else:
            capture.wait()
    if path is not None:
        result = path
    else:
        result = (np.concatenate(parts) if parts
                  else np.zeros((0, capture.channels), dtype=capture._np_dtype))
        if seconds is not None:  # whole chunks were asked for; keep exactly `seconds`
            result = result[:int(round(seconds * capture.rate))]
    if on_complete is not None:
        on_complete(result)
    return result
