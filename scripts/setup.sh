#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The one script that changes this machine: installs, with apt-get, the Debian 12 packages
# procaudio needs that are not installed yet. Idempotent: with everything present it does
# nothing (no apt-get update either).
#
#   scripts/setup.sh           build, test and demo on Linux (scripts/test.sh, scripts/demo.sh)
#   scripts/setup.sh windows   the Windows cross build under wine (scripts/cross-windows.sh):
#                              mingw-w64, wine, and Debian's source packages, for which it adds
#                              a deb-src entry derived from this machine's own bookworm entries
#                              if none is configured
set -euo pipefail

LINUX_PACKAGES=(
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

WINDOWS_PACKAGES=(
  gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64
  mingw-w64-x86-64-dev
  wine wine64
  meson ninja-build pkg-config dpkg-dev make patch xz-utils bzip2
  bison flex python3 gettext libglib2.0-dev-bin
  # GoogleTest sources for the Windows tests (cross-windows.sh builds them as a subproject)
  googletest
  # the private PipeWire + PulseAudio session and the Linux-side player of the wine suites
  pipewire pipewire-bin wireplumber pipewire-pulse pulseaudio-utils
)

say() { echo "setup: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# The packages of "$@" not installed. dpkg-query fails for a package it has never heard of:
# that is an answer (missing), not an error.
missing_of() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $status == "ii " ]] || echo "$p"
  done
}

# True when apt knows Debian source packages (deb-src configured and indexed). grep -c, not
# grep -q: -q would end apt-cache with SIGPIPE under pipefail.
have_src_index() { apt-cache showsrc glib2.0 2>/dev/null | grep -c '^Version:' >/dev/null; }

apt_source_files() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [[ -f $f ]]; then printf '%s\n' "$f"; fi
  done
}

# deb-src equivalents of the bookworm* "deb" entries in the given files, in one-line
# (`list`) or deb822 (`sources`) format. Mirror hosts are this machine's, never hard-coded.
derive_deb_src() {
  local fmt=$1 f
  shift
  for f in "$@"; do
    case "$fmt:$f" in
      list:*.sources | sources:*.list) continue ;;
    esac
    if [[ $fmt == list ]]; then
      awk '$1=="deb" { n=2; if ($2 ~ /^\[/) { while (n<=NF && $n !~ /\]$/) n++; n++ }
                       if ($(n+1) ~ /^bookworm/) { $1="deb-src"; print } }' "$f"
    else
      awk 'BEGIN { RS=""; ORS="\n\n" }
           { n = split($0, L, "\n"); out = ""; deb = 0; bw = 0; off = 0
             for (i = 1; i <= n; i++) {
               if (L[i] ~ /^[ \t]*#/) continue
               if (L[i] ~ /^Types:/) { if ((" " substr(L[i], 7) " ") ~ /[ \t]deb[ \t]/) deb = 1
                                       L[i] = "Types: deb-src" }
               if (L[i] ~ /^Suites:/ && L[i] ~ /[ \t]bookworm/) bw = 1
               if (L[i] ~ /^Enabled:[ \t]*[Nn]o/) off = 1
               out = out (out == "" ? "" : "\n") L[i]
             }
             if (deb && bw && !off) print out }' "$f"
    fi
  done | if [[ $fmt == list ]]; then awk '!seen[$0]++'; else awk 'BEGIN { RS=""; ORS="\n\n" } !seen[$0]++'; fi
}

# Adds a deb-src entry only if none is configured at all.
ensure_deb_src_configured() {
  local files=() l s
  mapfile -t files < <(apt_source_files)
  ((${#files[@]} > 0)) || { say "no apt sources configured"; exit 1; }
  if grep -qsE '^[[:space:]]*deb-src[[:space:]]|^[[:space:]]*Types:.*deb-src' "${files[@]}"; then
    return 0 # configured, just not indexed yet: apt-get update will do
  fi
  l=$(derive_deb_src list "${files[@]}")
  s=$(derive_deb_src sources "${files[@]}")
  [[ -n $l$s ]] || { say "no Debian bookworm apt entry to derive a deb-src entry from"; exit 1; }
  if [[ -n $l ]]; then
    say "no deb-src configured: writing /etc/apt/sources.list.d/procaudio-deb-src.list"
    printf '# added by procaudio scripts/setup.sh (Debian source packages)\n%s\n' "$l" |
      as_root tee /etc/apt/sources.list.d/procaudio-deb-src.list >/dev/null
  fi
  if [[ -n $s ]]; then
    say "no deb-src configured: writing /etc/apt/sources.list.d/procaudio-deb-src.sources"
    printf '# added by procaudio scripts/setup.sh (Debian source packages)\n%s\n' "$s" |
      as_root tee /etc/apt/sources.list.d/procaudio-deb-src.sources >/dev/null
  fi
}

case "${1:-linux}" in
  linux) packages=("${LINUX_PACKAGES[@]}") want_sources=0 ;;
  windows) packages=("${WINDOWS_PACKAGES[@]}") want_sources=1 ;;
  *) say "usage: scripts/setup.sh [linux|windows]"; exit 2 ;;
esac

mapfile -t missing < <(missing_of "${packages[@]}")
need_sources=0
if ((want_sources)) && ! have_src_index; then
  ensure_deb_src_configured
  need_sources=1
fi
if ((${#missing[@]} == 0 && need_sources == 0)); then
  say "all ${#packages[@]} packages present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
as_root apt-get update -qq
if ((${#missing[@]} > 0)); then
  say "installing ${missing[*]}"
  log=${TMPDIR:-/tmp}/procaudio-setup-apt.log
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; say "apt-get install failed (log: $log)"; exit 1; }
fi
if ((need_sources)) && ! have_src_index; then
  say "apt-cache showsrc glib2.0 finds nothing: no usable deb-src entry"
  exit 1
fi
say "done"
