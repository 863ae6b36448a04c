#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Soak: two targets captured continuously for MINUTES (default 10) on a private PipeWire
# session, with exact frame accounting, continuity, drift and RSS checked and printed
# (tests/soak/test_soak.py). Needs a build made by scripts/test.sh (or PROCAUDIO_BUILD_DIR).
#
#   scripts/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
export PROCAUDIO_BUILD_DIR=${PROCAUDIO_BUILD_DIR:-$PWD/build-test}
export PROCAUDIO_SOAK_MINUTES=${1:-10}
export GST_PLUGIN_PATH=$PROCAUDIO_BUILD_DIR/gst
exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/soak
