#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""capture_by_name.py NAME SECONDS FREQ OTHER: captures process NAME with pipewireprocsrc
(GST_PLUGIN_PATH points at the Linux build) for SECONDS and prints one line
"level=<dBFS at FREQ> other=<dBFS at OTHER> peak=<dBFS> audible=<fraction> frames=<N>
dominant=<Hz>", measured on the left
channel after the first 0.3 s (the links settling). Exit 1 with the error on stderr if the
pipeline failed. For tests/wasapi/linux_side.py: a Windows program under wine is a PulseAudio
client whose Linux process is named after its .exe."""
import pathlib
import sys

import numpy as np

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401 (AppSink methods need GstApp)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from wav_analysis import RATE, dominant_frequency, level_dbfs  # noqa: E402


def main():
    name, seconds, freq, other = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"pipewireprocsrc name=src process-name={name} ! "
        f"audio/x-raw,format=F32LE,rate={RATE},channels=2 ! "
        "appsink name=sink sync=false emit-signals=false max-buffers=0")
    sink = pipeline.get_by_name("sink")
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = pipeline.get_bus().timed_pop_filtered(2 * Gst.SECOND, Gst.MessageType.ERROR)
        err = msg.parse_error() if msg else ("state change failed", "")
        print(f"pipewireprocsrc process-name={name}: {err}", file=sys.stderr)
        return 1
    chunks = []
    bus = pipeline.get_bus()
    deadline = seconds * Gst.SECOND
    collected = 0
    while collected < seconds * RATE:
        sample = sink.try_pull_sample(int(deadline))
        if sample is None:
            break
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            chunks.append(np.frombuffer(bytes(info.data), dtype=np.float32))
            collected += len(chunks[-1]) // 2
            buf.unmap(info)
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            print(f"pipewireprocsrc process-name={name}: {msg.parse_error()}", file=sys.stderr)
            pipeline.set_state(Gst.State.NULL)
            return 1
    pipeline.set_state(Gst.State.NULL)
    x = np.concatenate(chunks).reshape(-1, 2)[:, 0] if chunks else np.zeros(0, np.float32)
    x = x[int(0.3 * RATE):]
    if x.size == 0:
        print(f"pipewireprocsrc process-name={name}: no audio in {seconds} s", file=sys.stderr)
        return 1
    # The peak is the played amplitude even if the player dropped out for a moment (a busy
    # machine under wine): the windowed level then reads low, and says by how much.
    peak = 20 * np.log10(max(float(np.max(np.abs(x))), 1e-12))
    audible = float(np.mean(np.abs(x) > 1e-4))
    print(f"level={level_dbfs(x, freq):.2f} other={level_dbfs(x, other):.2f} "
          f"peak={peak:.2f} audible={audible:.3f} frames={x.size} "
          f"dominant={dominant_frequency(x):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
