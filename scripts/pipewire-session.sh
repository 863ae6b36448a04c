#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A private, headless PipeWire + WirePlumber session (and optionally pipewire-pulse), for the
# tests and the demo. It never touches a user's real session: the daemons run with private
# XDG_RUNTIME_DIR / XDG_CONFIG_HOME / XDG_STATE_HOME / XDG_CACHE_HOME, no D-Bus, and `stop`
# kills only the pids this script recorded.
#
#   scripts/pipewire-session.sh start [--pulse] [--dir DIR] [--timeout SECONDS]
#       starts the daemons, waits until PipeWire answers and the sink exists, prints
#       `unset ...` and `export ...` lines:  eval "$(scripts/pipewire-session.sh start)"
#       and writes the same environment to DIR/session.env for programs, one variable a
#       line: NAME=value (set it, the value as is, unquoted) or NAME alone (unset it)
#   scripts/pipewire-session.sh env    [--dir DIR]   prints the same lines
#   scripts/pipewire-session.sh status [--dir DIR]   says what runs; exit 0 if all of it runs
#   scripts/pipewire-session.sh stop   [--dir DIR]   kills the recorded pids, removes DIR
#   scripts/pipewire-session.sh restart NAME [--dir DIR]
#       NAME is pipewire-pulse or wireplumber: stops it if it runs (its recorded pid), starts it
#       again with the same sockets, waits until it is ready (tests of a daemon going away)
#
# The state directory is DIR, else $PROCAUDIO_PW_DIR, else (start only) a new
# ${TMPDIR:-/tmp}/procaudio-pw-$UID-XXXXXX. `start` prints `export PROCAUDIO_PW_DIR=...`, so
# after an eval, `env`, `status` and `stop` find it without --dir.
# Environment: PROCAUDIO_PW_PULSE=1 is the same as --pulse.
set -euo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "pipewire-session: $*" >&2
  exit 1
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
daemon=
if [[ $cmd == restart ]]; then
  [[ $# -ge 1 ]] || usage
  daemon=$1
  shift
fi
dir=${PROCAUDIO_PW_DIR:-}
pulse=${PROCAUDIO_PW_PULSE:-0}
timeout_s=10
while [[ $# -gt 0 ]]; do
  case $1 in
    --pulse) pulse=1 ;;
    --dir) dir=${2:?--dir needs a value}; shift ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift ;;
    -h|--help) usage ;;
    *) die "unknown argument '$1'" ;;
  esac
  shift
done
[[ $pulse == 1 || $pulse == yes || $pulse == true ]] && pulse=1 || pulse=0

uid=$(id -u)
marker=.procaudio-pw-session  # only a directory holding this file is ever removed by `stop`

layout() {
  runtime=$dir/runtime
  config=$dir/config
  state=$dir/state
  cache=$dir/cache
  piddir=$dir/pids
  logdir=$dir/logs
}

# The private session's environment: explicit private dirs, no D-Bus, no display, nothing that
# could point a daemon or a tool at a user's real session.
session_env() {
  # The system bus points at a socket that does not exist: no D-Bus at all, not even the
  # machine's (BlueZ, RTKit, logind).
  session_env_args=(env -u DBUS_SESSION_BUS_ADDRESS -u PIPEWIRE_REMOTE -u PIPEWIRE_CORE
    -u PULSE_SERVER -u DISPLAY -u WAYLAND_DISPLAY
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$runtime/no-system-bus"
    XDG_RUNTIME_DIR="$runtime" PIPEWIRE_RUNTIME_DIR="$runtime"
    XDG_CONFIG_HOME="$config" XDG_STATE_HOME="$state" XDG_CACHE_HOME="$cache"
    PULSE_RUNTIME_PATH="$runtime/pulse" PULSE_STATE_PATH="$state/pulse")
}

# Runs a command in the private session's environment only.
in_session() {
  session_env
  "${session_env_args[@]}" "$@"
}

print_env() {
  echo "unset PIPEWIRE_REMOTE PIPEWIRE_CORE PULSE_SERVER"  # no other server for clients
  echo "export PROCAUDIO_PW_DIR='$dir'"
  echo "export XDG_RUNTIME_DIR='$runtime'"
  echo "export PIPEWIRE_RUNTIME_DIR='$runtime'"
  if [[ -f $piddir/pipewire-pulse.pid ]]; then
    echo "export PULSE_SERVER='unix:$runtime/pulse/native'"
  fi
}

# print_env's environment as DIR/session.env (see the usage above).
write_env_file() {
  {
    printf '%s\n' PIPEWIRE_REMOTE PIPEWIRE_CORE PULSE_SERVER
    printf 'PROCAUDIO_PW_DIR=%s\nXDG_RUNTIME_DIR=%s\nPIPEWIRE_RUNTIME_DIR=%s\n' "$dir" "$runtime" \
      "$runtime"
    if [[ -f $piddir/pipewire-pulse.pid ]]; then
      printf 'PULSE_SERVER=unix:%s/pulse/native\n' "$runtime"
    fi
  } >"$dir/session.env.tmp"
  mv "$dir/session.env.tmp" "$dir/session.env"
}

pid_running() {  # pid: exists and is not a zombie
  local pid=$1 stat state
  [[ -n $pid ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]]
}

pid_alive() {  # pid name: running and still the program we started (not a reused pid)
  local pid=$1 name=$2 stat comm
  pid_running "$pid" || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  comm=${stat#*(}
  comm=${comm%)*}
  [[ $comm == "${name:0:15}" ]]
}

start_daemon() {  # name program args...: $! is the daemon itself (exec), recorded for `stop`
  local name=$1
  shift
  session_env
  (exec "${session_env_args[@]}" "$@" </dev/null >"$logdir/$name.log" 2>&1) &
  echo $! >"$piddir/$name.pid"
}

wait_for() {  # name command...: bounded wait until the command succeeds or daemon `name` dies
  local name=$1
  shift
  local deadline=$((SECONDS + timeout_s))
  local delay=0.01
  local pid
  pid=$(cat "$piddir/$name.pid")
  until "$@" >/dev/null 2>&1; do
    # (right after the fork the pid may not have exec'd the daemon yet: no name check here)
    if ((SECONDS >= deadline)) || ! pid_running "$pid"; then
      return 1
    fi
    sleep "$delay"
    # back off up to 0.2 s: readiness normally takes < 0.1 s
    case $delay in 0.01) delay=0.02 ;; 0.02) delay=0.05 ;; 0.05) delay=0.1 ;; *) delay=0.2 ;; esac
  done
}

pw_ready() {  # PipeWire answers and WirePlumber has configured the sink as default
  local out
  out=$(in_session timeout 2 pw-dump 2>/dev/null) || return 1
  grep -q '"node.name": "procaudio-null-sink"' <<<"$out" || return 1
  grep -q '"default.audio.sink"' <<<"$out"
}

daemon_check() {  # name: fails the start if the daemon died
  local name=$1 pid
  pid=$(cat "$piddir/$name.pid" 2>/dev/null || true)
  if ! pid_running "$pid"; then
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    echo "pipewire-session: $name exited early (exit code $rc); its log ($logdir/$name.log):" >&2
    tail -n 30 "$logdir/$name.log" >&2 || true
    return 1
  fi
}

do_stop() {
  [[ -n $dir ]] || die "stop: no session directory (give --dir or set PROCAUDIO_PW_DIR)"
  layout
  [[ -d $dir ]] || return 0
  [[ -f $dir/$marker ]] || die "stop: $dir is not a session directory made by this script; not touching it"
  local name
  # clients first, then the session manager, then the daemon
  for name in pipewire-pulse wireplumber pipewire; do
    stop_daemon "$name"
  done
  rm -rf -- "$dir"
}

stop_daemon() {  # name: TERM (then KILL after 3 s) the recorded pid if it still runs
  local name=$1 pid
  pid=$(cat "$piddir/$name.pid" 2>/dev/null || true)
  if pid_alive "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 3))
    while pid_alive "$pid" "$name" && ((SECONDS < deadline)); do sleep 0.02; done
    if pid_alive "$pid" "$name"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$piddir/$name.pid"
}

start_pulse() {
  start_daemon pipewire-pulse pipewire-pulse
  if ! wait_for pipewire-pulse test -S "$runtime/pulse/native"; then
    daemon_check pipewire-pulse
    die "pipewire-pulse made no socket $runtime/pulse/native within ${timeout_s}s"
  fi
  daemon_check pipewire-pulse
}

do_restart() {
  [[ -n $dir ]] || die "restart: no session directory (give --dir or set PROCAUDIO_PW_DIR)"
  layout
  [[ -f $dir/$marker ]] || die "restart: no session in $dir"
  pid_alive "$(cat "$piddir/pipewire.pid" 2>/dev/null || true)" pipewire \
    || die "restart: PipeWire itself does not run in $dir"
  case $daemon in
    pipewire-pulse)
      stop_daemon pipewire-pulse
      # A killed server leaves its socket behind; the new one binds the same path.
      rm -f "$runtime/pulse/native"
      start_pulse
      ;;
    wireplumber)
      stop_daemon wireplumber
      start_daemon wireplumber wireplumber
      wait_for wireplumber pw_ready || { daemon_check wireplumber; die "wireplumber was not ready within ${timeout_s}s"; }
      daemon_check wireplumber
      ;;
    *) die "restart: '$daemon' is not pipewire-pulse or wireplumber" ;;
  esac
}

do_start() {
  if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/procaudio-pw-$uid-XXXXXX")
  else
    mkdir -p "$dir"
    if [[ -n $(ls -A "$dir" 2>/dev/null) && ! -f $dir/$marker ]]; then
      die "start: $dir exists and is not empty; give a new or empty directory"
    fi
    if [[ -f $dir/pids/pipewire.pid ]] && pid_alive "$(cat "$dir/pids/pipewire.pid")" pipewire; then
      die "start: a session already runs in $dir (stop it first)"
    fi
  fi
  dir=$(cd "$dir" && pwd)
  layout
  touch "$dir/$marker"
  mkdir -p "$runtime" "$config/pipewire/pipewire.conf.d" "$config/wireplumber/main.lua.d" \
    "$config/wireplumber/bluetooth.lua.d" \
    "$state" "$cache" "$piddir" "$logdir"
  chmod 700 "$dir" "$runtime"

  cat >"$config/pipewire/pipewire.conf.d/50-procaudio-null-sink.conf" <<'CONF'
# procaudio private session: one null sink, which is also the graph's driver.
context.objects = [
  { factory = adapter
    args = {
      factory.name     = support.null-audio-sink
      node.name        = "procaudio-null-sink"
      node.description = "procaudio null sink"
      media.class      = "Audio/Sink"
      audio.position   = "FL,FR"
      audio.rate       = 48000
      node.driver      = true
      priority.driver  = 1000
      priority.session = 1000
      monitor.channel-volumes = true
      object.linger    = true
    }
  }
]
CONF
  # Sorts between 50-*-config.lua and 90-enable-all.lua. Without the first two lines WirePlumber
  # 0.4 needs a D-Bus session bus (device reservation, flatpak portal) and exits with code 70.
  # The monitors stay off: this session must not open the machine's sound cards, cameras or
  # Bluetooth devices, which a user's real session may be using.
  cat >"$config/wireplumber/main.lua.d/51-procaudio-headless.lua" <<'LUA'
alsa_monitor.properties["alsa.reserve"] = false
default_access.properties["enable-flatpak-portal"] = false
alsa_monitor.enabled = false
v4l2_monitor.enabled = false
libcamera_monitor.enabled = false
LUA
  cat >"$config/wireplumber/bluetooth.lua.d/51-procaudio-headless.lua" <<'LUA'
bluez_monitor.enabled = false
LUA

  # Whatever fails from here on (die, set -e), stop what was started and remove the directory.
  trap 'rc=$?; if ((rc != 0)); then echo "pipewire-session: start failed; stopping what it started and removing $dir" >&2; do_stop; fi' EXIT
  start_daemon pipewire pipewire
  wait_for pipewire test -S "$runtime/pipewire-0" || {
    daemon_check pipewire
    die "PipeWire made no socket $runtime/pipewire-0 within ${timeout_s}s (log: $logdir/pipewire.log)"
  }
  daemon_check pipewire
  # WirePlumber before any client: without it stream nodes never get ports.
  start_daemon wireplumber wireplumber
  if ! wait_for wireplumber pw_ready; then
    daemon_check pipewire
    daemon_check wireplumber
    die "the session was not ready within ${timeout_s}s (logs: $logdir)"
  fi
  daemon_check wireplumber
  if [[ $pulse == 1 ]]; then
    start_pulse
  fi
  trap - EXIT
  write_env_file
  print_env
}

do_status() {
  [[ -n $dir ]] || die "status: no session directory (give --dir or set PROCAUDIO_PW_DIR)"
  layout
  [[ -f $dir/$marker ]] || { echo "no session in $dir"; return 1; }
  local ok=0 name pid
  for name in pipewire wireplumber pipewire-pulse; do
    [[ -f $piddir/$name.pid ]] || continue
    pid=$(cat "$piddir/$name.pid")
    if pid_alive "$pid" "$name"; then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running (pid $pid recorded)"
      ok=1
    fi
  done
  echo "state: $dir"
  return $ok
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  env)
    [[ -n $dir ]] || die "env: no session directory (give --dir or set PROCAUDIO_PW_DIR)"
    layout
    [[ -f $dir/$marker ]] || die "env: no session in $dir"
    print_env
    ;;
  status) do_status ;;
  restart) do_restart ;;
  *) usage ;;
esac
