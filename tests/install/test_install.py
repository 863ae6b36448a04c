# SPDX-License-Identifier: LGPL-2.1-or-later
"""The two ways to install procaudio on Debian, done for real on this machine: `meson install`
with --prefix=/usr, then the .debs of scripts/build-debs.sh. After each, GStreamer and Python
find the plugin and the package with no environment variables set, and the installed copy
captures a real process; after each, uninstalling leaves nothing behind.

This writes to /usr, so scripts/test.sh runs it on its own, after every other suite that loads
the plugin from the build tree, and it refuses to run where procaudio is already installed (it
would replace and then remove someone's install)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from pw_session import BUILD, TONE_PLAYER, start_session, stop_session  # noqa: E402
from wav_analysis import level_dbfs  # noqa: E402

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], check=True,
                           capture_output=True, text=True).stdout.strip()
PLUGIN = pathlib.Path(f"/usr/lib/{MULTIARCH}/gstreamer-1.0/libgstprocaudio.so")
PACKAGE = pathlib.Path("/usr/lib/python3/dist-packages/procaudio")
DEBS = ("gstreamer1.0-procaudio", "python3-procaudio")
# Nothing but a PATH: what a new user's shell has that matters here.
BARE = {"PATH": "/usr/bin:/bin"}


# What writes to /usr runs as root: through sudo for a developer who is not.
AS_ROOT = [] if os.geteuid() == 0 else ["sudo", "-n"]


def run(cmd, env=BARE, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, **kw)


def installed_debs():
    out = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *DEBS]).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[1:] == ["ii"]]


@pytest.fixture(scope="module", autouse=True)
def nothing_installed_before():
    there = [str(p) for p in (PLUGIN, PACKAGE) if p.exists()] + installed_debs()
    if there:
        pytest.fail(f"procaudio is already installed here ({', '.join(there)}): this test "
                    "installs and removes it, so it runs only where it is not")
    yield
    assert not PLUGIN.exists() and not PACKAGE.exists() and not installed_debs(), \
        "a test left procaudio installed"


def assert_found_with_no_environment():
    """gst-inspect-1.0 and python3 find the installed copies with only PATH set."""
    inspect = run(["gst-inspect-1.0", "pipewireprocsrc"])
    assert inspect.returncode == 0, inspect.stderr
    # GStreamer names it by the directory it found libgstreamer in: /lib or /usr/lib, one
    # directory on a merged-/usr system.
    filename = [os.path.realpath(line.split()[1]) for line in inspect.stdout.splitlines()
                if line.split()[:1] == ["Filename"]]
    assert filename == [str(PLUGIN.resolve())], filename
    assert "pipewireprocdeviceprovider:" in run(["gst-inspect-1.0", "procaudio"]).stdout
    # -B: no __pycache__ written into the installed tree by this root test.
    probe = run(["/usr/bin/python3", "-B", "-c",
                 "import procaudio, procaudio._gst as g; "
                 "print(procaudio.__file__); "
                 "print(g.Gst.ElementFactory.find(g.ELEMENT).get_plugin().get_filename())"])
    assert probe.returncode == 0, probe.stderr
    assert [os.path.realpath(p) for p in probe.stdout.split()] == [
        str((PACKAGE / "__init__.py").resolve()), str(PLUGIN.resolve())]


def assert_gone():
    assert not PLUGIN.exists()
    assert not PACKAGE.exists(), sorted(str(p) for p in PACKAGE.rglob("*"))
    assert run(["gst-inspect-1.0", "pipewireprocsrc"]).returncode != 0
    assert run(["/usr/bin/python3", "-B", "-c", "import procaudio"]).returncode != 0


def assert_captures_a_real_process(tmp_path):
    """The installed package records a tone player of a private PipeWire session: the
    session's own variables are set (it is not the user's), the plugin and package are not."""
    if not TONE_PLAYER.exists():
        pytest.fail(f"{TONE_PLAYER} is not built: build with -Dtests=enabled -Dpipewire=enabled")
    session = start_session()
    player = None
    try:
        env = dict(BARE, **{k: v for k, v in session.items() if v is not None})
        assert "GST_PLUGIN_PATH" not in env and "PYTHONPATH" not in env
        player = subprocess.Popen([str(TONE_PLAYER), "--freq", "440"], env=env,
                                  stdout=subprocess.PIPE, text=True)
        assert "streaming" in player.stdout.readline()  # it flushes every line
        out = tmp_path / "tone.npy"
        rec = run(["/usr/bin/python3", "-B", "-c",
                   "import sys, numpy, procaudio; "
                   "numpy.save(sys.argv[2], procaudio.record(pid=int(sys.argv[1]), seconds=1.0,"
                   " rate=48000, dtype='float32'))",
                   str(player.pid), str(out)], env=env)
        assert rec.returncode == 0, rec.stderr
        x = np.load(out)[:, 0]
        assert x.size == 48000
        steady = x[x.size // 2:]  # after the links settled
        print(f"installed copy captured 440 Hz at {level_dbfs(steady, 440):.1f} dBFS")
        assert level_dbfs(steady, 440) > -12
    finally:
        if player is not None:
            player.terminate()
            player.wait(timeout=10)
        stop_session(session)


def test_meson_install_with_prefix_usr(tmp_path):
    build = tmp_path / "build"
    setup = run(["meson", "setup", str(build), "--prefix=/usr", "-Dpipewire=enabled",
                 "-Dtests=disabled", "-Dbenchmarks=disabled"], env=dict(os.environ), cwd=REPO)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert run(["ninja", "-C", str(build)]).returncode == 0
    install = run([*AS_ROOT, "meson", "install", "-C", str(build), "--no-rebuild"])
    try:
        assert install.returncode == 0, install.stdout + install.stderr
        assert_found_with_no_environment()
        assert_captures_a_real_process(tmp_path)
    finally:
        uninstall = run([*AS_ROOT, "ninja", "-C", str(build), "uninstall"])
    assert uninstall.returncode == 0, uninstall.stdout
    # meson removes the files it installed, not the directory it made for them.
    if PACKAGE.is_dir() and not any(PACKAGE.iterdir()):
        run([*AS_ROOT, "rmdir", str(PACKAGE)])
    assert_gone()


def test_debs_build_lintian_clean_install_and_purge(tmp_path):
    built = run([str(REPO / "scripts" / "build-debs.sh"), str(tmp_path / "debs")],
                env=dict(os.environ))
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    print(built.stdout)
    debs = {pathlib.Path(p).name.split("_")[0]: p for p in built.stdout.split()
            if p.endswith(".deb")}
    assert set(DEBS) <= set(debs), debs
    install = run([*AS_ROOT, "apt-get", "install", "-y", "--no-install-recommends",
                   *(debs[d] for d in DEBS)], env=dict(BARE, DEBIAN_FRONTEND="noninteractive"))
    try:
        assert install.returncode == 0, install.stdout[-2000:] + install.stderr
        assert installed_debs() == list(DEBS)
        assert_found_with_no_environment()
        assert_captures_a_real_process(tmp_path)
    finally:
        purge = run([*AS_ROOT, "apt-get", "purge", "-y", *DEBS],
                    env=dict(BARE, DEBIAN_FRONTEND="noninteractive"))
    assert purge.returncode == 0, purge.stdout[-2000:] + purge.stderr
    assert installed_debs() == []
    assert_gone()
