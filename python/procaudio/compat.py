# SPDX-License-Identifier: LGPL-2.1-or-later
"""The old capture library's API (PyWAC and its streaming redesign), kept for migration as thin
wrappers over procaudio.Capture. New code should use Capture, record and list_processes.

What differs from the old library even here: errors raise CaptureError (from start, and
from the calls that read audio after a failure) instead of being printed; silence is kept
(flagged) rather than thrown away; dropped chunks are counted; timestamps are the device's
(running time), not the wall clock at arrival."""
import asyncio
import threading

import numpy as np

from .capture import Capture, _ChunkQueue
from .processes import list_processes
from .record import record

#: The old library's format: 48 kHz stereo float32.
OLD_FORMAT = {"rate": 48000, "channels": 2, "dtype": "float32"}


def _options(extra):
    return {**OLD_FORMAT, **extra}


def list_audio_processes():
    """The applications playing audio, as the old list of dicts: pid, name (the process
    name), application_name, playing. Use procaudio.list_processes()."""
    return [{"pid": p.pid, "name": p.process_name, "application_name": p.application_name,
             "playing": p.playing} for p in list_processes()]


class _PidCapture:
    """What the old pid-based classes share: a Capture of `pid` (with its descendants, or
    everything but them) whose chunks go to `_on_chunk`."""

    def __init__(self, **capture_options):
        self._options = _options(capture_options)
        self._cap = None

    def _on_chunk(self, chunk):
        raise NotImplementedError

    def _start_options(self):
        return {}

    def _restart(self):
        pass

    def start(self, pid, include_tree=True):
        """Starts capturing `pid` (and its descendants with include_tree, else everything
        but them); True. Raises CaptureError when it cannot start."""
        self.stop()
        self._restart()
        mode = "include-tree" if include_tree else "exclude-tree"
        self._cap = Capture(pid=pid, mode=mode, on_chunk=self._on_chunk,
                            **self._start_options(), **self._options)
        self._cap.start()
        return True

    def stop(self):
        if self._cap is not None:
            cap, self._cap = self._cap, None
            cap.stop()

    @property
    def is_capturing(self):
        return self._cap is not None and not self._cap.ended

    def _raise_unseen_failure(self):
        if self._cap is not None:
            self._cap.wait(0)


class ProcessCapture(_PidCapture):
    """Old: `start(pid, include_tree)`, `get_buffer()` (a flat float32 array, interleaved
    48 kHz stereo, of everything since the last call), `stop()`, `is_capturing`. Use
    `Capture(pid=..., on_chunk=...)` or iterate a Capture."""

    def __init__(self, **capture_options):
        super().__init__(**capture_options)
        self._parts = []
        self._lock = threading.Lock()

    def _restart(self):
        self._parts = []

    def _on_chunk(self, chunk):
        with self._lock:
            self._parts.append(chunk.samples.reshape(-1))

    def get_buffer(self):
        """Everything captured since the last call, flat (interleaved) float32. Raises the
        capture's error once, after the audio that came before it."""
        with self._lock:
            parts, self._parts = self._parts, []
        if not parts:
            self._raise_unseen_failure()
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class QueueBasedProcessCapture(_PidCapture):
    """Old: a queue of chunks (`data` (N, 2) float32, `silent`, `timestamp` in µs) popped
    without blocking, `get_metrics()`, `set_chunk_size()`. Use `Capture.stream()` or
    iterate a Capture (chunks have pts, gap, discont)."""

    def __init__(self, queue_size=1000, **capture_options):
        super().__init__(**capture_options)
        self._queue = _ChunkQueue(queue_size)  # drops the oldest when full, and counts it
        self._lock = threading.Lock()
        self._metrics = {"silent_frames": 0, "errors": 0, "total_chunks": 0}
        self._chunk_ms = 10

    def set_chunk_size(self, frames):
        """The chunk length in frames at 48 kHz; takes effect at the next start()."""
        self._chunk_ms = frames * 1000 / self._options["rate"]

    def _start_options(self):
        return {"chunk_ms": self._chunk_ms}

    @staticmethod
    def _silent(chunk):
        return chunk.gap or not chunk.samples.any()

    def _on_chunk(self, chunk):
        with self._lock:
            self._metrics["total_chunks"] += 1
            if self._silent(chunk):
                self._metrics["silent_frames"] += chunk.samples.shape[0]
        self._queue.put(chunk)

    def _item(self, chunk):
        return {"data": chunk.samples, "silent": self._silent(chunk),
                "timestamp": int(round(chunk.pts * 1e6))}

    def pop_chunk(self):
        """The oldest chunk, or None when none is queued (never blocks)."""
        chunk = self._queue.get_nowait()
        if chunk is not None:
            return self._item(chunk)
        try:
            self._raise_unseen_failure()
        except Exception:
            with self._lock:
                self._metrics["errors"] += 1
            raise
        return None

    def pop_chunks(self):
        """Every queued chunk, oldest first (possibly none)."""
        return [self._item(chunk) for chunk in self._queue.drain()]

    def get_metrics(self):
        with self._lock:
            metrics = dict(self._metrics, dropped_chunks=self._queue.dropped,
                           queued=len(self._queue))
        if self._cap is not None:
            metrics["element"] = self._cap.stats
        return metrics


class StreamingAudioCapture:
    """The redesign's callback API: `on_audio(samples)` per chunk of `chunk_duration`
    seconds, `start()` / `stop()`. Use `Capture(pid=..., on_chunk=...)`."""

    def __init__(self, process_id, chunk_duration=0.01, on_audio=None, **capture_options):
        self._on_audio = on_audio
        self._cap = Capture(pid=process_id, chunk_ms=chunk_duration * 1000,
                            on_chunk=self._deliver, **_options(capture_options))

    def _deliver(self, chunk):
        if self._on_audio is not None:
            self._on_audio(chunk.samples)

    def start(self):
        self._cap.start()

    def stop(self):
        self._cap.stop()

    @property
    def stats(self):
        return self._cap.stats


class AsyncStreamingCapture:
    """The redesign's asyncio API: `await start()`, `async for audio in stream()`,
    `await stop()`. Use `async with Capture(...) as cap: async for c in cap.stream()`."""

    def __init__(self, process_id, buffer_size=100, **capture_options):
        self._buffer_size = buffer_size
        self._cap = Capture(pid=process_id, **_options(capture_options))

    async def start(self):
        await self._cap.__aenter__()

    async def stop(self):
        await asyncio.get_running_loop().run_in_executor(None, self._cap.stop)

    async def stream(self):
        async for chunk in self._cap.stream(max_chunks=self._buffer_size):
            yield chunk.samples

    @property
    def stats(self):
        return self._cap.stats


def record_audio_streaming(duration, on_chunk=None, on_complete=None, **capture_options):
    """Old system-wide recording for `duration` seconds: every process but this one
    (mode exclude-tree with no target). on_chunk(samples) per chunk, on_complete(array)."""
    callback = (lambda c: on_chunk(c.samples)) if on_chunk is not None else None
    return record(seconds=duration, on_complete=on_complete, on_chunk=callback,
                  **_options({"mode": "exclude-tree", **capture_options}))


def record_process(target, duration, **capture_options):
    """Old: record a process (a name or a pid) for `duration` seconds; 48 kHz stereo
    float32 array. Use procaudio.record(pid=... or process_name=..., seconds=...)."""
    key = "pid" if isinstance(target, int) else "process_name"
    return record(seconds=duration, **{key: target}, **_options(capture_options))
