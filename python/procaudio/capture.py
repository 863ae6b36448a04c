# SPDX-License-Identifier: LGPL-2.1-or-later
"""Capture: the audio of one application as numpy chunks, from the platform's element.

The pipeline is `src ! audioconvert ! audioresample ! capsfilter ! appsink`. Chunks arrive
through appsink's `new-sample` signal on GStreamer's streaming thread, bus messages through
a bus sync handler on the thread that posts them: nothing polls, and no GLib main loop is
needed (an application may run one, or not)."""
import asyncio
import collections
import threading
from typing import NamedTuple

import numpy as np

from . import errors
from ._gst import ELEMENT, Gst, missing_element_message, structure_to_dict

_FORMATS = {"int16": "S16LE", "float32": "F32LE", "int32": "S32LE", "float64": "F64LE"}
_MODES = ("include-tree", "exclude-tree")
_ON_EXIT = ("eos", "wait")
# How long stop() waits for a file being written to be finalised after it sent EOS.
_FINALISE_TIMEOUT_S = 5.0


class Chunk(NamedTuple):
    """One chunk of captured audio.

    samples:  numpy array, frames x channels, of the capture's dtype (writable, owned).
    pts:      running time of its first frame, in seconds (from device time, not arrival).
    duration: its length in seconds; pts + duration is the next chunk's pts in a stretch.
    offset:   sample offset of its first frame in the stream.
    discont:  continuity was lost just before it (start, overflow, a new process, or chunks
              the package dropped because the consumer was slower): reset VAD/ASR state.
    gap:      silence the element made (idle target, waiting for one), not audio.
    """
    samples: np.ndarray
    pts: float
    duration: float
    offset: int
    discont: bool
    gap: bool


class _ChunkQueue:
    """A bounded queue between the streaming thread and one consumer (blocking or asyncio):
    when full, the oldest chunk is dropped and counted, and the next chunk handed out is
    marked discont. An asyncio consumer is woken with call_soon_threadsafe, once per wait."""

    def __init__(self, capacity):
        self.capacity = max(1, int(capacity))
        self.dropped = 0
        self.delivered = 0
        self._items = collections.deque()
        self._cond = threading.Condition()
        self._hole = False
        self._closed = False
        self._loop = None
        self._waiter = None

    def put(self, chunk):
        with self._cond:
            if self._closed:
                return
            self._items.append(chunk)
            self._trim_locked()
            self._cond.notify()
            self._wake_async_locked()

    def close(self):
        """No more chunks: consumers get what is queued, then the end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._wake_async_locked()

    def resize(self, capacity):
        with self._cond:
            self.capacity = max(1, int(capacity))
            self._trim_locked()

    def _trim_locked(self):
        while len(self._items) > self.capacity:
            self._items.popleft()
            self.dropped += 1
            self._hole = True

    def _pop_locked(self):
        chunk = self._items.popleft()
        if self._hole:  # the first chunk after the dropped ones
            chunk = chunk._replace(discont=True)
            self._hole = False
        self.delivered += 1
        return chunk

    def get_nowait(self):
        """The next chunk, or None when none is queued (never blocks)."""
        with self._cond:
            return self._pop_locked() if self._items else None

    def drain(self):
        """Every queued chunk, oldest first (possibly none)."""
        with self._cond:
            return [self._pop_locked() for _ in range(len(self._items))]

    def __len__(self):
        with self._cond:
            return len(self._items)

    def get(self):
        """The next chunk, blocking until there is one; None once closed and drained."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            return self._pop_locked() if self._items else None

    def _wake_async_locked(self):
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            try:
                self._loop.call_soon_threadsafe(_resolve, waiter)
            except RuntimeError:  # the loop was closed: nobody waits any more
                pass

    async def aget(self):
        """The next chunk, awaiting one; None once closed and drained."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self._items:
                    return self._pop_locked()
                if self._closed:
                    return None
                self._loop = loop
                self._waiter = loop.create_future()
                waiter = self._waiter
            await waiter


def _resolve(future):
    if not future.done():
        future.set_result(None)


def _element_factory_missing():
    # Where the plugin was looked for (the plugin path, the bundled directory) and why the
    # bundled copy, if any, did not load: the import itself never fails for this.
    return errors.Unavailable(missing_element_message())


class Capture:
    """The audio of one application (a pid or a process name), as chunks.

    Use it as a context manager: `with Capture(pid=1234) as cap:` starts the capture and
    leaving the block stops it (also on an exception; nothing keeps running). Then:

    - `for chunk in cap:` yields `Chunk`s until the stream ends (the target exited with
      on_target_exit="eos"), and raises a `CaptureError` if the capture fails;
    - `on_chunk(chunk)`, when given, is called for every chunk on GStreamer's streaming
      thread: keep it short. An exception it raises ends the capture and is raised again
      from the iterator, `wait()` or the end of the `with` block;
    - `async with Capture(...) as cap: async for chunk in cap.stream(max_chunks=100):` is
      the asyncio form (see `stream`).

    pid / process_name: the target (one of them). mode: "include-tree" (the target and its
    descendants) or "exclude-tree" (everything else). rate, channels, dtype ("int16",
    "float32", "int32", "float64"): the chunks' format. chunk_ms: the length of a chunk (the
    element's latency-time). on_target_exit: "eos" ends the stream when the target exits;
    "wait" (needs process_name) keeps it live with gap chunks until the next process of that
    name plays. buffer_ms: the element's buffer-time (audio it holds for a slow consumer).
    max_queued: chunks held for a slow blocking iterator before the oldest are dropped.
    duration: stop after this many seconds of stream (rounded up to whole chunks).
    """

    def __init__(self, pid=None, process_name=None, mode="include-tree", rate=16000,
                 channels=1, dtype="int16", chunk_ms=10, on_target_exit="eos", on_chunk=None,
                 *, buffer_ms=None, max_queued=1000, duration=None, _wav_path=None):
        if dtype not in _FORMATS:
            raise errors.InvalidSettings(f"dtype {dtype!r} is not one of {sorted(_FORMATS)}")
        if mode not in _MODES:
            raise errors.InvalidSettings(f"mode {mode!r} is not one of {list(_MODES)}")
        if on_target_exit not in _ON_EXIT:
            raise errors.InvalidSettings(
                f"on_target_exit {on_target_exit!r} is not one of {list(_ON_EXIT)}")
        for name, value in (("rate", rate), ("channels", channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise errors.InvalidSettings(f"{name} must be a positive integer, not {value!r}")
        if not chunk_ms or chunk_ms <= 0:
            raise errors.InvalidSettings(f"chunk_ms must be positive, not {chunk_ms!r}")
        if on_chunk is not None and not callable(on_chunk):
            raise errors.InvalidSettings("on_chunk must be callable")
        self.mode, self.rate, self.channels, self.dtype = mode, rate, channels, dtype
        self.process_name, self.chunk_ms, self.on_target_exit = process_name, chunk_ms, on_target_exit
        self.on_chunk = on_chunk
        self._target_pid = pid
        self._buffer_ms, self._duration, self._wav_path = buffer_ms, duration, _wav_path
        self._np_dtype = np.dtype(dtype).newbyteorder("<")
        self._lock = threading.Lock()
        self._queue = _ChunkQueue(max_queued)
        # Chunks are queued for a consumer from the start when nobody else takes them, so an
        # iterator started a little later loses nothing; with on_chunk, only once asked.
        self._queueing = on_chunk is None and _wav_path is None
        self._pipeline = self._src = None
        self._received = 0
        self._pid = None
        self._ended = self._started = False
        self._error = None
        self._error_raised = False
        self._done = threading.Event()
        self._stats = {}
        self._streaming_thread = None
        self._end_requested = False

    # -- the pipeline ---------------------------------------------------------------------

    def _make(self, factory, name=None):
        element = Gst.ElementFactory.make(factory, name)
        if element is None:
            if factory == ELEMENT:
                raise _element_factory_missing()
            raise errors.Unavailable(f"The GStreamer element {factory} is not installed.")
        return element

    def _build(self):
        pipeline = Gst.Pipeline.new("procaudio-capture")
        src = self._make(ELEMENT, "src")
        try:
            if self._target_pid is not None:
                src.set_property("pid", int(self._target_pid))
            if self.process_name is not None:
                src.set_property("process-name", str(self.process_name))
            src.set_property("latency-time", int(round(self.chunk_ms * 1000)))
            if self._buffer_ms is not None:
                src.set_property("buffer-time", int(round(self._buffer_ms * 1000)))
            if self._duration is not None:
                src.set_property("num-buffers", max(1, -(-int(round(self._duration * 1000))
                                                        // int(self.chunk_ms))))
        except (TypeError, OverflowError, ValueError) as e:
            raise errors.InvalidSettings(f"bad setting for {ELEMENT}: {e}") from None
        Gst.util_set_object_arg(src, "mode", self.mode)
        Gst.util_set_object_arg(src, "on-target-exit", self.on_target_exit)
        caps = Gst.Caps.from_string(
            f"audio/x-raw,format={_FORMATS[self.dtype]},layout=interleaved,"
            f"rate={self.rate},channels={self.channels}")
        capsfilter = self._make("capsfilter")
        capsfilter.set_property("caps", caps)
        chain = [src, self._make("audioconvert"), self._make("audioresample"), capsfilter]
        sink = self._make("appsink", "sink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", False)
        # new-sample pulls each chunk at once, so the appsink never holds more than one; it
        # never drops either: a stalled streaming thread fills the element's own ring, whose
        # overflow is counted in stats and flagged DISCONT.
        sink.set_property("max-buffers", 4)
        sink.set_property("drop", False)
        self._sample_handler = sink.connect("new-sample", self._on_sample)
        for e in chain:
            pipeline.add(e)
        pipeline.add(sink)
        for a, b in zip(chain, chain[1:]):
            a.link(b)
        if self._wav_path is None:
            capsfilter.link(sink)
        else:  # record(path=...): a tee feeds the WAV writer and the appsink
            tee, q1, q2 = self._make("tee"), self._make("queue"), self._make("queue")
            wavenc, filesink = self._make("wavenc"), self._make("filesink")
            filesink.set_property("location", str(self._wav_path))
            for e in (tee, q1, q2, wavenc, filesink):
                pipeline.add(e)
            capsfilter.link(tee)
            tee.link(q1)
            q1.link(wavenc)
            wavenc.link(filesink)
            tee.link(q2)
            q2.link(sink)
        self._sink = sink
        return pipeline, src

    # -- GStreamer's threads ----------------------------------------------------------------

    def _on_sample(self, appsink):
        sample = appsink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.FLUSHING
        buf = sample.get_buffer()
        data = bytearray(buf.extract_dup(0, buf.get_size()))  # owned and writable
        samples = np.frombuffer(data, dtype=self._np_dtype).reshape(-1, self.channels)
        pts = buf.pts / Gst.SECOND if buf.pts != Gst.CLOCK_TIME_NONE else float("nan")
        duration = (buf.duration / Gst.SECOND if buf.duration != Gst.CLOCK_TIME_NONE
                    else samples.shape[0] / self.rate)
        offset = buf.offset if buf.offset != Gst.BUFFER_OFFSET_NONE else -1
        chunk = Chunk(samples, pts, duration, offset,
                      buf.has_flags(Gst.BufferFlags.DISCONT), buf.has_flags(Gst.BufferFlags.GAP))
        with self._lock:
            self._received += 1
            queueing = self._queueing
            self._streaming_thread = threading.get_ident()
        if self.on_chunk is not None:
            try:
                self.on_chunk(chunk)
            except BaseException as exc:  # noqa: BLE001 - handed to the application below
                self._fail(exc)
                return Gst.FlowReturn.EOS  # ends the stream; the exception is raised later
        if queueing:
            self._queue.put(chunk)
        # stop() called from on_chunk: end the stream here (the owner's stop() tears down).
        return Gst.FlowReturn.EOS if self._end_requested else Gst.FlowReturn.OK

    def _on_message(self, bus, msg):
        t = msg.type
        if t == Gst.MessageType.ERROR:
            self._fail(errors.from_message(msg))
        elif t == Gst.MessageType.EOS:
            with self._lock:
                self._ended = True
            self._queue.close()
            self._done.set()
        elif t == Gst.MessageType.ELEMENT and msg.has_name("procaudio-target"):
            s = msg.get_structure()
            state = s.get_value("state")
            with self._lock:
                self._pid = s.get_value("pid") if state == "capturing" else None
        return Gst.BusSyncReply.DROP  # nobody pops this bus: everything is handled here

    def _fail(self, error):
        with self._lock:
            if self._error is None:  # the first failure is the cause; later ones follow it
                self._error = error
        self._queue.close()
        self._done.set()

    # -- the application's side -----------------------------------------------------------------

    def start(self):
        """Starts capturing; raises a CaptureError (NotFound, InvalidSettings, …) when the
        element refuses to start. Called by `with`."""
        if self._started:
            raise RuntimeError("a Capture is started once; make a new one")
        self._started = True
        self._pipeline, self._src = self._build()
        self._pipeline.get_bus().set_sync_handler(self._on_message)
        # Errors at start are posted (to the sync handler, on this thread) before
        # set_state returns FAILURE.
        if self._pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            error = self._error or errors.CaptureError("The capture pipeline failed to start.")
            self._teardown()
            self._error_raised = True
            raise error
        return self

    def stop(self):
        """Stops capturing and releases everything (threads, the audio server's objects).
        A WAV being written is finalised first. Safe to call twice. Called by `with`.
        Called from on_chunk (GStreamer's thread, which cannot stop itself), it ends the
        stream after that chunk instead; the `with` block then releases everything."""
        if self._pipeline is None:
            return
        if threading.get_ident() == self._streaming_thread:
            self._end_requested = True
            return
        if self._wav_path is not None and not self._done.is_set():
            self._pipeline.send_event(Gst.Event.new_eos())
            self._done.wait(_FINALISE_TIMEOUT_S)
        self._teardown()

    def _teardown(self):
        pipeline, self._pipeline = self._pipeline, None
        pipeline.set_state(Gst.State.NULL)
        self._stats = structure_to_dict(self._src.get_property("stats"))
        self._queue.close()
        # Break the cycles through the signal and the bus, so the pipeline is freed now.
        self._sink.disconnect(self._sample_handler)
        pipeline.get_bus().set_sync_handler(None)
        self._sink = None

    def _raise_pending(self):
        with self._lock:
            error = self._error
            if error is None or self._error_raised:
                return
            self._error_raised = True
        raise error

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is None:
            self._raise_pending()  # a failure nobody saw yet is not swallowed
        return False

    async def __aenter__(self):
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await asyncio.get_running_loop().run_in_executor(None, self.stop)
        if exc_type is None:
            self._raise_pending()
        return False

    def _consume(self, capacity=None):
        with self._lock:
            self._queueing = True
        if capacity is not None:
            self._queue.resize(capacity)

    def __iter__(self):
        """Yields chunks until the stream ends; raises the capture's error, if any, after
        the chunks that came before it."""
        if not self._started:
            raise RuntimeError("start the Capture first (use `with Capture(...) as cap:`)")
        self._consume()
        while True:
            chunk = self._queue.get()
            if chunk is None:
                self._raise_pending()
                return
            yield chunk

    async def stream(self, max_chunks=100):
        """Yields chunks to asyncio code (`async for chunk in cap.stream()`), until the
        stream ends; raises the capture's error, if any. At most `max_chunks` wait for a
        slow consumer: beyond that the oldest are dropped, counted in
        `stats["chunks-dropped"]`, and the next chunk delivered has discont=True."""
        if not self._started:
            raise RuntimeError("start the Capture first (use `async with Capture(...)`)")
        self._consume(max_chunks)
        while True:
            chunk = await self._queue.aget()
            if chunk is None:
                self._raise_pending()
                return
            yield chunk

    def wait(self, timeout=None):
        """Blocks until the stream ends (EOS or an error); True if it did within `timeout`
        seconds. Raises the capture's error. For on_chunk users who do not iterate."""
        ended = self._done.wait(timeout)
        self._raise_pending()
        return ended

    @property
    def pid(self):
        """The process captured now, from the element's procaudio-target messages (None
        while waiting for one, or after it exited); before the first message, the pid
        asked for."""
        with self._lock:
            if self._pid is not None:
                return self._pid
            if self._ended or self._error is not None:
                return None
        return self._target_pid

    @property
    def ended(self):
        """True once the stream ended (EOS: the target exited, or `duration` passed)."""
        return self._done.is_set()

    @property
    def stats(self):
        """The element's statistics (packets, frames-captured, frames-silent,
        frames-gap-filled, frames-dropped, frames-pushed, discontinuities, resyncs,
        reattachments, chunks-pushed, latency-last, latency-max, arrival-last,
        packets-late, lateness-max, buffers-late) plus the
        package's:
        chunks-received (from the element, after conversion), chunks-delivered (to the
        iterator or stream), chunks-dropped (by the package for a slow consumer) and
        chunks-queued (waiting for the consumer)."""
        stats = dict(self._stats)
        pipeline = self._pipeline
        if pipeline is not None:
            stats = structure_to_dict(self._src.get_property("stats"))
        with self._queue._cond:
            stats["chunks-dropped"] = self._queue.dropped
            stats["chunks-delivered"] = self._queue.delivered
            stats["chunks-queued"] = len(self._queue._items)
        with self._lock:
            stats["chunks-received"] = self._received
        return stats
