#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian packages gstreamer1.0-procaudio and python3-procaudio from this checkout's
# files (tracked and new, not ignored) into OUTDIR, then runs lintian on them.
#
#   scripts/build-debs.sh OUTDIR
#
# dpkg-buildpackage writes its results beside the source tree, so the tree is copied into
# OUTDIR first: nothing is written outside OUTDIR. Needs the build dependencies of
# debian/control (scripts/setup.sh installs them). Prints the paths of the built .debs last.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
version=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
src=$out/procaudio-$version
rm -rf "$src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - --no-recursion) |
  tar -xf - -C "$src"
(cd "$src" && dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) ||
  { tail -40 "$out/build.log" >&2; echo "build-debs: dpkg-buildpackage failed ($out/build.log)" >&2; exit 1; }
# Errors and warnings fail; informational tags are printed.
lintian --pedantic --info --fail-on error,warning "$out/procaudio_${version}_$(dpkg --print-architecture).changes"
ls "$out"/*.deb
