"""A private headless PipeWire session for the tests and benchmarks (no GStreamer here):
started and stopped through scripts/pipewire-session.sh, its environment put in force in
this process while used. Only processes this run started are ever stopped, by pid."""
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("PROCAUDIO_BUILD_DIR", REPO / "build"))
SESSION_SCRIPT = REPO / "scripts" / "pipewire-session.sh"
TONE_PLAYER = BUILD / "tests" / "pipewire" / "tone_player"


def start_session(pulse=False):
    """Starts a private PipeWire + WirePlumber (+ pipewire-pulse); returns its environment."""
    args = [str(SESSION_SCRIPT), "start"] + (["--pulse"] if pulse else [])
    # A new session of its own, even while another one's environment is in force.
    env = {k: v for k, v in os.environ.items() if k != "PROCAUDIO_PW_DIR"}
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60,
                         env=env).stdout
    env = {}  # None: a variable the session unsets
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip().strip("'\"")
        elif line.startswith("unset "):
            env.update((key, None) for key in line.split()[1:])
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
