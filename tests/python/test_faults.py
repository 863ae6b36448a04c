# SPDX-License-Identifier: LGPL-2.1-or-later
"""Faults injected into a real PipeWire session while pipewireprocsrc captures a real
player, each judged by what the application sees: the audio, the buffers' flags and PTS, the
element's counters, the bus. Another client acts as a patchbay user or an administrator
would (pw-cli, pw-metadata, a WirePlumber restart); all of it in this run's private session.
(The daemon's death, an error within 2 s, and the target's SIGKILL, EOS, are covered in
test_pipewireprocsrc.py.)"""
import json
import os
import shutil
import subprocess
import time

import numpy as np

import pytest

from conftest import Gst
from pw_session import SESSION_SCRIPT, TONE_PLAYER, Session, start_session, stop_session
from recorder import Recorder
import wav_analysis
from wav_analysis import RATE

CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"
TARGET_HZ = 440
PLAYED_DB = 20 * np.log10(0.5)
THRESHOLD_NS = 40_000_000


@pytest.fixture
def faulty_session(pw_session):
    """A private session of this test's own, in force while it runs: the faults break what
    they touch (a WirePlumber restarted under a playing stream links no new one), and the
    session the other tests share must not inherit that."""
    pw_session.deactivate()
    own = Session(start_session())
    own.activate()
    try:
        yield own
    finally:
        own.deactivate()
        stop_session(own.env)
        pw_session.activate()


def pw_dump():
    out = subprocess.run(["pw-dump"], check=True, capture_output=True, text=True,
                         timeout=10).stdout
    return json.loads(out)


def props(obj):
    return (obj.get("info") or {}).get("props") or {}


def our_nodes(dump):
    return [o["id"] for o in dump if o["type"] == "PipeWire:Interface:Node"
            and str(props(o).get("procaudio.capture")).lower() == "true"]


def our_links(dump, key="id"):
    """Our links' ids (or `key`: "object.serial" tells a new link from one whose id was
    reused)."""
    ours = set(our_nodes(dump))
    return [o["id"] if key == "id" else props(o).get(key) for o in dump
            if o["type"] == "PipeWire:Interface:Link"
            and (o.get("info") or {}).get("input-node-id") in ours]


def nodes_of_pid(dump, pid):
    """The stream nodes of process `pid`: those of its clients (the kernel's pid)."""
    clients = {o["id"] for o in dump if o["type"] == "PipeWire:Interface:Client"
               and str(props(o).get("pipewire.sec.pid")) == str(pid)}
    return [o["id"] for o in dump if o["type"] == "PipeWire:Interface:Node"
            and props(o).get("client.id") in clients]


def wait_dump(done, timeout, what):
    """pw-dump until `done(dump)` holds (each pw-dump is a round trip), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        dump = pw_dump()
        if done(dump):
            return dump
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


def pw_cli(*args):
    subprocess.run(["pw-cli", *[str(a) for a in args]], check=True, capture_output=True,
                   timeout=10)


def capture(players):
    """A player, and its capture once 1 s of its tone came."""
    target = players("--freq", TARGET_HZ).wait_streaming()
    rec = Recorder(f"pipewireprocsrc name=src pid={target.pid} ! {CAPS} ! appsink name=sink",
                   samples=True)
    rec.start()
    try:
        rec.wait_audible_ms(0, 1000)
    except BaseException:
        rec.stop()
        raise
    return target, rec


def continuity(rec):
    """Indexes of the buffers after the first that carry DISCONT; asserts PTS and offsets
    continue exactly everywhere else."""
    disconts = []
    for i, (prev, cur) in enumerate(zip(rec.buffers, rec.buffers[1:]), 1):
        if cur[4] & Gst.BufferFlags.DISCONT:
            disconts.append(i)
            continue
        assert cur[0] == prev[0] + prev[1], f"buffer {i}: PTS breaks without DISCONT"
        assert cur[2] == prev[3], f"buffer {i}: OFFSET breaks without DISCONT"
    return disconts


def tone_db(rec, first_buffer, last_buffer=None):
    x = np.concatenate(rec.samples[first_buffer:last_buffer])
    return wav_analysis.level_dbfs(x, TARGET_HZ, RATE)


def assert_accounting(stats, rec):
    """Nothing dropped, every frame pushed received; stopped mid-flow (to NULL), what the
    graph's last cycle delivered may still be unread: at most a quantum and a chunk; and the
    chunk create() had just handed over may never reach the sink: at most one."""
    get = stats.get_value
    assert get("frames-dropped") == 0
    received = sum(b[3] - b[2] for b in rec.buffers)
    assert 0 <= get("frames-pushed") - received <= 480, (get("frames-pushed"), received)
    unread = get("frames-captured") + get("frames-gap-filled") - get("frames-pushed")
    assert 0 <= unread <= 1024 + 480, f"{unread} frames neither pushed nor dropped"


def test_a_link_destroyed_by_another_client_is_made_again(faulty_session, players):
    target, rec = capture(players)
    try:
        dump = wait_dump(lambda d: len(our_links(d)) == 2, 5, "our two links")
        links, serials = our_links(dump), set(our_links(dump, "object.serial"))
        at = len(rec.buffers)
        for link in links:  # as a patchbay user would
            pw_cli("destroy", link)
        again = wait_dump(lambda d: len(our_links(d)) == 2
                          and not set(our_links(d, "object.serial")) & serials, 5,
                          "two new links")
        rec.wait_audible_ms(at, 1000)
    finally:
        stats = rec.stop()
    disconts = continuity(rec)
    gap = sum(b[1] for b in rec.buffers[at:] if b[4] & Gst.BufferFlags.GAP)
    print(f"links {links} destroyed, {our_links(again)} made again; {gap / 1e6:.1f} ms of GAP "
          f"after; frames-gap-filled {stats.get_value('frames-gap-filled')}")
    assert disconts == []
    assert tone_db(rec, len(rec.buffers) - 50) >= PLAYED_DB - 3, "the tone after the relink"
    assert_accounting(stats, rec)


def test_wireplumber_restarted_mid_capture_changes_nothing_for_the_capture(faulty_session,
                                                                           players):
    target, rec = capture(players)
    try:
        at = len(rec.buffers)
        subprocess.run([str(SESSION_SCRIPT), "restart", "wireplumber", "--dir",
                        faulty_session.env["PROCAUDIO_PW_DIR"]], check=True, capture_output=True,
                       timeout=60)
        rec.wait_audible_ms(at, 1500)
    finally:
        stats = rec.stop()
    assert continuity(rec) == []
    assert tone_db(rec, len(rec.buffers) - 50) >= PLAYED_DB - 3
    assert_accounting(stats, rec)
    print(f"frames-gap-filled {stats.get_value('frames-gap-filled')} around the restart")


def test_the_targets_stream_destroyed_by_another_client_is_gap_and_the_capture_goes_on(
        faulty_session, players):
    target, rec = capture(players)
    try:
        i_capturing = rec.wait_state("capturing", target.pid)
        nodes = nodes_of_pid(pw_dump(), target.pid)
        assert len(nodes) == 1, nodes
        pw_cli("destroy", nodes[0])
        # The process lives on, its stream does not: "capturing", no streams, live GAP.
        rec.wait(lambda: any(t["state"] == "capturing" and t["streams"] == 0
                             for t in rec.targets[i_capturing:]), 5, "streams=0")
        at = len(rec.buffers)
        rec.wait(lambda: len(rec.buffers) >= at + 50, 5, "50 buffers after")
    finally:
        stats = rec.stop()
    assert continuity(rec) == []
    assert all(b[4] & Gst.BufferFlags.GAP for b in rec.buffers[at + 5:]), "GAP, not zeros"
    assert not rec.eos and target.proc.poll() is None
    assert_accounting(stats, rec)


def test_the_graph_rate_forced_to_44100_and_back_keeps_time_and_the_tone(faulty_session, players):
    target, rec = capture(players)
    try:
        marks = []
        for rate in (44100, 0):  # 0: the setting removed, back to the graph's own rate
            subprocess.run(["pw-metadata", "-n", "settings", "0", "clock.force-rate",
                            str(rate)], check=True, capture_output=True, timeout=10)
            marks.append(len(rec.buffers))
            rec.wait_audible_ms(marks[-1], 1500)
    finally:
        stats = rec.stop()
    disconts = continuity(rec)
    # Within the threshold of the graph clock (its best arrival - PTS per half second), or
    # re-anchored with a DISCONT where not.
    lags = np.array([b[5] - b[0] for b in rec.buffers], dtype=np.int64)
    stretch_starts = [0] + disconts
    for s, e in zip(stretch_starts, stretch_starts[1:] + [len(lags)]):
        best = [lags[i:i + 50].min() for i in range(s, e - 50, 50)]
        if best:
            assert max(best) - min(best) <= THRESHOLD_NS, (s, e, max(best) - min(best))
    for m in marks:  # the tone at 44.1 kHz and back at 48 kHz (the element resamples)
        assert tone_db(rec, m + 50, m + 100) >= PLAYED_DB - 3
    print(f"DISCONT at {disconts}; frames-gap-filled {stats.get_value('frames-gap-filled')}")
    assert_accounting(stats, rec)


def test_the_null_sink_removed_and_made_again_keeps_the_capture_live(faulty_session, players):
    target, rec = capture(players)
    try:
        sink = [o for o in pw_dump() if props(o).get("node.name") == "procaudio-null-sink"]
        assert len(sink) == 1
        pw_cli("destroy", sink[0]["id"])
        at = len(rec.buffers)
        rec.wait(lambda: len(rec.buffers) >= at + 100, 10, "1 s of buffers without the sink")
        # As scripts/pipewire-session.sh made it; lingering, so it outlives pw-cli.
        pw_cli("create-node", "adapter",
               "{ factory.name=support.null-audio-sink node.name=procaudio-null-sink "
               'node.description="procaudio null sink" media.class=Audio/Sink '
               "audio.position=FL,FR audio.rate=48000 node.driver=true priority.driver=1000 "
               "priority.session=1000 monitor.channel-volumes=true object.linger=true }")
        back = len(rec.buffers)
        rec.wait_audible_ms(back, 1000, timeout=15)
    finally:
        stats = rec.stop()
    assert continuity(rec) == []
    lateness = [b[5] - (b[0] + b[1]) for b in rec.buffers[at:back]]
    print(f"without the sink: {back - at} buffers, worst lateness {max(lateness) / 1e6:.1f} ms;"
          f" buffers-late {stats.get_value('buffers-late')}")
    assert stats.get_value("buffers-late") == 0
    assert_accounting(stats, rec)


def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_a_churn_of_100_short_lived_players_leaves_nothing_of_ours_behind(faulty_session, tmp_path):
    # One process name, played by 100 processes one after another, each ended (SIGTERM) as
    # soon as the element says it captures it: the element follows each
    # (on-target-exit=wait), links it and lets it go.
    name = f"pa_churn_{os.getpid() % 100000}"
    exe = tmp_path / name
    shutil.copy(TONE_PLAYER, exe)
    rec = Recorder(f"pipewireprocsrc name=src process-name={name} on-target-exit=wait ! {CAPS} "
                   "! appsink name=sink")
    rss = {}
    try:
        rec.start()
        rec.wait_state("waiting")
        for i in range(100):
            player = subprocess.Popen([str(exe), "--freq", str(TARGET_HZ)],
                                      stdout=subprocess.DEVNULL)
            try:
                rec.wait_state("capturing", player.pid, after=len(rec.targets) - 1)
            finally:
                player.terminate()
                player.wait(timeout=10)
            if i in (19, 99):
                rss[i] = rss_kib()
        rec.wait(lambda: rec.targets[-1]["state"] == "waiting", 10, "waiting after the last")
        idle = wait_dump(lambda d: len(our_nodes(d)) == 1 and not our_links(d), 5,
                         "our node alone, no link, between players")
    finally:
        stats = rec.stop()
    gone = wait_dump(lambda d: not our_nodes(d) and not our_links(d), 5, "nothing of ours")
    attached = {t["pid"] for t in rec.targets if t["state"] == "capturing"}
    print(f"{len(attached)} of 100 players captured; reattachments "
          f"{stats.get_value('reattachments')}, resyncs {stats.get_value('resyncs')}, "
          f"{len(continuity(rec))} DISCONT after the first; RSS {rss[19]} -> {rss[99]} KiB from player 20 "
          f"to 100; {len(idle)} objects in the graph between players, {len(gone)} after")
    assert len(attached) == 100
    # Continuous, and a DISCONT only where the element says why: a new process's audio began
    # (a re-attachment; none if it was ended before a packet came) or it re-anchored.
    disconts = continuity(rec)
    assert len(disconts) + 1 == stats.get_value("discontinuities")
    assert 0 < len(disconts) <= stats.get_value("reattachments") + stats.get_value("resyncs")
    assert_accounting(stats, rec)
    assert rss[99] - rss[19] < 4096, "no growth with each process followed"
