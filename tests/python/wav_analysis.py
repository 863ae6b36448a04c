# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the tests and scripts/demo.sh measure in captured audio (numpy only, no GStreamer)."""
import pathlib

import numpy as np

RATE = 48000


def level_dbfs(x, freq, rate=RATE):
    """Amplitude of the sine at `freq` in mono signal `x`, in dBFS (Hann-windowed DFT bin)."""
    if x.size == 0:
        return -np.inf
    w = np.hanning(x.size)
    t = np.arange(x.size) / rate
    amp = 2 * np.abs(np.sum(x * w * np.exp(-2j * np.pi * freq * t))) / np.sum(w)
    return 20 * np.log10(max(amp, 1e-12))


def dominant_frequency(x, rate=RATE):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))]


def read_wav(path):
    """Parses a RIFF/WAVE file strictly (sizes must be finalised); returns (fmt, samples)."""
    data = pathlib.Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not a WAV"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8, "RIFF size not finalised"
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate = (int.from_bytes(body[0:2], "little"),
                                   int.from_bytes(body[2:4], "little"),
                                   int.from_bytes(body[4:8], "little"))
            bits = int.from_bytes(body[14:16], "little")
            fmt = {"tag": tag, "channels": channels, "rate": rate, "bits": bits}
        elif cid == b"data":
            assert pos + 8 + size == len(data), "data size not finalised"
            dtype = "<f4" if fmt["tag"] == 3 else "<i2"
            samples = np.frombuffer(body, dtype=dtype).reshape(-1, fmt["channels"])
        pos += 8 + size + (size & 1)
    assert fmt is not None and samples is not None, "no fmt or data chunk"
    return fmt, samples


def audible(x, threshold=1e-3):
    """Where `x` is louder than digital near-silence."""
    return np.abs(x) > threshold


def glitches(x, tones, amplitude=0.5, rate=RATE, dropout=32):
    """Sample indexes where `x` steps further than a sum of sines at `tones` Hz (each at most
    `amplitude`) can between two samples (a repeat, a splice, a dropout's edge), and every
    sample of a run of `dropout` or more near-zero ones (a dropout, whose edges may fall near a
    zero crossing and make no step). A glitch splatters energy over the whole spectrum, so a
    leak must be judged away from glitches."""
    bound = sum(2 * amplitude * np.sin(np.pi * f / rate) for f in tones) * 1.05 + 1e-3
    steps = np.flatnonzero(np.abs(np.diff(x)) > bound) + 1
    quiet = np.concatenate(([0], (np.abs(x) < 1e-4).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(quiet))
    runs = [np.arange(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= dropout]
    return np.unique(np.concatenate([steps] + runs))


def longest_clean_span(x, tones, amplitude=0.5, rate=RATE, margin_s=0.005):
    """The longest part of `x` at least `margin_s` away from any glitch, and how many glitches
    (runs of glitching samples) there are."""
    margin = int(margin_s * rate)
    cuts = glitches(x, tones, amplitude, rate)
    starts = np.concatenate(([0], cuts + margin))
    ends = np.concatenate((cuts - margin, [x.size]))
    best = int(np.argmax(ends - starts))
    count = int(cuts.size > 0) + int(np.count_nonzero(np.diff(cuts) > 1))
    return x[max(starts[best], 0):max(ends[best], 0)], count


def assert_only(x, present, absent, played_db, amplitude=0.5, rate=RATE, min_clean_s=0.5):
    """Each tone in `present` is there at about `played_db`, and none in `absent` leaks in
    (below -80 dBFS). Leaks are judged on the longest glitch-free span, so that a player
    starved on a loaded machine does not pass for a leak; a real leak is there throughout."""
    for f in present:
        assert level_dbfs(x, f, rate) >= played_db - 10, \
            f"{f} Hz missing: {level_dbfs(x, f, rate):.1f} dBFS"
    clean, count = longest_clean_span(x, present, amplitude, rate)
    assert clean.size >= min_clean_s * rate, \
        f"{count} glitches leave no glitch-free {min_clean_s} s (longest {clean.size / rate:.3f} s)"
    for f in absent:
        level = level_dbfs(clean, f, rate)
        assert level <= -80, (f"{f} Hz leaked in: {level:.1f} dBFS over a glitch-free "
                              f"{clean.size / rate:.2f} s ({count} glitches elsewhere)")
