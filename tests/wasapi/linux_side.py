#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Linux side of the Windows tests that run under wine against a real audio stack.

    linux_side.py [--linux-build DIR] -- PROGRAM [ARGS...]

Starts a private headless PipeWire session with a PulseAudio server (scripts/pipewire-session.sh),
runs PROGRAM (a Windows test executable: under `wine` unless on Windows) with that session's
environment, so that wine's winepulse talks to it, and answers the requests PROGRAM prints on
its stdout, one per line, on its stdin:

    @@linux play FREQ SECONDS DBFS     paplay a tone (48 kHz stereo) into the null sink
                                       -> @@ok pid=N
    @@linux stop PID                   stop a player this driver started -> @@ok
    @@linux kill-pulse                 SIGKILL the session's pipewire-pulse, wait until gone
    @@linux restart-pulse              start it again on the same socket -> @@ok
    @@linux sink-rate                  the null sink's rate, as pactl reports it -> @@ok rate=N
    @@linux capture NAME SECONDS FREQ OTHER
                                       capture process NAME with pipewireprocsrc (the Linux
                                       build's plugin) for SECONDS -> @@ok level=dBFS at FREQ
                                       other=dBFS at OTHER peak=dBFS audible=fraction frames=N
                                       dominant=Hz

Errors are answered "@@error <text>". Every other line PROGRAM prints is passed through. The
exit status is PROGRAM's. Everything this driver starts it stops, by pid; the session goes
with it."""
import argparse
import math
import os
import pathlib
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import wave

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from pw_session import Session, start_session, stop_session  # noqa: E402

RATE = 48000


def write_tone(path, freq, seconds, dbfs):
    amplitude = 10 ** (dbfs / 20) * 32767
    frames = int(seconds * RATE)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        data = bytearray()
        for i in range(frames):
            v = int(round(amplitude * math.sin(2 * math.pi * freq * i / RATE)))
            data += struct.pack("<hh", v, v)
        w.writeframes(bytes(data))


class Driver:
    def __init__(self, session, linux_build, tmp):
        self.session = session
        self.linux_build = linux_build
        self.tmp = tmp
        self.players = {}

    def play(self, freq, seconds, dbfs):
        path = self.tmp / f"tone-{freq}-{seconds}-{dbfs}.wav"
        if not path.exists():
            write_tone(path, float(freq), float(seconds), float(dbfs))
        proc = subprocess.Popen(["paplay", "--client-name=procaudio-linux-tone", str(path)],
                                stdin=subprocess.DEVNULL)
        self.players[proc.pid] = proc
        return f"pid={proc.pid}"

    def stop(self, pid):
        proc = self.players.pop(int(pid), None)
        if proc is None:
            raise RuntimeError(f"pid {pid} is not a player this driver started")
        stop_process(proc)
        return ""

    def pulse_pid(self):
        return self.session.pids().get("pipewire-pulse")

    def kill_pulse(self):
        pid = self.pulse_pid()
        if pid is None:
            raise RuntimeError("the session has no pipewire-pulse")
        os.kill(pid, signal.SIGKILL)
        # It is the session script's child, not ours: wait until its /proc entry is a zombie or
        # gone (the script's shell reaps it), bounded.
        wait_gone(pid, 10.0)
        return ""

    def restart_pulse(self):
        subprocess.run([str(REPO / "scripts" / "pipewire-session.sh"), "restart",
                        "pipewire-pulse", "--dir", self.session.env["PROCAUDIO_PW_DIR"]],
                       check=True, timeout=60, capture_output=True, text=True)
        return ""

    def sink_rate(self):
        out = subprocess.run(["pactl", "list", "short", "sinks"], check=True, timeout=20,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) >= 4 and fields[1] == "procaudio-null-sink":
                rate = [f for f in fields[3].split() if f.endswith("Hz")]
                if rate:
                    return f"rate={rate[0][:-2]}"
        raise RuntimeError(f"no procaudio-null-sink in: {out!r}")

    def capture(self, name, seconds, freq, other):
        plugin_dir = self.linux_build / "gst"
        if not any(plugin_dir.glob("libgstprocaudio*.so")):
            raise RuntimeError(f"no Linux build of the plugin in {plugin_dir}: build it first "
                               "(scripts/test.sh does), or give --linux-build")
        script = HERE / "capture_by_name.py"
        # The Linux GStreamer, not wine's: no GST_* variable of the Windows side.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GST_")}
        env.update(GST_PLUGIN_PATH=str(plugin_dir),
                   GST_REGISTRY_1_0=str(self.tmp / "linux-registry.bin"))
        run = subprocess.run(["/usr/bin/python3", str(script), name, seconds, freq, other],
                             env=env, capture_output=True, text=True, timeout=float(seconds) + 60)
        if run.returncode != 0:
            raise RuntimeError(f"capture_by_name.py failed ({run.returncode}): "
                               f"{run.stderr.strip()[-500:]}")
        return run.stdout.strip().splitlines()[-1]

    def answer(self, words):
        handlers = {"play": self.play, "stop": self.stop, "kill-pulse": self.kill_pulse,
                    "restart-pulse": self.restart_pulse, "sink-rate": self.sink_rate,
                    "capture": self.capture}
        if not words or words[0] not in handlers:
            return f"@@error unknown request {' '.join(words)!r}"
        try:
            return ("@@ok " + handlers[words[0]](*words[1:])).rstrip()
        except Exception as e:  # answered, never raised: the test reports it
            return f"@@error {words[0]}: {e}".replace("\n", " ")

    def stop_all(self):
        for proc in self.players.values():
            stop_process(proc)
        self.players.clear()


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_gone(pid, timeout):
    """Waits until `pid` no longer runs (gone or a zombie): the kernel's pidfd says so."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            raise RuntimeError(f"pid {pid} still runs {timeout} s after SIGKILL")
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--linux-build", default=os.environ.get("PROCAUDIO_LINUX_BUILD_DIR"))
    ap.add_argument("program", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    program = [a for a in args.program if a != "--"] if args.program[:1] == ["--"] else args.program
    if not program:
        ap.error("no program given")
    if args.linux_build is None:
        args.linux_build = next((str(REPO / d) for d in ("build-test", "build")
                                 if (REPO / d / "gst").is_dir()), str(REPO / "build-test"))
    if sys.platform != "win32":
        wine = shutil.which("wine")
        if wine is None:
            print("linux_side.py: wine not found", file=sys.stderr)
            return 1
        program.insert(0, wine)

    session = Session(start_session(pulse=True))
    session.activate()
    driver = None
    try:
        with tempfile.TemporaryDirectory(prefix="procaudio-linux-side-") as tmp:
            driver = Driver(session, pathlib.Path(args.linux_build), pathlib.Path(tmp))
            env = dict(os.environ, PROCAUDIO_LINUX_SIDE="1")
            print("$", " ".join(program), flush=True)
            proc = subprocess.Popen(program, env=env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
            for line in proc.stdout:
                if line.startswith("@@linux "):
                    reply = driver.answer(line.split()[1:])
                    print(f"[linux side] {line.strip()[8:]} -> {reply}", flush=True)
                    proc.stdin.write(reply + "\n")
                    proc.stdin.flush()
                else:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            return proc.wait()
    finally:
        if driver is not None:
            driver.stop_all()
        session.deactivate()
        stop_session(session.env)


if __name__ == "__main__":
    sys.exit(main())
