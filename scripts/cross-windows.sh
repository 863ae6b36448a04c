#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Cross-build procaudio for Windows x86_64 (mingw-w64, posix threads) and run
# it under wine, against a GStreamer 1.22 prefix cross-built from Debian 12
# *source* packages and cached.
#
# Usage: scripts/cross-windows.sh [prefix|build|test|env|all]   (default: all)
#
#   prefix  install build deps (scripts/setup.sh windows), fetch Debian sources, build the prefix
#           unless the cache is valid; prints the prefix path on stdout.
#   build   (ensures prefix) meson setup + compile this project into
#           $PROCAUDIO_WIN_BUILD_DIR (default <repo>/build-win64) with
#           -Dwerror=true -Dwasapi=enabled -Dpipewire=disabled -Dbenchmarks=disabled
#           (and $PROCAUDIO_WIN_MESON_ARGS); prints the plugin DLL path.
#   test [ARGS...]  (ensures prefix) meson test in that build dir, under wine;
#           ARGS go to meson test (e.g. --no-rebuild --repeat 5).
#   env     print shell exports to use the prefix under wine:
#             eval "$(scripts/cross-windows.sh env)"
#   all     prefix, build, test.
#
# Environment:
#   PROCAUDIO_CROSS_CACHE     cache dir   (default ~/.cache/procaudio-cross)
#   PROCAUDIO_WIN_BUILD_DIR   build dir   (default <repo>/build-win64)
#   PROCAUDIO_WIN_MESON_ARGS  extra `meson setup` args for the project build
#   PROCAUDIO_CROSS_JOBS      parallel jobs for the prefix build (default nproc)
#   PROCAUDIO_WIN_RESULTS     `test`: write GoogleTest XML to $PROCAUDIO_WIN_RESULTS/win64/
#   PROCAUDIO_LINUX_BUILD_DIR `test`: the Linux build whose pipewireprocsrc captures wine's
#                             players (default <repo>/build-test, else <repo>/build)
#
# The suites that run against wine's real audio stack (wasapi-wine-real, wasapi-real) start
# through tests/wasapi/linux_side.py, which gives them a private PipeWire session with a
# PulseAudio server of their own.
#
# Progress goes to stderr, results (paths, exports) to stdout. Component build
# logs: $CACHE/logs/<key>/<component>.log; on failure the tail is printed.
set -Eeuo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$REPO_ROOT/scripts/cross-windows.sh
CROSS_TEMPLATE=$REPO_ROOT/scripts/cross/mingw-w64-x86_64.ini
CACHE=${PROCAUDIO_CROSS_CACHE:-$HOME/.cache/procaudio-cross}
BUILD_DIR=${PROCAUDIO_WIN_BUILD_DIR:-$REPO_ROOT/build-win64}
JOBS=${PROCAUDIO_CROSS_JOBS:-$(nproc)}
HOST=x86_64-w64-mingw32
CC_HOST=$HOST-gcc-posix
CXX_HOST=$HOST-g++-posix

# Debian 12 source packages that make up the prefix, in build order.
SRC_PKGS=(zlib libffi pcre2 gettext glib2.0 gstreamer1.0 gst-plugins-base1.0 gst-plugins-good1.0)


# ---------------------------------------------------------------- helpers ---
log() { printf '[cross-windows] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'rc=$?; log "failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

# Run "$@" with output to log file $1; on failure print the tail and die.
run_logged() {
  local logf=$1; shift
  if ! "$@" </dev/null >>"$logf" 2>&1; then
    log "command failed: $*"
    log "---- last 40 lines of $logf ----"
    tail -n 40 "$logf" >&2 || true
    log "---- end of $logf ----"
    exit 1
  fi
}

# Windows (wine) spelling of an absolute unix path: /a/b -> Z:/a/b
winpath() { printf 'Z:%s' "$1"; }


# ------------------------------------------------------------------- deps ---
# The toolchain, wine and Debian's source index: scripts/setup.sh windows, the one script
# that changes this machine.
ensure_deps() {
  "$REPO_ROOT/scripts/setup.sh" windows >&2 || die "scripts/setup.sh windows failed"
}

# ---------------------------------------------------------------- sources ---
# All versions apt knows for source package $1, newest first.
src_versions() {
  local vs v out=() i t
  mapfile -t vs < <(apt-cache showsrc --only-source "$1" 2>/dev/null | awk '/^Version:/{print $2}' | sort -u)
  [ ${#vs[@]} -gt 0 ] || return 1
  # insertion sort, descending, with dpkg's version ordering
  for v in "${vs[@]}"; do
    out+=("$v"); i=$((${#out[@]} - 1))
    while [ "$i" -gt 0 ] && dpkg --compare-versions "${out[$((i-1))]}" lt "${out[$i]}"; do
      t=${out[$i]}; out[$i]=${out[$((i-1))]}; out[$((i-1))]=$t; i=$((i-1))
    done
  done
  printf '%s\n' "${out[@]}"
}

# Cache key: newest available version of every source package, the toolchain
# and the prefix recipe (the bodies of the functions that build it).
compute_key() {
  local p v
  {
    for p in "${SRC_PKGS[@]}"; do
      v=$(src_versions "$p") || return 1
      v=${v%%$'\n'*}
      [ -n "$v" ] || return 1
      echo "$p=$v"
    done
    echo "gcc=$($CC_HOST -dumpfullversion 2>/dev/null)-$($CC_HOST -dumpmachine 2>/dev/null)"
    declare -f configure_env build_zlib build_libffi build_pcre2 build_gettext \
      build_glib2_0 build_gstreamer1_0 build_gst_plugins_base1_0 build_gst_plugins_good1_0 \
      meson_component install_runtime_dlls
    declare -p AUTOCONF_COMMON
    cat "$CROSS_TEMPLATE"
  } | sha256sum | cut -c1-16
}

# Download (into $CACHE/sources, kept across prefix rebuilds) the newest
# version of source package $1 that the mirror actually has; the newest
# security revision is sometimes listed but missing, so fall back to older
# listed revisions. Sets FETCHED_VERSION and FETCHED_DSC.
fetch_source() {
  local pkg=$1 v dir logf=$LOGDIR/fetch-$1.log
  : >"$logf"
  while read -r v; do
    dir=$CACHE/sources/${pkg}_${v//:/%}
    if [ ! -f "$dir/.complete" ]; then
      rm -rf "$dir"; mkdir -p "$dir"
      if ! (cd "$dir" && apt-get source --download-only -qq "$pkg=$v") </dev/null >>"$logf" 2>&1; then
        log "  $pkg $v: not downloadable, trying the previous revision"
        rm -rf "$dir"; continue
      fi
      touch "$dir/.complete"
    fi
    FETCHED_VERSION=$v
    local dscs=("$dir"/*.dsc)
    FETCHED_DSC=${dscs[0]}
    [ -f "$FETCHED_DSC" ] || die "no .dsc in $dir"
    return 0
  done < <(src_versions "$pkg")
  log "---- $logf ----"; tail -n 20 "$logf" >&2
  die "could not fetch any version of source package $pkg"
}

# -------------------------------------------------------- prefix recipes ---
# shellcheck source=scripts/cross/recipes.sh
source "$REPO_ROOT/scripts/cross/recipes.sh"

# ----------------------------------------------------------------- prefix ---
write_cross_file() {
  mkdir -p "$PREFIX/share/procaudio"
  sed "s|@PREFIX@|$PREFIX|g" "$CROSS_TEMPLATE" >"$CROSS_FILE.tmp"
  mv "$CROSS_FILE.tmp" "$CROSS_FILE"
}

set_prefix_vars() {   # $1 = key
  KEY=$1
  PREFIX=$CACHE/prefix-$KEY
  CROSS_FILE=$PREFIX/share/procaudio/cross-mingw-w64-x86_64.ini
  STAMP=$PREFIX/.procaudio-prefix-complete
}

# Resolve the prefix without installing anything (for `env`).
resolve_prefix() {
  local key
  if key=$(compute_key 2>/dev/null); then
    set_prefix_vars "$key"
    [ -f "$STAMP" ] && return 0
  fi
  if [ -L "$CACHE/current" ]; then
    key=$(readlink "$CACHE/current")
    set_prefix_vars "${key#prefix-}"
    [ -f "$STAMP" ] && return 0
  fi
  return 1
}

# What wine_env exports; stage_env prints the same.
WINE_VARS=(WINEPREFIX WINEARCH WINEDEBUG WINEDLLOVERRIDES WINEPATH GST_PLUGIN_SYSTEM_PATH)
wine_env() {
  export WINEPREFIX=$CACHE/wineprefix WINEARCH=win64 WINEDEBUG=-all
  export WINEDLLOVERRIDES='mscoree,mshtml='
  WINEPATH=$(winpath "$PREFIX/bin")
  GST_PLUGIN_SYSTEM_PATH=$(winpath "$PREFIX/lib/gstreamer-1.0")
  export WINEPATH GST_PLUGIN_SYSTEM_PATH
  # No GST_PLUGIN_PATH here: GStreamer 1.22 on Windows scans plugins
  # in-process (no gst-plugin-scanner), so a test binary that links the
  # element code statically would also load libgstprocaudio.dll and fail
  # with "cannot register existing type". `env` prints it for manual use.
  unset GST_PLUGIN_PATH DISPLAY WAYLAND_DISPLAY
}

# (wasapi helper) wine 8 reports Windows 7 (6.1.7601) by default, and "win10" is
# 10.0.18362: wasapiprocsrc refuses anything older than build 19041 before it tries
# process loopback. Report 10.0.19045 (Windows 10 22H2) through the registry values
# wine's ntdll reads when HKCU\Software\Wine\Version is unset, so that the tests reach the
# activation (which wine answers with 0x80070002). One regedit run, only when not set yet.
ensure_wine_windows_version() {
  grep -qs '^"CurrentBuildNumber"="19045"' "$WINEPREFIX/system.reg" && return 0
  local reg=$CACHE/win10-19045.reg
  printf '%s\r\n' 'REGEDIT4' '' \
    '[HKEY_LOCAL_MACHINE\Software\Microsoft\Windows NT\CurrentVersion]' \
    '"CurrentVersion"="10.0"' '"CurrentMajorVersionNumber"=dword:0000000a' \
    '"CurrentMinorVersionNumber"=dword:00000000' '"CurrentBuild"="19045"' \
    '"CurrentBuildNumber"="19045"' '"ProductName"="Windows 10 Pro"' '"CSDVersion"=-' '' \
    '[HKEY_CURRENT_USER\Software\Wine]' '"Version"=-' '' >"$reg"
  log "wine prefix: reporting Windows 10.0.19045"
  mkdir -p "$CACHE/logs"
  run_logged "$CACHE/logs/wine-version.log" wine regedit /S "$(winpath "$reg")"
}

ensure_wineprefix() {
  wine_env
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    log "initialising private wine prefix $WINEPREFIX (wineboot -i)"
    mkdir -p "$CACHE/logs"
    run_logged "$CACHE/logs/wineboot.log" wineboot -i
    wineserver -w || true
    [ -f "$WINEPREFIX/system.reg" ] || die "wineboot did not create $WINEPREFIX"
  fi
  ensure_wine_windows_version   # (wasapi helper)
  wine_session
}

# Start (or keep up) this WINEPREFIX's wineserver, persistent for 60 s after
# its last client (it exits by itself; nothing is killed), and its session
# services (services.exe, winedevice.exe, ...), detached from our stdio.
# Without this the first wine process of a session spawns those services and
# they inherit its stdout: `meson test` (and meson's cc.run() checks, and any
# caller reading our stdout through a pipe) then waits until they exit, i.e.
# until the wineserver goes away (+60 s per such test).
wine_session() {
  wineserver -p60 </dev/null >/dev/null 2>&1 || true
  wine cmd /c exit </dev/null >/dev/null 2>&1 || true
}

stage_prefix() {
  local t0=$SECONDS
  ensure_deps
  mkdir -p "$CACHE"
  local key; key=$(compute_key) || die "cannot compute the cache key (apt-cache showsrc failed)"
  set_prefix_vars "$key"
  if [ ! -f "$STAMP" ] || [ ! -f "$CACHE/wineprefix/system.reg" ]; then
    # Build the prefix (and create the wine prefix) under an exclusive lock
    # that flock(1) itself holds: with -o no child inherits the lock fd, so a
    # lingering wineserver or wine service can never keep other runs waiting.
    local rc=0
    flock -o -n -E 75 "$CACHE/.lock" "$BASH" "$SELF" __locked-prefix "$KEY" || rc=$?
    if [ "$rc" = 75 ]; then
      log "waiting for another cross-windows.sh that holds $CACHE/.lock"
      rc=0
      flock -o "$CACHE/.lock" "$BASH" "$SELF" __locked-prefix "$KEY" || rc=$?
    fi
    [ "$rc" = 0 ] || exit "$rc"
    [ -f "$STAMP" ] || die "the prefix build did not complete"
  else
    log "prefix cache valid"
  fi
  write_cross_file   # cheap; keeps it in sync if the cache dir moved
  ln -sfn "prefix-$KEY" "$CACHE/current"
  ensure_wineprefix
  log "prefix ready ($(( SECONDS - t0 )) s): $PREFIX"
  echo "$PREFIX"
}

# Runs under the lock (see stage_prefix): wine prefix first, then the build,
# unless a concurrent run finished it meanwhile.
locked_prefix() {   # $1 = key
  set_prefix_vars "$1"
  # meson runs cc.run() checks of GLib/GStreamer under wine: the private
  # wine prefix must exist first (else wine would create ~/.wine).
  ensure_wineprefix
  [ -f "$STAMP" ] && return 0
  build_prefix
}

build_prefix() {
  local t0=$SECONDS
  log "building prefix $PREFIX (logs: $CACHE/logs/$KEY/)"
  LOGDIR=$CACHE/logs/$KEY
  local work=$CACHE/work-$KEY
  rm -rf "$PREFIX" "$work" "$LOGDIR"
  mkdir -p "$PREFIX" "$work" "$LOGDIR"
  write_cross_file

  local pkg i=0 n=${#SRC_PKGS[@]} t fn versions=""
  for pkg in "${SRC_PKGS[@]}"; do
    i=$((i + 1)); t=$SECONDS
    fetch_source "$pkg"
    LOG=$LOGDIR/$pkg.log; : >"$LOG"
    run_logged "$LOG" dpkg-source -x "$FETCHED_DSC" "$work/$pkg"
    # Debian's quilt patches make e.g. Makefile.am newer than Makefile.in,
    # which would make `make` rerun automake (not installed, and Debian's
    # build-system-only patches are irrelevant here): give the whole tree
    # one timestamp so the shipped generated files are used as they are.
    find "$work/$pkg" -exec touch -h -d @1000000000 {} +
    wine_session   # keep the wine session up for meson's cc.run() checks
    fn=build_${pkg//[.-]/_}
    ( cd "$work/$pkg" && configure_env && "$fn" )
    versions+="$pkg $FETCHED_VERSION"$'\n'
    rm -rf "${work:?}/$pkg"
    log "[$i/$n] $pkg $FETCHED_VERSION ok ($(( SECONDS - t )) s)"
  done
  install_runtime_dlls
  rm -rf "$work"
  printf '%s' "$versions" >"$PREFIX/VERSIONS.txt"
  { echo "key=$KEY"; date -u +%FT%TZ; } >"$STAMP"
  log "prefix built in $(( SECONDS - t0 )) s, $(du -sh "$PREFIX" | cut -f1)"
}

# ------------------------------------------------------------ build / test ---
# (wasapi helper) There is no GoogleTest for mingw and no download here: populate the
# gtest wrap's directory from Debian's sources (package googletest, /usr/src/googletest)
# and copy the wrap's overlay build file in (meson applies packagefiles only when it
# extracts an archive itself). Refreshed when the overlay changes.
ensure_gtest_subproject() {
  local dir=$REPO_ROOT/subprojects/googletest-release-1.11.0
  local overlay=$REPO_ROOT/subprojects/packagefiles/gtest/meson.build
  [ -f /usr/src/googletest/googletest/src/gtest-all.cc ] \
    || die "/usr/src/googletest missing: apt-get install googletest"
  if [ ! -f "$dir/googletest/src/gtest-all.cc" ]; then
    log "populating $dir from /usr/src/googletest"
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    cp -a /usr/src/googletest/googletest /usr/src/googletest/googlemock "$dir.tmp/"
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
  fi
  cmp -s "$overlay" "$dir/meson.build" || cp -f "$overlay" "$dir/meson.build"
}

# stage_prefix (which ensures the wine prefix too) once per run: `all` builds, then tests.
PREFIX_READY=0
ready_prefix() {
  [ "$PREFIX_READY" = 1 ] && return
  stage_prefix >/dev/null
  PREFIX_READY=1
}

stage_build() {
  ready_prefix
  ensure_gtest_subproject   # (wasapi helper)
  # (wasapi helper) -Dbenchmarks=disabled: Google Benchmark is not cross-built.
  local options=(-Dwerror=true -Dwasapi=enabled -Dpipewire=disabled -Dbenchmarks=disabled)
  # shellcheck disable=SC2206
  [ -n "${PROCAUDIO_WIN_MESON_ARGS:-}" ] && options+=($PROCAUDIO_WIN_MESON_ARGS)
  if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
    if [ "$(cat "$BUILD_DIR/.procaudio-cross-prefix" 2>/dev/null)" != "$PREFIX" ]; then
      log "prefix changed: wiping $BUILD_DIR"
      meson setup --wipe "$BUILD_DIR" "$REPO_ROOT" --cross-file "$CROSS_FILE" "${options[@]}" >&2
    else
      meson configure "$BUILD_DIR" "${options[@]}" >&2   # options changed since setup
    fi
  else
    meson setup "$BUILD_DIR" "$REPO_ROOT" --cross-file "$CROSS_FILE" "${options[@]}" >&2
  fi
  echo "$PREFIX" >"$BUILD_DIR/.procaudio-cross-prefix"
  meson compile -C "$BUILD_DIR" >&2
  local dll; dll=$(find "$BUILD_DIR" -name libgstprocaudio.dll -print -quit)
  [ -n "$dll" ] || die "libgstprocaudio.dll not found under $BUILD_DIR"
  log "plugin: $dll"
  echo "$dll"
}

stage_test() {
  ready_prefix
  [ -f "$BUILD_DIR/meson-private/coredata.dat" ] || die "$BUILD_DIR is not configured: run '$0 build' first"
  # GoogleTest XML: never into a GTEST_OUTPUT inherited from the Linux run
  # (same executable names would overwrite its files); into
  # $PROCAUDIO_WIN_RESULTS/win64/ when asked (scripts/test.sh counts them).
  unset GTEST_OUTPUT
  if [ -n "${PROCAUDIO_WIN_RESULTS:-}" ]; then
    mkdir -p "$PROCAUDIO_WIN_RESULTS/win64"
    GTEST_OUTPUT="xml:$(winpath "$(cd "$PROCAUDIO_WIN_RESULTS/win64" && pwd)")/"
    export GTEST_OUTPUT
  fi
  meson test -C "$BUILD_DIR" --print-errorlogs "$@" >&2
}

stage_env() {
  resolve_prefix || die "no valid prefix in $CACHE: run '$0 prefix' first"
  wine_env
  local v
  for v in "${WINE_VARS[@]}"; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  echo "# the project's plugin, for gst-inspect/gst-launch by hand; unset it for meson test"
  printf 'export GST_PLUGIN_PATH=%q\n' "$(winpath "$BUILD_DIR/gst")"
  printf 'export PROCAUDIO_CROSS_PREFIX=%q\n' "$PREFIX"
  printf 'export PROCAUDIO_CROSS_FILE=%q\n' "$CROSS_FILE"
}

main() {
  case "${1:-all}" in
    prefix) stage_prefix ;;
    build)  stage_build ;;
    test)   shift; stage_test "$@" ;;
    env)    stage_env ;;
    __locked-prefix) locked_prefix "$2" ;;   # internal: see stage_prefix
    all)    stage_build >/dev/null; stage_test --no-rebuild ;;
    -h|--help|help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" ;;
    *) die "unknown stage '$1' (prefix|build|test|env|all)" ;;
  esac
}

# Everything above is definitions; keep `exit` on this line so that a running
# instance never reads the file again (it may be edited while it runs).
main "$@"; exit $?
