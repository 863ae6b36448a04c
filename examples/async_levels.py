#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Print the loudness (RMS, dBFS) of one application's audio, chunk by chunk, with asyncio.

    python3 examples/async_levels.py --pid 1234
    python3 examples/async_levels.py --process-name firefox --chunk-ms 100

Each line: the chunk's stream time (seconds), its RMS level in dBFS (a full-scale sine is
0 dBFS), and "gap" when the element filled silence because the application played nothing.
Ends when the application exits, after --seconds, or on Ctrl+C."""
import argparse
import asyncio
import sys

import numpy as np

import procaudio


async def levels(args):
    # float32 chunks: full scale is 1.0, so 20*log10(rms) is dBFS directly.
    async with procaudio.Capture(pid=args.pid, process_name=args.process_name,
                                 dtype="float32", chunk_ms=args.chunk_ms) as cap:
        # stream() is bounded: if this loop falls behind, the oldest chunks are dropped
        # (counted in cap.stats["chunks-dropped"]) instead of piling up.
        async for chunk in cap.stream(max_chunks=100):
            rms = float(np.sqrt(np.mean(np.square(chunk.samples, dtype=np.float64))))
            # dBFS as AES17 defines it: a full-scale sine (RMS 1/sqrt(2)) is 0 dBFS.
            db = 20 * np.log10(rms * np.sqrt(2)) if rms > 0 else float("-inf")
            print(f"{chunk.pts:9.3f} s  {db:7.1f} dBFS{'  gap' if chunk.gap else ''}",
                  flush=True)
            if args.seconds is not None and chunk.pts + chunk.duration >= args.seconds:
                break
        print(f"dropped chunks: {cap.stats['chunks-dropped']}", flush=True)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=int, help="the process to listen to (and its children)")
    target.add_argument("--process-name", help="the process to listen to, by name")
    parser.add_argument("--chunk-ms", type=int, default=100,
                        help="length of a chunk, ms (default 100)")
    parser.add_argument("--seconds", type=float, help="stop after this much stream time")
    args = parser.parse_args()
    try:
        asyncio.run(levels(args))
    except procaudio.CaptureError as e:
        sys.exit(f"async_levels: {e.message}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
