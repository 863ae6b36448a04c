#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package procaudio needs to build, test and demo on
# Linux that is not installed yet. Idempotent: with everything present it does nothing.
# (The Windows cross build installs its own toolchain: scripts/cross-windows.sh.)
set -euo pipefail

PACKAGES=(
  # build
  g++ meson ninja-build pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libpipewire-0.3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # run: GStreamer tools and the elements the tests and the demo link to
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-pipewire
  gstreamer1.0-plugins-base-apps  # gst-device-monitor-1.0
  # a private PipeWire session, real players
  pipewire pipewire-bin wireplumber pipewire-pulse pulseaudio-utils
  # Python: PyGObject tests, analysis, the benchmark plot
  python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 python3-pytest
  python3-numpy python3-matplotlib
  python3-venv python3-pip  # the procaudio wheel installed into a venv (tests/python)
  # examples/live_captions.py and its test: speech recognition, a speaking process
  gstreamer1.0-pocketsphinx pocketsphinx-en-us espeak-ng
  # the engine's fuzzer (tests/fuzz): clang with libFuzzer and the sanitizers' runtimes
  clang libclang-rt-14-dev
  # the Debian packages (scripts/build-debs.sh) and their test
  dpkg-dev debhelper dh-python lintian
)

missing=()
for p in "${PACKAGES[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
