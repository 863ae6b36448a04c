#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`gst-inspect-1.0 wasapiprocsrc` with the plugin directory on GST_PLUGIN_PATH: the element
and its properties must be listed; `gst-inspect-1.0 procaudio` must list the plugin's
features, wasapiprocdeviceprovider among them. Off Windows the .exe runs under wine (the
cross build)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def win_path(path):
    """A path the Windows program understands: /unix/path is Z:/unix/path under wine."""
    if sys.platform != "win32" and path.startswith("/"):
        return "Z:" + path
    return path


def inspect(args, what):
    """gst-inspect-1.0's output for `what`, or None (the reason printed) if it failed."""
    command = [args.gst_inspect, what]
    if sys.platform != "win32":
        wine = shutil.which("wine")
        if wine is None:
            print("wine not found", file=sys.stderr)
            return None
        command.insert(0, wine)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env["GST_PLUGIN_PATH"] = win_path(args.plugin_dir)
        env["GST_REGISTRY_1_0"] = win_path(os.path.join(tmp, "registry.bin"))
        print("$", " ".join(command), flush=True)
        try:
            run = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=240)
        except subprocess.TimeoutExpired:
            print("gst-inspect-1.0 did not finish within 240 s", file=sys.stderr)
            return None
    out = run.stdout.decode("utf-8", "replace")
    err = run.stderr.decode("utf-8", "replace")
    print(out)
    if run.returncode != 0:
        print(err, file=sys.stderr)
        print(f"gst-inspect-1.0 exited with {run.returncode}", file=sys.stderr)
        return None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gst-inspect", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    out = inspect(args, "wasapiprocsrc")
    if out is None:
        return 1
    expected = [
        "Factory Details:",
        "Process audio source (WASAPI)",
        "Source/Audio",
        "Rank                     none (0)",
        "procaudio",
        "libgstprocaudio",
        "GstWasapiProcSrc",
        "GstProcAudioSrc",
        "F32LE", "S16LE", "44100", "48000",
        "include-tree", "exclude-tree",
    ]
    missing = [e for e in expected if e not in out]
    # Each property on a line of its own: "  pid                 : Process whose ..."
    for prop in ["pid", "process-name", "mode", "latency-time", "buffer-time", "stats"]:
        if not re.search(r"^  " + re.escape(prop) + r"\s+: \S", out, re.MULTILINE):
            missing.append("property " + prop)
    if missing:
        print("missing from the gst-inspect-1.0 output: " + ", ".join(repr(m) for m in missing),
              file=sys.stderr)
        return 1
    print("gst-inspect-1.0 wasapiprocsrc: element and properties listed")

    # The plugin's features: the element and the device provider that lists applications.
    out = inspect(args, "procaudio")
    if out is None:
        return 1
    missing = [e for e in ["wasapiprocsrc", "wasapiprocdeviceprovider", "2 features"]
               if e not in out]
    if missing:
        print("missing from gst-inspect-1.0 procaudio: " + ", ".join(repr(m) for m in missing),
              file=sys.stderr)
        return 1
    print("gst-inspect-1.0 procaudio: wasapiprocsrc and wasapiprocdeviceprovider listed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
