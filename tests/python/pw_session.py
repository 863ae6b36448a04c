# SPDX-License-Identifier: LGPL-2.1-or-later
"""A private headless PipeWire session for the tests and benchmarks (no GStreamer here):
started and stopped through scripts/pipewire-session.sh, its environment put in force in
this process while used. Only processes this run started are ever stopped, by pid."""
import os
import pathlib
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("PROCAUDIO_BUILD_DIR", REPO / "build"))
SESSION_SCRIPT = REPO / "scripts" / "pipewire-session.sh"
TONE_PLAYER = BUILD / "tests" / "pipewire" / "tone_player"


def start_session(pulse=False):
    """Starts a private PipeWire + WirePlumber (+ pipewire-pulse); returns its environment."""
    # The session's directory is ours, so that we know where its environment file will be.
    directory = tempfile.mkdtemp(prefix=f"procaudio-pw-{os.getuid()}-")
    args = [str(SESSION_SCRIPT), "start", "--dir", directory] + (["--pulse"] if pulse else [])
    # A new session of its own, even while another one's environment is in force.
    env = {k: v for k, v in os.environ.items() if k != "PROCAUDIO_PW_DIR"}
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=60, env=env)
    # session.env: NAME=value sets, NAME alone unsets (None here), in order.
    env = {}
    for line in pathlib.Path(directory, "session.env").read_text().splitlines():
        key, eq, value = line.partition("=")
        env[key] = value if eq else None
    return env


def stop_session(env):
    subprocess.run([str(SESSION_SCRIPT), "stop", "--dir", env["PROCAUDIO_PW_DIR"]],
                   check=False, timeout=60)


class Session:
    """A private PipeWire session whose environment is in force in this process while used."""

    def __init__(self, env):
        self.env = env
        self._saved = {}

    def activate(self):
        for key, value in self.env.items():
            self._saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def deactivate(self):
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def pids(self):
        """The daemons' pids, as the session script recorded them."""
        state = pathlib.Path(self.env["PROCAUDIO_PW_DIR"])
        pids = {}
        for f in (state / "pids").glob("*.pid"):
            pids[f.stem] = int(f.read_text().split()[0])
        return pids
