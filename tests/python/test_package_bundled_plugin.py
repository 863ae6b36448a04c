# SPDX-License-Identifier: LGPL-2.1-or-later
"""The plugin shipped beside the package (procaudio/gstreamer-1.0/, where a wheel puts it), as a
user's fresh interpreter sees it: /usr/bin/python3 in a subprocess, GST_PLUGIN_PATH and
PYTHONPATH not set, the private session's PipeWire variables kept.

- with only the bundled plugin, `import procaudio` loads it and captures a real tone player;
- with the plugin on GST_PLUGIN_PATH too, that one is used and the bundled copy never loaded;
- with neither (or a broken bundled file), import works and Capture raises Unavailable
  saying where it looked and why;
- the wheel of scripts/build-wheel.py installs into a venv with pip and captures with nothing
  set, and its METADATA, WHEEL and RECORD are right (every file's hash and size).

The subprocesses get a GStreamer system plugin path of their own (links to the few Debian
plugins a capture uses) and a registry file of their own: a procaudio installed in /usr (the
.debs, tests/install) must not answer for the bundled copy, and the user's registry is not
written."""
import base64
import csv
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from conftest import Gst
from pw_session import BUILD, REPO
import wav_analysis

PLUGIN = BUILD / "gst" / "libgstprocaudio.so"
PACKAGE = REPO / "python" / "procaudio"
PLAYED_DB = 20 * np.log10(0.5)  # tone_player's default amplitude
RATE = 48000
# The elements a Capture and record() build besides the source (no WAV is written here).
NEEDED = ("capsfilter", "audioconvert", "audioresample", "appsink", "tee", "queue")

# Run in the subprocess: imports procaudio (from argv[1] when given, else wherever the
# interpreter finds it), makes the element so that its plugin is really loaded, and reports
# the files as JSON; with a pid (argv[2], "-" for none) captures 1.5 s of its audible chunks
# into argv[3] (.npy) and lists the applications, or reports the Capture's error.
PROBE = r"""
import json, os, sys
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
import numpy as np
import procaudio, procaudio._gst as g
report = {"module": procaudio.__file__, "bundled": g.BUNDLED_PLUGIN, "plugin": None,
          "mapped": [], "error": None, "pid": None}
factory = g.Gst.ElementFactory.find(g.ELEMENT)
if factory is not None:
    report["plugin"] = factory.get_plugin().get_filename()
    assert g.Gst.ElementFactory.make(g.ELEMENT) is not None
# Which plugin files this process has loaded, as the kernel says.
with open("/proc/self/maps") as maps:
    report["mapped"] = sorted({l.split()[-1] for l in maps if "libgstprocaudio" in l})
if sys.argv[2] == "-":
    print(json.dumps(report))
    sys.exit(0)
try:
    with procaudio.Capture(pid=int(sys.argv[2]), rate=48000, dtype="float32") as cap:
        audible = []
        for i, chunk in enumerate(cap):
            if not chunk.gap:
                audible.append(chunk.samples[:, 0])
            if len(audible) == 150 or i == 600:  # 1.5 s of tone, within 6 s of stream
                break
        report["pid"] = cap.pid
    np.save(sys.argv[3], np.concatenate(audible) if audible else np.zeros(0, np.float32))
except procaudio.CaptureError as e:
    report["error"] = [type(e).__name__, e.message]
report["listed"] = sorted(p.pid for p in procaudio.list_processes())
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def gst_dirs(tmp_path_factory):
    """(system plugin dir, registry file) for the subprocesses: links to the Debian plugins of
    the elements a capture needs, found where this process's GStreamer has them."""
    root = tmp_path_factory.mktemp("gst")
    system = root / "system-plugins"
    system.mkdir()
    for name in NEEDED:
        factory = Gst.ElementFactory.find(name)
        assert factory is not None, f"GStreamer has no {name}"
        path = pathlib.Path(factory.get_plugin().get_filename())
        assert "procaudio" not in path.name
        if not (system / path.name).exists():
            (system / path.name).symlink_to(path)
    return system, root / "registry.bin"


def environment(gst_dirs, **extra):
    """This process's environment (the private session's variables included) without the
    plugin path and the Python path; the subprocesses' own GStreamer system path and registry."""
    system, registry = gst_dirs
    env = {k: v for k, v in os.environ.items()
           if k not in ("GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "PYTHONPATH", "GST_REGISTRY")}
    env.update(GST_PLUGIN_SYSTEM_PATH_1_0=str(system), GST_REGISTRY_1_0=str(registry))
    env.update(extra)
    return env


def package_copy(root, plugin=None):
    """A copy of the package under root/site, with `plugin` (a path, or bytes) as its bundled
    libgstprocaudio.so; returns root/site."""
    site = root / "site"
    shutil.copytree(PACKAGE, site / "procaudio", ignore=shutil.ignore_patterns("__pycache__"))
    if plugin is not None:
        bundled = site / "procaudio" / "gstreamer-1.0" / "libgstprocaudio.so"
        bundled.parent.mkdir()
        if isinstance(plugin, bytes):
            bundled.write_bytes(plugin)
        else:
            shutil.copy(plugin, bundled)
    return site


def probe(python, env, tmp_path, site="", pid="-"):
    """Runs PROBE; returns (its report, the samples it captured)."""
    out = tmp_path / "samples.npy"
    # -I: no PYTHONPATH, user site or current directory: what the interpreter finds itself.
    run = subprocess.run([str(python), "-I", "-c", PROBE, str(site), str(pid), str(out)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    report["stderr"] = run.stderr
    samples = np.load(out) if out.exists() else None
    return report, samples


def mapped(report):
    return [os.path.realpath(p) for p in report["mapped"]]


def assert_tone(samples, freq):
    x = samples[int(0.3 * RATE):].astype(np.float64)  # past the links settling
    assert x.size >= RATE, x.size
    level = wav_analysis.level_dbfs(x, freq, RATE)
    dominant = wav_analysis.dominant_frequency(x, RATE)
    print(f"{freq} Hz at {level:.2f} dBFS, dominant {dominant:.1f} Hz")
    assert abs(level - PLAYED_DB) <= 1.0, level
    assert abs(dominant - freq) <= 2, dominant


def test_the_bundled_plugin_is_loaded_and_captures(pw_session, players, gst_dirs, tmp_path):
    site = package_copy(tmp_path, PLUGIN)
    bundled = site / "procaudio" / "gstreamer-1.0" / "libgstprocaudio.so"
    target = players("--freq", 440).wait_streaming()
    report, samples = probe("/usr/bin/python3", environment(gst_dirs), tmp_path, site, target.pid)
    assert report["module"] == str(site / "procaudio" / "__init__.py")
    assert report["error"] is None, report
    assert report["plugin"] == report["bundled"] == str(bundled)
    assert mapped(report) == [os.path.realpath(bundled)]
    assert report["pid"] == target.pid
    assert target.pid in report["listed"]  # the bundled plugin's device provider too
    assert_tone(samples, 440)


def test_a_plugin_on_the_plugin_path_wins_over_the_bundled_one(gst_dirs, tmp_path):
    site = package_copy(tmp_path, PLUGIN)
    env = environment(gst_dirs, GST_PLUGIN_PATH=str(PLUGIN.parent))
    report, _ = probe("/usr/bin/python3", env, tmp_path, site)
    assert report["plugin"] == str(PLUGIN)
    assert report["bundled"] is None
    assert mapped(report) == [os.path.realpath(PLUGIN)]  # the bundled file was never opened


@pytest.mark.parametrize("bundled, words", [
    (None, "no libgstprocaudio.so there"),
    (b"not a shared object", "libgstprocaudio.so is there but failed to load: "),
], ids=["absent", "broken"])
def test_without_a_plugin_import_works_and_capture_says_where_it_looked(
        gst_dirs, tmp_path, bundled, words):
    site = package_copy(tmp_path, bundled)
    # A pid that is never a process: were the element found, this would be NotFound.
    report, samples = probe("/usr/bin/python3", environment(gst_dirs), tmp_path, site,
                            4_000_000)
    assert report["plugin"] is None and report["mapped"] == [] and samples is None
    kind, message = report["error"]
    print(message)
    assert kind == "Unavailable"
    assert "pipewireprocsrc is not available" in message
    assert "GST_PLUGIN_PATH (not set)" in message
    assert str(gst_dirs[0]) in message  # the system plugin path it scanned
    assert str(site / "procaudio" / "gstreamer-1.0") in message
    assert words in message
    assert report["listed"] == []  # no provider: nothing to list, and no exception either


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def meson_version():
    return re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)


def build_wheel(plugin, platform, out):
    run = subprocess.run(["/usr/bin/python3", str(REPO / "scripts" / "build-wheel.py"),
                          "--plugin", str(plugin), "--platform", platform, "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    wheel = pathlib.Path(run.stdout.split()[-1])
    assert wheel.name == f"procaudio-{meson_version()}-py3-none-{platform}.whl"
    return wheel


def read_wheel(wheel):
    """The wheel's files, after checking RECORD lists each of them once with its sha256 and
    size (and itself without)."""
    with zipfile.ZipFile(wheel) as whl:
        files = {name: whl.read(name) for name in whl.namelist()}
    dist_info = f"procaudio-{meson_version()}.dist-info"
    rows = list(csv.reader(io.StringIO(files[f"{dist_info}/RECORD"].decode())))
    assert sorted(r[0] for r in rows) == sorted(files), "RECORD lists every file once"
    for name, digest, size in rows:
        if name == f"{dist_info}/RECORD":
            assert digest == size == ""
        else:
            assert digest == record_hash(files[name]), name
            assert int(size) == len(files[name]), name
    return {name.replace(dist_info, "dist-info"): data for name, data in files.items()}


def headers(text):
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    return fields


def test_the_windows_wheel_requires_the_gstreamer_wheels(tmp_path):
    dll = tmp_path / "gstprocaudio.dll"  # its bytes do not matter to the wheel
    dll.write_bytes(b"MZ stand-in for the MSVC build")
    files = read_wheel(build_wheel(dll, "win_amd64", tmp_path / "dist"))
    assert files["procaudio/gstreamer-1.0/gstprocaudio.dll"] == dll.read_bytes()
    meta = headers(files["dist-info/METADATA"].decode())
    assert meta["Requires-Dist"] == ["gstreamer-meta>=1.28", "numpy"]
    wheel = headers(files["dist-info/WHEEL"].decode())
    assert wheel["Tag"] == ["py3-none-win_amd64"] and wheel["Root-Is-Purelib"] == ["false"]
    # The Linux plugin is refused in a Windows wheel: the package would never find it there.
    run = subprocess.run(["/usr/bin/python3", str(REPO / "scripts" / "build-wheel.py"),
                          "--plugin", str(PLUGIN), "--platform", "win_amd64",
                          "--out", str(tmp_path / "dist")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0 and "gstprocaudio.dll" in run.stderr


def test_the_linux_wheel_installs_with_pip_and_captures(pw_session, players, gst_dirs, tmp_path):
    wheel = build_wheel(PLUGIN, "linux_x86_64", tmp_path / "dist")
    files = read_wheel(wheel)
    assert sorted(n for n in files if n.startswith("procaudio/")) == sorted(
        [f"procaudio/{p.name}" for p in PACKAGE.glob("*.py")]
        + ["procaudio/gstreamer-1.0/libgstprocaudio.so"])
    assert files["procaudio/gstreamer-1.0/libgstprocaudio.so"] == PLUGIN.read_bytes()
    meta = headers(files["dist-info/METADATA"].decode())
    assert meta["Name"] == ["procaudio"] and meta["Version"] == [meson_version()]
    assert meta["Requires-Dist"] == ["numpy"]  # GStreamer and PyGObject come from Debian
    wheel_meta = headers(files["dist-info/WHEEL"].decode())
    assert wheel_meta["Tag"] == ["py3-none-linux_x86_64"]
    assert wheel_meta["Root-Is-Purelib"] == ["false"]

    # A venv that sees Debian's gi and numpy; pip installs the wheel alone, from the file.
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "--isolated", "install", "--no-deps",
                          "--no-index", "--no-cache-dir", "--disable-pip-version-check",
                          str(wheel)], capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    target = players("--freq", 1000).wait_streaming()
    report, samples = probe(python, environment(gst_dirs), tmp_path, pid=target.pid)
    installed = pathlib.Path(report["module"]).parent
    assert installed.is_relative_to(venv), installed
    assert report["error"] is None, report
    assert report["plugin"] == str(installed / "gstreamer-1.0" / "libgstprocaudio.so")
    assert mapped(report) == [os.path.realpath(report["plugin"])]
    assert report["pid"] == target.pid
    assert target.pid in report["listed"]
    assert_tone(samples, 1000)
