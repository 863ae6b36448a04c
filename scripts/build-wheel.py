#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Builds a wheel of the procaudio package with the plugin inside it:

    scripts/build-wheel.py --plugin build/gst/gstprocaudio.dll --platform win_amd64 --out dist
    scripts/build-wheel.py --plugin build/gst/libgstprocaudio.so --platform linux_x86_64 --out dist

gives dist/procaudio-<version>-py3-none-<platform>.whl: python/procaudio/*.py, the plugin in
procaudio/gstreamer-1.0/ (where the package looks for it at import, when no plugin on
GStreamer's plugin path provides the element), and the .dist-info. The version is meson.build's
project version. A Windows wheel requires gstreamer-meta, the GStreamer 1.28 wheels (GStreamer,
its plugins, PyGObject); a Linux one does not, because Linux's GStreamer and PyGObject come from
the distribution (there are no GStreamer wheels for Linux). Both require numpy.

Standard library only, so it runs on a bare Python (a CI runner, a build machine without
pip's build tools). The zip entries are sorted and stamped with one fixed time: the same inputs
give the same bytes. Prints the wheel's path last."""
import argparse
import base64
import csv
import hashlib
import io
import pathlib
import re
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "python" / "procaudio"
NAME = "procaudio"
SUMMARY = "The audio of one application, in Python, from GStreamer"
# What a Windows wheel needs of the GStreamer wheels: gstreamer-meta without extras pulls
# gstreamer_libs, gstreamer_plugins (audioconvert, audioresample, appsink, wavenc) and
# gstreamer_python (PyGObject). >= 1.28: a plugin runs on the GStreamer minor version it was
# built against or a later one, and 1.28 is the first with wheels.
WINDOWS_GSTREAMER = "gstreamer-meta>=1.28"
# The plugin's file name per platform, as the package looks for it (_gst.BUNDLED_PLUGIN_NAMES).
PLUGIN_NAMES = {"win": ("gstprocaudio.dll", "libgstprocaudio.dll"),
                "linux": ("libgstprocaudio.so",)}
# 1980-01-01, the earliest time a zip entry holds: no build time in the wheel.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def project_version():
    """The version in meson.build's project(): the one the plugin is built with."""
    text = (REPO / "meson.build").read_text(encoding="utf-8")
    project = re.search(r"project\((.*?)\)", text, re.S)
    version = project and re.search(r"version\s*:\s*'([^']+)'", project.group(1))
    if not version:
        sys.exit("build-wheel: no version in meson.build's project()")
    return version.group(1)


def package_version():
    text = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    return found.group(1) if found else None


def platform_kind(tag):
    for kind in PLUGIN_NAMES:
        if tag.startswith(kind + "_") or tag == kind + "32":
            return kind
    sys.exit(f"build-wheel: platform tag {tag!r} is neither win_* / win32 nor linux_*")


def metadata(version, kind):
    requires = ([WINDOWS_GSTREAMER] if kind == "win" else []) + ["numpy"]
    lines = ["Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {version}",
             f"Summary: {SUMMARY}", "Home-page: https://github.com/procaudio/procaudio",
             "License: LGPL-2.1-or-later", "Requires-Python: >=3.9",
             "Classifier: License :: OSI Approved :: GNU Lesser General Public License v2 or "
             "later (LGPLv2+)",
             "Classifier: Topic :: Multimedia :: Sound/Audio :: Capture/Recording",
             "Classifier: Operating System :: Microsoft :: Windows" if kind == "win"
             else "Classifier: Operating System :: POSIX :: Linux"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    description = (
        "The audio of one application as numpy chunks with device-clock timestamps, from "
        "GStreamer's wasapiprocsrc (Windows) or pipewireprocsrc (Linux). This wheel carries "
        "the plugin in procaudio/gstreamer-1.0/; the package loads it at import when no "
        "plugin on GStreamer's plugin path provides the element.\n")
    return "\n".join(lines) + "\n\n" + description


def wheel_file(tag):
    return (f"Wheel-Version: 1.0\nGenerator: procaudio scripts/build-wheel.py\n"
            # A platform binary inside: it goes to platlib, not purelib.
            f"Root-Is-Purelib: false\nTag: py3-none-{tag}\n")


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build(plugin, tag, out):
    kind = platform_kind(tag)
    if plugin.name not in PLUGIN_NAMES[kind]:
        sys.exit(f"build-wheel: a {tag} wheel carries {' or '.join(PLUGIN_NAMES[kind])}, "
                 f"not {plugin.name}: the package would not find it")
    if not plugin.is_file():
        sys.exit(f"build-wheel: no plugin at {plugin}")
    version = project_version()
    if package_version() != version:
        sys.exit(f"build-wheel: meson.build says {version}, procaudio/__init__.py "
                 f"__version__ says {package_version()}: make them agree")
    dist_info = f"{NAME}-{version}.dist-info"
    files = [(f"{NAME}/{p.name}", p.read_bytes(), 0o644) for p in sorted(PACKAGE.glob("*.py"))]
    if not files:
        sys.exit(f"build-wheel: no Python files in {PACKAGE}")
    files.append((f"{NAME}/gstreamer-1.0/{plugin.name}", plugin.read_bytes(), 0o755))
    files += [(f"{dist_info}/METADATA", metadata(version, kind).encode(), 0o644),
              (f"{dist_info}/WHEEL", wheel_file(tag).encode(), 0o644),
              (f"{dist_info}/top_level.txt", f"{NAME}\n".encode(), 0o644),
              (f"{dist_info}/COPYING", (REPO / "COPYING").read_bytes(), 0o644)]
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data, _ in files:
        writer.writerow([name, record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])  # RECORD cannot hold its own hash
    files.append((f"{dist_info}/RECORD", record.getvalue().encode(), 0o644))

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{NAME}-{version}-py3-none-{tag}.whl"
    tmp = path.with_suffix(".whl.part")  # no half-written wheel under the real name
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as whl:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = (0o100000 | mode) << 16  # a regular file, with its mode
            info.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(info, data)
    tmp.replace(path)
    return path


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", required=True, type=pathlib.Path,
                        help="the built plugin: gstprocaudio.dll (MSVC), libgstprocaudio.dll "
                             "(mingw) or libgstprocaudio.so")
    parser.add_argument("--platform", required=True,
                        help="the wheel's platform tag, e.g. win_amd64 or linux_x86_64")
    parser.add_argument("--out", required=True, type=pathlib.Path,
                        help="the directory to write the wheel in")
    args = parser.parse_args()
    print(build(args.plugin, args.platform, args.out))


if __name__ == "__main__":
    main()
