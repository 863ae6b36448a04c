// SPDX-License-Identifier: LGPL-2.1-or-later
// The target process on Windows: the OS version check, opening and holding the process,
// and resolving an executable name to a pid (Toolhelp32). No audio, no GStreamer.
#pragma once

#include <windows.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/capture_error.h"
#include "unique_handle.h"

namespace procaudio {
namespace wasapi {

// ---- OS version ----

struct WindowsVersion {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t build = 0;
};

// Process loopback works from Windows 10 2004 (build 19041) on (documented: 20348).
constexpr uint32_t kProcessLoopbackMinBuild = 19041;

// The real version (RtlGetVersion: not subject to GetVersionEx's manifest lies). False if
// it cannot be read.
bool query_windows_version(WindowsVersion &version);

// kUnsupportedOs, naming the version needed, for anything older than build 19041.
CaptureError check_process_loopback_supported(const WindowsVersion &version);

// ---- One process ----

// Opens `pid` with SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION (enough to wait for its
// exit; held, it also keeps the pid from being reused). No such process, or one that has
// already exited -> kNotFound; access refused -> kAccessDenied.
CaptureError open_process(uint32_t pid, UniqueHandle &process);

// ---- Names ----

struct ProcessEntry {
  uint32_t pid = 0;
  uint32_t parent_pid = 0;
  std::wstring exe;            // "chrome.exe", as Toolhelp32 reports it
  uint64_t creation_time = 0;  // FILETIME, 100 ns since 1601; 0 = unknown
};

// Case-insensitive (ordinal, any script), ".exe" optional on either side:
// "Chrome" and "chrome.EXE" both match "chrome.exe".
bool process_name_matches(const std::wstring &exe, const std::wstring &wanted);

// Of the processes named `wanted`, the root of their tree (core's pick_root_process(), by
// creation time). 0 if none matches.
uint32_t pick_root_process(const std::vector<ProcessEntry> &processes, const std::wstring &wanted);

// The process that `pid` plays for under the name `wanted`: the oldest of `pid` and its
// ancestors named so (include-tree captures that one's tree), following parent links (a
// parent created after its child is a reused pid, not a parent: the walk stops there). 0 if
// neither `pid` nor any ancestor is named so.
uint32_t ancestor_named(const std::vector<ProcessEntry> &processes, uint32_t pid,
                        const std::wstring &wanted);

// ancestor_named() on a fresh snapshot, with the creation times of `pid`'s ancestors read.
// `snapshot_time`, when given: the system time just before that snapshot (list_processes()),
// for open_listed_process(): the process found may exit and its pid be reused before it is
// opened.
uint32_t find_ancestor_named(uint32_t pid, const std::string &name,
                             uint64_t *snapshot_time = nullptr);

// The process `pid` plays for, as the device provider shows it: the oldest of `pid` and its
// ancestors with `pid`'s executable name (a browser's audio child -> the browser), on one
// snapshot, and that name in `exe` ("chrome.exe"). 0 (and `exe` empty) if `pid` is gone.
uint32_t find_root_process(uint32_t pid, std::wstring &exe);

// Every running process (Toolhelp32 snapshot; no creation times). `snapshot_time`, when
// given: the system time (FILETIME units) just before the snapshot was taken.
CaptureError list_processes(std::vector<ProcessEntry> &processes,
                            uint64_t *snapshot_time = nullptr);

// The system time now, in FILETIME units (100 ns since 1601), as GetProcessTimes gives
// creation times.
uint64_t system_time_now();

// Opens `pid` as open_process() does, and checks that it is the process a snapshot taken at
// `snapshot_time` listed under that pid: a pid is reused only after its process is gone, so a
// process created after the snapshot is another one (kNotFound, "reused"). `creation_time`:
// the opened process's.
CaptureError open_listed_process(uint32_t pid, uint64_t snapshot_time, UniqueHandle &process,
                                 uint64_t &creation_time);

// `name` (UTF-8) -> the root process of that name (pick_root_process()), opened as
// open_process() does. Each candidate is opened while the snapshot is fresh and checked with
// open_listed_process(), so the handle returned is the process the snapshot named, never one
// that reused its pid since. No match -> kNotFound.
CaptureError find_process_by_name(const std::string &name, uint32_t &pid, UniqueHandle &process);

}  // namespace wasapi
}  // namespace procaudio
