# SPDX-License-Identifier: LGPL-2.1-or-later
"""Processes in a pid namespace of their own, as Flatpak (and other sandboxed) applications run:
`unshare --pid --fork --mount-proc` (with a user namespace too when not root). Inside, the
program sees its own pid (1, or 2 when a shell starts it); on the host it has another. Only
processes this module started are ever stopped, by their pid."""
import os
import pathlib
import signal
import subprocess


def unshare_prefix():
    prefix = ["unshare", "--pid", "--fork", "--mount-proc"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    return prefix


def ns_pids(pid):
    """The pid of `pid` in each pid namespace it is in, the host's first (NSpid:)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(p) for p in line.split()[1:]]
    return []


def parent_of(pid):
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def descendants(root):
    """Host pids of `root`'s descendants."""
    parents = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = parent_of(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    return found


class Sandboxed:
    """`argv` run in a new pid namespace. local_pid=1: the program is the namespace's first
    process; local_pid=2: a shell is (pid 1) and starts the program (pid 2). `pid` is the
    program's host pid, `unshare_pid` the host process whose child the namespace is."""

    def __init__(self, argv, local_pid=1):
        assert local_pid in (1, 2)
        script = ('echo $$; exec "$0" "$@"' if local_pid == 1
                  else '"$0" "$@" & echo $!; wait')
        self.proc = subprocess.Popen(unshare_prefix() + ["sh", "-c", script] + list(argv),
                                     stdout=subprocess.PIPE, text=True)
        self.unshare_pid = self.proc.pid
        # The shell prints the program's pid in the namespace once it exists: an event.
        line = self.proc.stdout.readline()
        assert line.strip() == str(local_pid), (
            f"unshare: expected local pid {local_pid}, got {line!r} (can this user unshare "
            f"a pid namespace? {' '.join(unshare_prefix())})")
        self.local_pid = local_pid
        # It exists: the echo came from it (pid 1, before its exec) or after its fork (pid 2).
        mine = [p for p in descendants(self.unshare_pid)
                if ns_pids(p)[-1:] == [local_pid] and len(ns_pids(p)) > 1]
        assert len(mine) == 1, f"the sandboxed program's host pid: {mine}"
        self.pid = mine[0]

    def readline(self):
        return self.proc.stdout.readline()

    def stop(self):
        for pid in (self.pid, self.unshare_pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
