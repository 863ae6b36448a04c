#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Live captions of one application's audio: VAD + speech recognition (pocketsphinx).

    python3 examples/live_captions.py --process-name firefox
    python3 examples/live_captions.py --pid 1234 --words "yes no stop go"

Prints one line per utterance, stamped with the wall-clock time at which its first word
was captured (from the buffer timestamps, not from when recognition finished):

    [12:03:04.512] hello world

Needs Debian's gstreamer1.0-pocketsphinx and pocketsphinx-en-us (US English). By default
pocketsphinx's large-vocabulary language model is used; with --words (or --grammar) it only
recognises those words, which is far more robust for commands, digits and the like.
Ends when the application exits (with --pid; with --process-name it waits for the next
process of that name unless --on-target-exit=eos), or on Ctrl+C.

The pipeline is
    pipewireprocsrc ! audioconvert ! audioresample ! S16LE 16 kHz mono ! pocketsphinx ! fakesink
A pad probe in front of pocketsphinx is the VAD that finds where each utterance starts; it
runs on the same streaming thread as pocketsphinx, which posts its results, so the two
never race."""
import argparse
import datetime
import os
import signal
import sys
import tempfile
import time

import numpy as np

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

import procaudio  # noqa: E402  (picks the element for this platform)

RATE = 16000


def loop_grammar(words):
    """A pocketsphinx FSG grammar: any sequence of `words`, equally likely."""
    f = tempfile.NamedTemporaryFile("w", suffix=".fsg", prefix="captions-", delete=False)
    f.write("FSG_BEGIN words\nNUM_STATES 2\nSTART_STATE 0\nFINAL_STATE 1\n")
    p = 1.0 / len(words)
    for w in words:
        f.write(f"TRANSITION 0 1 {p:.6f} {w}\nTRANSITION 1 1 {p:.6f} {w}\n")
    f.write("FSG_END\n")
    f.close()
    return f.name


class Captions:
    def __init__(self, args):
        target = (f"pid={args.pid}" if args.pid is not None
                  else f'process-name="{args.process_name}"')
        self.pipeline = Gst.parse_launch(
            f"{procaudio.ELEMENT} name=src {target} on-target-exit={args.on_target_exit} "
            f"! audioconvert ! audioresample "
            f"! audio/x-raw,format=S16LE,rate={RATE},channels=1 "
            f"! pocketsphinx name=asr ! fakesink sync=false")
        asr = self.pipeline.get_by_name("asr")
        self.made_grammar = None
        if args.words:
            self.made_grammar = loop_grammar(args.words.lower().split())
        if args.grammar or args.words:
            asr.set_property("fsg", args.grammar or self.made_grammar)
        # The VAD: a probe on pocketsphinx's input, on its streaming thread.
        self.threshold = 10 ** (args.vad_db / 20) * 32768
        self.onset = self.last_loud = None  # running time (ns) of the utterance's start
        self.heard = False  # pocketsphinx has a hypothesis for the current utterance
        asr.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self.on_buffer)
        bus = self.pipeline.get_bus()
        # Results are handled synchronously on the thread that posts them (sync-message).
        bus.enable_sync_message_emission()
        bus.connect("sync-message::element", self.on_result)
        bus.add_signal_watch()
        bus.connect("message::eos", lambda *_: self.loop.quit())
        bus.connect("message::error", self.on_error)
        self.loop = GLib.MainLoop()
        self.failed = False

    def on_buffer(self, pad, info):
        buf = info.get_buffer()
        x = np.frombuffer(buf.extract_dup(0, buf.get_size()), dtype="<i2")
        if x.size and buf.pts != Gst.CLOCK_TIME_NONE:
            loud = np.sqrt(np.mean(x.astype(np.float64) ** 2)) > self.threshold
            if loud:
                if self.onset is None:
                    self.onset = buf.pts
                self.last_loud = buf.pts
            elif (self.onset is not None and not self.heard
                  and buf.pts - self.last_loud > 500 * Gst.MSECOND):
                self.onset = None  # a noise pocketsphinx did not take for speech
        return Gst.PadProbeReturn.OK

    def on_result(self, bus, msg):
        s = msg.get_structure()
        if s is None or s.get_name() != "pocketsphinx":
            return
        text = s.get_value("hypothesis") or ""
        if not s.get_value("final"):
            if text and not self.heard:
                self.heard = True
                if self.onset is None:  # the VAD missed the start: the partial's time
                    ok, ts = s.get_uint64("timestamp")
                    self.onset = ts if ok and ts != Gst.CLOCK_TIME_NONE else None
            return
        if text:
            print(f"[{self.wall_clock(self.onset)}] {text}", flush=True)
        self.onset, self.heard = None, False

    def wall_clock(self, running_time):
        """Running time -> wall clock: clock time = base time + running time, and the
        pipeline clock's distance from now gives the wall-clock instant."""
        clock = self.pipeline.get_clock()
        if running_time is None or clock is None:
            when = time.time()
        else:
            ago = clock.get_time() - (self.pipeline.get_base_time() + running_time)
            when = time.time() - ago / Gst.SECOND
        return datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S.%f")[:-3]

    def on_error(self, bus, msg):
        err, debug = msg.parse_error()
        print(f"live_captions: {err.message}", file=sys.stderr)
        self.failed = True
        self.loop.quit()

    def run(self):
        # Ctrl+C / SIGTERM: end the stream (EOS) so pocketsphinx gives its last words.
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop)
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.failed = True
            msg = self.pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
            if msg is not None:
                self.on_error(None, msg)
        else:
            print("listening", file=sys.stderr, flush=True)
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        if self.made_grammar:
            os.unlink(self.made_grammar)
        return 1 if self.failed else 0

    def stop(self):
        self.pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE  # a second Ctrl+C sends EOS again


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: --words 'one two three four five six seven eight nine ten'")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=int, help="the process to caption (and its children)")
    target.add_argument("--process-name", help="the process to caption, by name")
    parser.add_argument("--on-target-exit", choices=("eos", "wait"),
                        help="when the target exits: end (eos), or wait for the next process "
                             "of that name (default: wait with --process-name, else eos)")
    parser.add_argument("--words", help="recognise only these words (space-separated, in "
                                        "pocketsphinx's US English dictionary)")
    parser.add_argument("--grammar", help="a pocketsphinx FSG grammar file to recognise with")
    parser.add_argument("--vad-db", type=float, default=-45.0,
                        help="VAD threshold: a 10 ms chunk louder than this (dBFS RMS) is "
                             "speech (default -45)")
    args = parser.parse_args()
    if args.on_target_exit is None:
        args.on_target_exit = "wait" if args.process_name else "eos"
    Gst.init(None)
    if Gst.ElementFactory.find("pocketsphinx") is None:
        sys.exit("live_captions: the pocketsphinx element is missing: "
                 "apt install gstreamer1.0-pocketsphinx pocketsphinx-en-us")
    sys.exit(Captions(args).run())


if __name__ == "__main__":
    main()
