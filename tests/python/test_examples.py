# SPDX-License-Identifier: LGPL-2.1-or-later
"""The examples in examples/, each run as a user runs it (a subprocess, the package from the
source tree on PYTHONPATH, the private session's environment) against real players, and
their output checked: a finalised WAV with the tone, levels at the tone's level, the player
in the process list, and captions of one speaking process that hold its words and none of
another's."""
import os
import pathlib
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import wave

import numpy as np
import pytest

from conftest import Gst
import wav_analysis

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TARGET_HZ, DISTRACTOR_HZ = 440, 1000
PLAYED_DB = 20 * np.log10(0.5)  # tone_player's default amplitude: -6.02 dBFS


def example_env():
    """The environment in force (the private session's, GST_PLUGIN_PATH) plus the package
    from the source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "python")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def example(name, *args, **popen):
    return subprocess.Popen([sys.executable, str(EXAMPLES / name)] + [str(a) for a in args],
                            env=example_env(), text=True, **popen)


def run_example(name, *args, timeout=30):
    p = example(name, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"{name} did not end in {timeout} s: {out}\n{err}")
    return p.returncode, out, err


class Lines:
    """The lines of a pipe, read by a thread, waited for with a deadline."""

    def __init__(self, stream):
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {text!r} in {timeout} s: {self.lines}") from None
            if line is None:
                raise RuntimeError(f"ended without {text!r}: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line

    def rest(self, timeout=10):
        """Every line until the pipe closes."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                return self.lines
            self.lines.append(line)


@pytest.mark.parametrize("name", ["list_apps.py", "record_app.py", "async_levels.py",
                                  "live_captions.py"])
def test_every_example_has_help(name):
    code, out, err = run_example(name, "--help")
    assert code == 0, err
    assert out.startswith("usage:"), out


def test_list_apps_lists_the_player(pw_session, players):
    player = players("--freq", TARGET_HZ, "--name", "examples-list").wait_streaming()
    code, out, err = run_example("list_apps.py")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    row = next((r for r in rows if r and r[0] == str(player.pid)), None)
    assert row is not None, out
    assert row[1] == "tone_player" and "examples-list" in row[2:] and row[-1] == "playing", out


def test_record_app_writes_the_app_until_it_exits(pw_session, players, tmp_path):
    wav = tmp_path / "app.wav"
    player = players("--freq", TARGET_HZ, "--seconds", 3).wait_streaming()
    rec = example("record_app.py", "--pid", player.pid, wav,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        player.proc.wait(timeout=10)
        exited = time.monotonic()
        out, err = rec.communicate(timeout=10)
        ended_after = time.monotonic() - exited
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    print(f"record_app ended {ended_after:.3f} s after the player")
    assert rec.returncode == 0, err
    assert f"wrote {wav}" in out
    assert ended_after < 1.2
    fmt, samples = wav_analysis.read_wav(wav)  # strict: the sizes must be finalised
    assert fmt["rate"] == 48000 and fmt["channels"] == 2 and fmt["bits"] == 16
    x = samples[:, 0].astype(np.float64) / 32768.0
    audible = np.flatnonzero(wav_analysis.audible(x))
    assert audible.size > 0
    x = x[audible[0]:audible[-1]]
    # record_app started after the player: most of its 3 s, at least 1.5 s of it
    assert x.size >= 1.5 * 48000, x.size
    level = wav_analysis.level_dbfs(x, TARGET_HZ)
    assert abs(level - PLAYED_DB) <= 1.0, level
    assert abs(wav_analysis.dominant_frequency(x) - TARGET_HZ) <= 2
    assert wav_analysis.level_dbfs(samples[:, 1] / 32768.0, TARGET_HZ) >= PLAYED_DB - 1


def test_async_levels_prints_the_tone_level(pw_session, players):
    target = players("--freq", TARGET_HZ).wait_streaming()
    players("--freq", DISTRACTOR_HZ, "--amplitude", 0.9).wait_streaming()
    code, out, err = run_example("async_levels.py", "--pid", target.pid, "--seconds", 2)
    assert code == 0, err
    levels = [float(m.group(1)) for m in re.finditer(r"^\s*[\d.]+ s\s+(-?[\d.]+|-inf) dBFS$",
                                                     out, re.M)]
    print(levels)
    assert len(levels) >= 15, out  # 100 ms chunks over 2 s
    steady = levels[3:]  # past the links settling and the resampler's start
    assert all(abs(db - PLAYED_DB) <= 1.0 for db in steady), out
    assert "dropped chunks: 0" in out


# Ten words spoken by the target, five (said twice) by another process at the same time.
# Both sets are in the recogniser's vocabulary, so hearing the other's would show.
TARGET_WORDS = "one two three four five six seven eight nine ten".split()
OTHER_WORDS = "apple banana orange yellow purple".split()
# espeak-ng's US English with the f2 variant, slowly and with a pause between words: each
# word is then an utterance of its own, which pocketsphinx recognises best.
VOICE = ["-v", "en-us+f2", "-s", "120"]
LEAD_S = 0.5  # silence before the first word


def speak_to_wav(words, path, lead_s=0.0):
    """espeak-ng says `words` into the WAV at `path`, after `lead_s` of silence."""
    ssml = "<speak>" + ' <break time="500ms"/> '.join(words) + "</speak>"
    subprocess.run(["espeak-ng"] + VOICE + ["-m", "-w", str(path), ssml], check=True,
                   timeout=30)
    with wave.open(str(path)) as w:  # espeak-ng ignores a leading <break/>: pad it here
        params, pcm = w.getparams(), w.readframes(w.getnframes())
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(bytes(int(lead_s * params.framerate) * params.sampwidth) + pcm)


def gated_player(wav, env):
    """A shell that becomes pw-play (the same pid) once told to go: its pid is known before
    it speaks, so captions can be listening from its first word."""
    return subprocess.Popen(["sh", "-c", 'read go && exec pw-play "$0"', str(wav)],
                            stdin=subprocess.PIPE, env=env, text=True)


def caption_lines(lines):
    parsed = [re.fullmatch(r"\[(\d\d):(\d\d):(\d\d\.\d{3})\] (.+)", line) for line in lines]
    assert lines and all(parsed), lines
    stamps = [int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) for m in parsed]
    words = [w for m in parsed for w in m.group(4).split()]
    return stamps, words


def test_live_captions_hold_the_targets_words_only(pw_session, tmp_path):
    missing = [t for t in ("espeak-ng", "pw-play") if shutil.which(t) is None]
    if Gst.ElementFactory.find("pocketsphinx") is None:
        missing.append("gstreamer1.0-pocketsphinx")
    if missing:
        pytest.fail(f"missing {missing}: run scripts/setup.sh")
    target_wav, other_wav = tmp_path / "target.wav", tmp_path / "other.wav"
    speak_to_wav(TARGET_WORDS, target_wav, lead_s=LEAD_S)
    speak_to_wav(OTHER_WORDS * 2, other_wav, lead_s=LEAD_S)
    env = example_env()
    vocabulary = " ".join(TARGET_WORDS + OTHER_WORDS)
    target, other = gated_player(target_wav, env), gated_player(other_wav, env)
    # The captions of the target, and as a control, of the other speaker: the other's
    # words are recognised when captured, so their absence from the target's means
    # something.
    captions = [example("live_captions.py", "--pid", p.pid, "--words", vocabulary,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for p in (target, other)]
    procs = [target, other] + captions
    try:
        outs = [Lines(c.stdout) for c in captions]
        errs = [Lines(c.stderr) for c in captions]
        for e in errs:
            e.wait_for("listening", timeout=15)
        spoke = time.time()
        for p in (target, other):  # both speak at once
            p.stdin.write("go\n")
            p.stdin.close()
        for p in (target, other):
            p.wait(timeout=30)
        # A speaker's exit ends its captions' stream (EOS): the last words, then the end.
        for c in captions:
            c.wait(timeout=10)
        lines = [o.rest() for o in outs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    print("target:", *lines[0], sep="\n  ")
    print("other:", *lines[1], sep="\n  ")
    assert [c.returncode for c in captions] == [0, 0], [e.lines for e in errs]
    stamps, words = caption_lines(lines[0])
    heard = sorted(set(words) & set(TARGET_WORDS), key=TARGET_WORDS.index)
    _, other_words = caption_lines(lines[1])
    other_heard = sorted(set(other_words) & set(OTHER_WORDS), key=OTHER_WORDS.index)
    print(f"target: heard {len(heard)}/{len(TARGET_WORDS)} of its words: {heard}")
    print(f"control: heard {len(other_heard)}/{len(OTHER_WORDS)} of the other's: {other_heard}")
    assert len(heard) >= 6, words
    assert not set(words) & set(OTHER_WORDS), words
    assert len(other_heard) >= 3, other_words
    assert not set(other_words) & set(TARGET_WORDS), other_words
    # The stamps are capture times: the first word after the lead silence (plus pw-play's
    # start-up), not when it was recognised; all in order.
    lt = time.localtime(spoke)
    spoke_of_day = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + spoke % 1
    assert stamps == sorted(stamps), lines[0]
    first = (stamps[0] - spoke_of_day) % 86400
    print(f"first word stamped {first:.3f} s after the target was told to speak")
    assert LEAD_S - 0.05 <= first <= LEAD_S + 1.0, f"first word {first:.3f} s after go"
