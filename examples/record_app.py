#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Record one application's audio to a WAV file until it exits.

    python3 examples/record_app.py --pid 1234 out.wav
    python3 examples/record_app.py --process-name firefox --seconds 10 out.wav

The file is written by GStreamer (wavenc) and finalised before the script exits, also when
it is stopped with Ctrl+C."""
import argparse
import sys

import procaudio


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=int, help="the process to record (and its children)")
    target.add_argument("--process-name", help="the process to record, by name")
    parser.add_argument("--seconds", type=float,
                        help="stop after this long (default: when the application exits)")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate (default 48000)")
    parser.add_argument("--channels", type=int, default=2, help="channels (default 2)")
    parser.add_argument("path", help="the WAV file to write")
    args = parser.parse_args()
    try:
        # Blocks until the target exits (or --seconds pass), then returns the path.
        path = procaudio.record(pid=args.pid, process_name=args.process_name,
                                seconds=args.seconds, path=args.path,
                                rate=args.rate, channels=args.channels)
    except procaudio.CaptureError as e:  # NotFound, AccessDenied, Unavailable, ...
        sys.exit(f"record_app: {e.message}")
    except KeyboardInterrupt:  # record() has finalised the WAV on its way out
        path = args.path
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
