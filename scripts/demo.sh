#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job, end to end on this machine: capture the audio of ONE process.
#
# Installs what is missing, builds, starts a private headless PipeWire session if none is
# reachable, starts a process playing 440 Hz (the target) and one playing 1000 Hz (a
# distractor), captures the target by pid for 5 s as 16 kHz mono WAV with pipewireprocsrc,
# prints the pipeline and what it captured, and stops everything it started.
#
#   scripts/demo.sh [OUTPUT.wav]      (default: capture.wav in a temporary directory)
set -euo pipefail
out_arg=${1:+$(realpath -m -- "$1")}  # resolved before the cd below
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${PROCAUDIO_BUILD_DIR:-$repo/build-demo}
work=$(mktemp -d "${TMPDIR:-/tmp}/procaudio-demo-XXXXXX")
out=${out_arg:-$work/capture.wav}
started_pids=()
session_dir=""

cleanup() {
  for pid in "${started_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n $session_dir ]]; then
    scripts/pipewire-session.sh stop --dir "$session_dir" >/dev/null 2>&1 || true
  fi
  if [[ $out != "$work"/* ]]; then
    rm -rf "$work"
  else
    rm -f "$work"/tone-*.wav  # keep only the capture
  fi
}
trap cleanup EXIT

echo "== installing what is missing"
scripts/setup.sh
echo "== building ($build)"
if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" -Dpipewire=enabled -Dtests=disabled -Dbenchmarks=disabled >/dev/null
fi
ninja -C "$build" >/dev/null
export GST_PLUGIN_PATH=$build/gst

echo "== PipeWire"
if [[ -n ${XDG_RUNTIME_DIR:-} ]] && timeout 3 pw-cli info 0 >/dev/null 2>&1; then
  echo "using the running PipeWire session (XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR)"
else
  eval "$(scripts/pipewire-session.sh start)"
  session_dir=$PROCAUDIO_PW_DIR
  echo "started a private headless PipeWire + WirePlumber in $session_dir"
fi

echo "== starting a target (440 Hz) and a distractor (1000 Hz)"
for freq in 440 1000; do
  gst-launch-1.0 -q audiotestsrc freq=$freq volume=0.5 num-buffers=1500 ! \
    audio/x-raw,rate=48000,channels=2 ! wavenc ! filesink location="$work/tone-$freq.wav"
done
pw-play "$work/tone-440.wav" &
target=$!
started_pids+=("$target")
pw-play "$work/tone-1000.wav" &
started_pids+=("$!")

pipeline=(pipewireprocsrc "pid=$target" ! audioconvert ! audioresample !
  "audio/x-raw,rate=16000,channels=1" ! wavenc ! filesink "location=$out")
echo "== capturing pid $target for 5 s"
echo "gst-launch-1.0 -e ${pipeline[*]}"
# SIGINT makes gst-launch -e send EOS, so wavenc finalises the file.
timeout -s INT 5 gst-launch-1.0 -e "${pipeline[@]}" >/dev/null || [[ $? == 124 ]]

echo "== what was captured ($out)"
PYTHONPATH=tests/python /usr/bin/python3 - "$out" <<'PY'
import sys, numpy as np
from wav_analysis import dominant_frequency, level_dbfs, read_wav
fmt, samples = read_wav(sys.argv[1])  # fails unless the file was finalised
rate = fmt["rate"]
samples = samples[:, 0] / (32768.0 if fmt["tag"] == 1 else 1.0)
x = samples[int(0.5 * rate):]  # after the links settled
level = lambda f: level_dbfs(x, f, rate)
dominant = dominant_frequency(x, rate)
rms = 20 * np.log10(max(np.sqrt(np.mean(x ** 2)), 1e-12))
print(f"duration          {samples.size / rate:.2f} s at {rate} Hz")
print(f"level             {rms:.1f} dBFS RMS")
print(f"dominant          {dominant:.1f} Hz")
print(f"440 Hz (target)   {level(440):.1f} dBFS")
print(f"1000 Hz (other)   {level(1000):.1f} dBFS")
ok = abs(dominant - 440) < 2 and level(1000) < -80
print("result            " + ("only the target was captured" if ok else "UNEXPECTED"))
sys.exit(0 if ok else 1)
PY
